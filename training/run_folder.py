"""The one owner of a run folder: its file names, config.json, the lock, atomic writes, the checkpoints (with
fallback to the newest one that restores), where evaluation writes, and the resume rules.

A run folder (runs/<category>-alpha<alpha>-<timestamp>/):
    config.json                 every setting and its provenance (atomic rewrite)
    .lock                       pid of the process training it (fcntl.flock: released by the OS when it dies)
    train_log.csv, metrics.csv  one row per interval, appended (a torn last line is skipped on read); the resume
                                truncation rewrites them atomically
    holdout_scores.csv          scores of the held-out training images (atomic)
    checkpoints/, checkpoints_best_on_test/   ckpt-N.index/.data-*, and the "checkpoint" state file
    eval*/                      written by evaluate.py into a temporary folder beside it and swapped in at the end
    previews/, tensorboard/, predictions/

No TensorFlow at import time (inference/threshold.py and sweep.py use this module without it).
"""
import contextlib
import datetime
import errno
import glob
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from errors import ConfigError, StorageError

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

# Settings that may differ when resuming (they do not change what is being trained).
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "log_every", "preview_every", "keep_checkpoints",
                     "monitor_every", "data_dir", "run_dir"}


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


# ---------------------------------------------------------------------------------------------- the lock

_held = {}  # realpath of a lock file -> open file descriptor (this process's locks)


def acquire_lock(folder, what="train.py"):
    """Lock folder for this process (creating it): a LOCK_FILE holding our pid under fcntl.flock. A lock held by
    a living process is a ConfigError naming its pid; one left by a dead process is taken over (the OS released
    its flock). Re-entrant within a process; released at exit or by release_lock. A folder that cannot be
    created or written (a file, read-only): a ConfigError naming the folder's flag (FOLDER_FLAGS)."""
    import fcntl
    flag = FOLDER_FLAGS.get(what, "folder")
    make_folder(folder, flag)
    file = os.path.realpath(path(folder, LOCK_FILE))
    if file in _held:
        return file
    while True:
        try:
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ConfigError(f"{flag}={folder}: cannot write its lock file {LOCK_FILE} ({err.strerror or err}); "
                              "give a folder you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise
            raise ConfigError(f"{folder} is in use by another {what} (pid {other}); wait for it to finish or stop "
                              "it first") from None
        try:  # the holder may have removed the file as we opened it: lock the file that is there now
            if os.stat(file).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[file] = fd
    return file


def release_lock(folder):
    file = os.path.realpath(path(folder, LOCK_FILE))
    fd = _held.pop(file, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.remove(file)
        os.close(fd)


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


def reconcile_with_saved(config, explicit_flags):
    """On resume: the saved config wins; a flag given explicitly with a different value is an error, except
    for the settings in RESUMABLE_CHANGES (e.g. --steps to extend a run)."""
    from config import TrainConfig
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


# ---------------------------------------------------------------------------------------------- checkpoints


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


# ---------------------------------------------------------------------------------------------- eval folders


def check_eval_output(run_dir, eval_dir):
    if os.path.realpath(eval_dir) == os.path.realpath(run_dir):
        raise ConfigError(f"--output={eval_dir} is the run folder itself; give a folder for the evaluation's files "
                          f"(default {path(run_dir, EVAL_DIR)})")
    check_folder(eval_dir, "--output")


def staging_folder(final_dir):
    """A fresh temporary folder beside final_dir where an evaluation is written before swap_in."""
    final_dir = os.path.normpath(final_dir)
    staging = f"{final_dir}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    return staging


def swap_in(staging, final_dir, owned_names):
    """Make staging's files final_dir's. A final_dir holding only files named in owned_names (an earlier
    evaluation) is replaced as a whole (renamed aside, then removed); otherwise each new file is moved in with
    os.replace and stale owned_names files are removed; other files are never touched."""
    final_dir = os.path.normpath(final_dir)
    owned = set(owned_names)
    if os.path.isdir(final_dir) and set(os.listdir(final_dir)) <= owned:
        old = f"{final_dir}.old-{os.getpid()}"
        os.replace(final_dir, old)
        os.replace(staging, final_dir)
        for name in os.listdir(old):
            os.remove(os.path.join(old, name))
        os.rmdir(old)
        return final_dir
    if not os.path.exists(final_dir):
        os.replace(staging, final_dir)
        return final_dir
    new = set(os.listdir(staging))
    for name in new:
        os.replace(os.path.join(staging, name), os.path.join(final_dir, name))
    for name in owned - new:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(final_dir, name))
    os.rmdir(staging)
    return final_dir
