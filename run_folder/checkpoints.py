"""A run's checkpoints: lookup of the newest one that can be read, repair of the state file, restore, save (a
failed write leaves the previous ones intact), and the clean-up of a new run that failed before its first step."""
import contextlib
import glob
import os
import re
import shutil
from pathlib import Path

from errors import ConfigError, StorageError
from run_folder.files import (BEST_ON_TEST_DIR, CHECKPOINT_DIR, CONFIG_FILE, HOLDOUT_SCORES_FILE, MONITOR_FILE,
                              PREVIEWS_DIR, TENSORBOARD_DIR, TRAIN_LOG_FILE, checkpoint_folder, path, write_text)


def checkpoint_steps(folder):
    """Steps of the ckpt-N.index files in folder, newest first (the files themselves, not the state file)."""
    if not os.path.isdir(folder):
        return []
    steps = [int(m.group(1)) for name in os.listdir(folder) if (m := re.fullmatch(r"ckpt-(\d+)\.index", name))]
    return sorted(steps, reverse=True)


def _readable(prefix):
    """Why the checkpoint at prefix cannot be read (every tensor is read: checksums are verified), or None."""
    import tensorflow as tf
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # noqa: BLE001  (OpError/DataLossError, IndexError "read less bytes", ...)
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None


def find_checkpoint(run_dir, which="latest", log=print, folder=None):
    """The newest checkpoint of run_dir that can be read (None when the folder holds no ckpt files). A newer one
    that is missing, truncated or fails its checksums is skipped with one line; ckpt files that all fail: a
    ConfigError naming the folder."""
    folder = folder or checkpoint_folder(run_dir, which)
    steps = checkpoint_steps(folder)
    skipped = []
    for step in steps:
        prefix = os.path.join(folder, f"ckpt-{step}")
        problem = _readable(prefix)
        if problem is None:
            if skipped:
                log(f"warning: {', '.join(skipped)} in {folder} cannot be read; using ckpt-{step}")
            return prefix
        skipped.append(f"ckpt-{step}")
    if steps:
        raise ConfigError(f"no checkpoint in {folder} can be read ({', '.join(skipped)} are truncated or "
                          "corrupt); restore them from a backup or start a new --run_dir")
    return None


def repair_checkpoint_state(prefix):
    """Before training resumes from prefix: a "checkpoint" state file that is missing, garbled or names another
    checkpoint is rewritten to name prefix and the older ckpt files, so CheckpointManager keeps its
    --keep_checkpoints rule over them (and its next save does not list the skipped ones)."""
    import time
    folder, name = os.path.split(prefix)
    state = os.path.join(folder, "checkpoint")
    try:
        current = re.search(r'^model_checkpoint_path:\s*"(?:.*/)?([^"/]+)"', Path(state).read_text(), re.M)
    except (OSError, UnicodeDecodeError):
        current = None
    if current and current.group(1) == name:
        return
    step = int(name.rsplit("-", 1)[1])
    now = time.time()
    older = [f"ckpt-{s}" for s in sorted(checkpoint_steps(folder)) if s <= step]
    write_text(state, f'model_checkpoint_path: "{name}"\n'
               + "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in older)
               + "".join(f"all_model_checkpoint_timestamps: {now}\n" for _ in older)
               + f"last_preserved_timestamp: {now - 1}\n")


def restore(checkpoint, prefix, run_dir, partial=False):
    """Restore a tf.train.Checkpoint from prefix; a model that does not match config.json is a ConfigError."""
    def mismatch(detail=""):
        return ConfigError(f"checkpoint {prefix} does not match the model described by {run_dir}/{CONFIG_FILE} "
                           f"({detail}written by an older version of this code, or config.json was edited); "
                           "undo the edit of config.json, or use a new --run_dir and retrain")

    try:
        status = checkpoint.restore(prefix)
    except (ValueError, TypeError) as err:  # a variable of another shape (e.g. an edited latent_size)
        lines = str(err).strip().splitlines()
        raise mismatch(f"{lines[0].rstrip('.')}; " if lines else "") from None
    if partial:
        status.expect_partial()  # the job's extra counters (elapsed time) are not needed
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise mismatch() from None
    return prefix


def save_checkpoint(manager, step):
    """manager.save(checkpoint_number=step). A write that fails (disk full, quota, read-only) is a StorageError
    naming the folder: TensorFlow's temporary ckpt-<step>_temp folder and an unreadable ckpt-<step> are removed;
    the previous checkpoints are untouched (the manager deletes old ones only after a complete save)."""
    import tensorflow as tf
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as err:
        folder = manager.directory
        _remove_partial_checkpoint(folder, step)
        reason = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err) or type(err).__name__
        reason = " ".join(str(reason).strip().splitlines()[:1])[:200]
        kept = [s for s in checkpoint_steps(folder) if s != step]
        previous = (f"the previous checkpoints are intact (newest ckpt-{kept[0]})" if kept
                    else "there is no earlier checkpoint")
        raise StorageError(f"cannot write checkpoint ckpt-{step} in {folder} ({reason}); {previous}. Free disk "
                           "space (or make the folder writable) and run the same command again to resume") from None


def _remove_partial_checkpoint(folder, step):
    prefix = os.path.join(folder, f"ckpt-{step}")
    for leftover in glob.glob(glob.escape(prefix) + "_temp*"):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(leftover)
    if os.path.exists(prefix + ".index") and _readable(prefix) is not None:
        for part in [prefix + ".index"] + glob.glob(glob.escape(prefix) + ".data-*"):
            with contextlib.suppress(OSError):
                os.remove(part)


def discard_new_run(run_dir):
    """Remove what a new run wrote before its first training step (config.json, logs, tensorboard/, empty
    checkpoint folders), so that the corrected command starts afresh instead of meeting a config.json that it
    conflicts with. Never called for a resumed run; a checkpoint folder holding ckpt files is kept."""
    for name in (CONFIG_FILE, TRAIN_LOG_FILE, MONITOR_FILE, HOLDOUT_SCORES_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path(run_dir, name))
    for name in (TENSORBOARD_DIR, PREVIEWS_DIR):
        shutil.rmtree(path(run_dir, name), ignore_errors=True)
    for name in (CHECKPOINT_DIR, BEST_ON_TEST_DIR):
        folder = path(run_dir, name)
        if os.path.isdir(folder) and not checkpoint_steps(folder):
            shutil.rmtree(folder, ignore_errors=True)
