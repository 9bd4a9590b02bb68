"""A run folder's file names and paths, the checks of folders a program writes, atomic writes, the CSV logs'
reader, and config.json's provenance record (the package docstring, run_folder/__init__.py, lists the files).

No TensorFlow at import time.
"""
import contextlib
import datetime
import os
import platform
import subprocess
from pathlib import Path

from errors import ConfigError

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
TRAIN_LOG_FILE = "train_log.csv"
MONITOR_FILE = "metrics.csv"
HOLDOUT_SCORES_FILE = "holdout_scores.csv"
CHECKPOINT_DIR = "checkpoints"
BEST_ON_TEST_DIR = "checkpoints_best_on_test"
PREVIEWS_DIR = "previews"
TENSORBOARD_DIR = "tensorboard"
PREDICTIONS_DIR = "predictions"
EVAL_DIR = "eval"
CHECKPOINT_FOLDERS = {"latest": CHECKPOINT_DIR, "best_on_test": BEST_ON_TEST_DIR}


def path(run_dir, name):
    return os.path.join(os.fspath(run_dir), name)


def checkpoint_folder(run_dir, which="latest"):
    return path(run_dir, CHECKPOINT_FOLDERS[which])


def default_run_dir(config, now=None):
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.category}-alpha{config.alpha:g}-{stamp}")


def is_run_folder(folder):
    return Path(folder, CONFIG_FILE).is_file()


def holds_only_the_lock(folder):
    """True for a folder that is empty or holds nothing but the lock file (a new run being started)."""
    return set(os.listdir(folder)) <= {LOCK_FILE}


# ---------------------------------------------------------------------------------------------- output folders

FOLDER_FLAGS = {"train.py": "--run_dir", "sweep.py": "--sweep_dir"}  # the flag naming the folder each one locks


def check_folder(folder, flag="--output"):
    """A folder a program is about to create or write into (a run folder, an --output folder): a ConfigError
    naming flag when it is an existing file, lies under a file, or cannot be written (permissions, read-only
    file system). Called before the work whose results would go there."""
    folder = os.fspath(folder)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ConfigError(f"{flag}={folder} is a file, not a folder: give the path of a folder (new or existing)")
    existing = os.path.abspath(folder)
    while not os.path.lexists(existing):  # the nearest part of the path that exists: where the folder is created
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"{flag}={folder}: {existing} is a file, not a folder; give another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag}={folder}: cannot write in {existing} (permission denied or read-only); give a "
                          "folder you can write to")


def make_folder(folder, flag="--output"):
    """check_folder, then create it (with its parents); an OS refusal is a ConfigError naming flag."""
    check_folder(folder, flag)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{flag}={folder}: cannot create the folder ({err.strerror or err}); give a folder you "
                          "can write to") from None


# ---------------------------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_write(target, mode="w", newline=None, encoding=None, errors=None):
    """Open a temporary file beside target; on success it is flushed, synced and renamed over target
    (os.replace), so target is always either the old file or the complete new one; on error it is removed.
    Text is UTF-8 unless encoding says otherwise."""
    target = os.fspath(target)
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(target)}.tmp-{os.getpid()}")
    if "b" not in mode:
        encoding = encoding or "utf-8"
    try:
        with open(tmp, mode, newline=newline, encoding=encoding, errors=errors) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text(target, text):
    with atomic_write(target) as handle:
        handle.write(text)


def read_csv_rows(file):
    """The rows (dicts) of an appended CSV log; a torn last line (a kill during an append) is dropped."""
    import csv
    if not os.path.isfile(file):
        return []
    with open(file, newline="") as handle:
        text = handle.read()
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    reader = csv.DictReader(text.splitlines())
    return [row for row in reader if None not in row.values() and None not in row]


# ---------------------------------------------------------------------------------------------- config.json


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
