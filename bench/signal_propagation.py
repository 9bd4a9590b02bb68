"""How much of the difference between images survives the encoder at initialisation, block by block.

    python -m bench.signal_propagation                          # bottle, normalization none/batch/layer/instance
    python -m bench.signal_propagation --normalization=none --images=64
    python -m bench.signal_propagation --run=runs/study/bottle-cbigan-seed1   # a trained run's EMA encoder

For a batch of real training images (../shared/data/mvtec-ad/bottle, 128 px, unless --data_dir/--category) and a
freshly initialised encoder (seed 42, c = 3), prints one JSON line per normalization with, after each residual
block of the trunk and for E(x):
  rms:    root mean square of the activations;
  spread: root mean square of their deviation from the batch mean, i.e. what distinguishes one image from another.
The prior of z is N(0, 1) (rms 1, spread 1). A spread of E(x) far below 1 means every image starts at nearly the
same code, so G(E(x)) is nearly the same image for every x until training has amplified the differences
(docs/RESULTS.md). Batch normalization is run in inference mode (its moving statistics are the identity at init).
With --run, the run's EMA encoder at its latest checkpoint is measured instead, on its own category's images.
"""
import argparse
import dataclasses
import os

import numpy as np

from bench._common import REPO, emit
from models.options import NORMALIZATIONS


def rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


def spread(a):
    return rms(a - a.mean(axis=0, keepdims=True))


def propagate(encoder, x):
    """[(name, rms, spread)] of the input, every trunk block's output and E(x)."""
    rows = [("input", rms(x), spread(x))]
    h = x
    for i, block in enumerate(encoder.trunk.blocks):
        h = block(h)
        a = np.asarray(h)
        rows.append((f"block{i} {a.shape[1]}x{a.shape[2]}x{a.shape[3]}", rms(a), spread(a)))
    z = np.asarray(encoder(x))
    rows.append(("E(x)", rms(z), spread(z)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str((REPO / ".." / "shared" / "data" / "mvtec-ad").resolve()))
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--normalization", default="all", choices=("all",) + NORMALIZATIONS)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--run", default=None, help="a run folder: measure its EMA encoder")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from config import TrainConfig
    from data.categories import spec_for
    from data.sources import find_files
    from data.images import to_model_range_numpy
    from data.streams import load_train_images
    from models.encoder import Encoder

    restored = None
    if args.run:
        from inference.restore import restore_run
        restored = restore_run(args.run)
        config, spec = restored.config, restored.spec
    else:
        config = TrainConfig(category=args.category, data_dir=args.data_dir)
        spec = spec_for(config)
    files = find_files(config)
    files = dataclasses.replace(files, train_paths=files.train_paths[:args.images])
    x = to_model_range_numpy(load_train_images(spec, files, verbose=False))
    x = np.stack([np.asarray(image)[:spec.patch_size, :spec.patch_size] for image in x])  # textures: one patch
    if restored is not None:
        emit({"bench": "signal_propagation", "run": args.run, "step": restored.step, "weights": "ema",
              "category": config.category, "normalization": config.normalization, "images": len(x),
              "layers": [{"layer": name, "rms": round(r, 6), "spread": round(s, 6)}
                         for name, r, s in propagate(restored.model.ema_encoder, x)]})
        return
    for normalization in (NORMALIZATIONS if args.normalization == "all" else (args.normalization,)):
        keras.utils.set_random_seed(args.seed)
        encoder = Encoder(image_size=spec.patch_size, channels=config.channels, latent_size=config.latent_size,
                          normalization=normalization)
        emit({"bench": "signal_propagation", "category": args.category, "normalization": normalization,
              "images": len(x), "layers": [{"layer": name, "rms": round(r, 6), "spread": round(s, 6)}
                                           for name, r, s in propagate(encoder, x)]})


if __name__ == "__main__":
    main()
