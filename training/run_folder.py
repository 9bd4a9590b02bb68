"""The run folder: naming, config.json with provenance, and the resume rules."""
import datetime
import os
import platform
import subprocess
from pathlib import Path

from config import CONFIG_FILE, TrainConfig
from errors import ConfigError

# Settings that may differ when resuming (they do not change what is being trained).
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "log_every", "preview_every", "keep_checkpoints",
                     "monitor_every", "data_dir", "run_dir"}


def default_run_dir(config, now=None):
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.category}-alpha{config.alpha:g}-{stamp}")


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parents[1]).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(spec, files, n_train, n_holdout):
    import keras
    import tensorflow as tf
    return {
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "git_commit": git_commit(),
        "dataset": {"root": os.path.abspath(files.root), "category_type": spec.type,
                    "image_size": spec.image_size, "model_input_size": spec.patch_size, "rotate": spec.rotate,
                    "train_images": n_train, "threshold_holdout_images": n_holdout,
                    "test_images": len(files.test_items),
                    "test_anomalous": sum(item.label for item in files.test_items),
                    "has_masks": files.has_masks},
    }


def is_run_folder(path):
    return Path(path, CONFIG_FILE).is_file()


def reconcile_with_saved(config, explicit_flags):
    """On resume: the saved config wins; a flag given explicitly with a different value is an error, except
    for the settings in RESUMABLE_CHANGES (e.g. --steps to extend a run)."""
    saved, _ = TrainConfig.load(config.run_dir)
    merged = saved.to_dict()
    for name in explicit_flags:
        if name not in merged:
            continue
        new, old = getattr(config, name), merged[name]
        if name in RESUMABLE_CHANGES:
            merged[name] = new
        elif new != old:
            raise ConfigError(f"--{name}={new} conflicts with {old!r} saved in {config.run_dir}/{CONFIG_FILE}; "
                              "drop the flag to resume, or choose a new --run_dir")
    merged["run_dir"] = config.run_dir
    return TrainConfig.from_dict(merged)
