"""The tiny trained runs several test folders share (conftest.trained_run trains each kind once per session),
and what their tests read from them: CSV rows and the scores computed without inference/."""
import csv

import numpy as np

from tests.helpers.images import make_category

RUN_SETTINGS = {
    # name: (category, TrainConfig overrides, image sizes (h, w) of the generated tree)
    "object": ("widget", dict(image_size=32), ((32, 32), (40, 48))),
    "texture": ("cloth", dict(type="texture", image_size=64, patch_size=32), ((64, 64), (70, 80))),
}


def train_tiny_run(base, kind="object"):
    """Train a tiny run of `kind` (32x32 object or 64/32 texture, c=1, 12 steps, 3 of 10 images held out) under
    the folder base: (run_dir, data_dir)."""
    from config import TrainConfig
    from training.loop import train

    category, overrides, sizes = RUN_SETTINGS[kind]
    data_dir = str(base / "data")
    make_category(data_dir, category, train=10, test={"good": 2, "crack": 2}, sizes=sizes)
    config = TrainConfig(category=category, data_dir=data_dir, run_dir=str(base / "run"), channels=1,
                         latent_size=8, batch_size=4, steps=12, d_iter=2, log_every=4, checkpoint_every=6,
                         preview_every=0, threshold_holdout=0.3, **overrides).validate()
    train(config, log=lambda *a: None)
    return config.run_dir, data_dir


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def reference_scores(run_dir, paths, score_lambda=None, weights="ema"):
    """Scores computed without inference/: read_image, resize_image, patches, [-1, 1], Scorer."""
    from data.images import read_image, resize_image
    from data.patches import to_patches_numpy
    from models.scoring import Scorer
    from inference.restore import restore_run

    restored = restore_run(run_dir)
    spec = restored.spec
    lam = restored.config.score_lambda if score_lambda is None else score_lambda
    inputs = np.stack([to_patches_numpy(resize_image(read_image(p), spec.image_size), spec.patch_size)
                       for p in paths]).astype(np.float32) / 127.5 - 1.0
    scorer = Scorer(restored.model, weights=weights, feature_layer=restored.config.feature_layer)
    out = scorer.score_images(inputs, spec.image_size, lambdas=(lam,))
    return out["scores"][lam], out
