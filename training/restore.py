"""Load a trained run for evaluation, prediction or export: its config, category spec and restored model."""
import dataclasses
import os

import tensorflow as tf

from config import TrainConfig
from errors import ConfigError
from models.cbigan import CBiGAN
from data.categories import spec_for
from training.loop import BEST_ON_TEST_DIR, CHECKPOINT_DIR


@dataclasses.dataclass
class RestoredRun:
    run_dir: str
    config: TrainConfig
    spec: object          # data.categories.CategorySpec
    model: CBiGAN
    checkpoint_path: str
    step: int
    checkpoint: object = None  # kept referenced: a collected Checkpoint can drop deferred restorations


def restore_run(run_dir, checkpoint="latest"):
    """checkpoint: "latest" (default) or "best_on_test" (the authors' oracle protocol, if it was kept)."""
    config, _ = TrainConfig.load(run_dir)
    folder = os.path.join(run_dir, BEST_ON_TEST_DIR if checkpoint == "best_on_test" else CHECKPOINT_DIR)
    path = tf.train.latest_checkpoint(folder)
    if path is None:
        raise ConfigError(f"{run_dir} has no checkpoint in {folder}: train it first "
                          f"(python train.py --run_dir={run_dir} --category={config.category})")
    spec = spec_for(config)
    model = CBiGAN(config, spec.patch_size)
    checkpoint = model.checkpoint()
    status = checkpoint.restore(path)
    status.expect_partial()  # the job's extra counters (elapsed time) are not needed here
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise ConfigError(f"checkpoint {path} does not match the model described by {run_dir}/config.json "
                          "(written by an older version of this code, or config.json was edited); retrain the run")

    return RestoredRun(run_dir, config, spec, model, path, int(model.step.numpy()), checkpoint)
