"""The one owner of a run folder: its file names, config.json's provenance, the lock, atomic writes, the
checkpoints (with fallback to the newest one that restores), where evaluation writes, and the CSV logs.

A run folder (runs/<category>-alpha<alpha>-<timestamp>/):
    config.json                 every setting and its provenance (atomic rewrite)
    .lock                       pid of the process training it (fcntl.flock: released by the OS when it dies)
    train_log.csv, metrics.csv  one row per interval, appended (a torn last line is skipped on read); the resume
                                truncation rewrites them atomically (run_folder/train_log.py, monitor_log.py)
    holdout_scores.csv          scores of the held-out training images (atomic)
    checkpoints/, checkpoints_best_on_test/   ckpt-N.index/.data-*, and the "checkpoint" state file
    eval*/                      written by evaluate.py into a temporary folder beside it and swapped in at the end
    previews/, tensorboard/, predictions/

`import run_folder` gives the whole API below (run_folder.path, run_folder.find_checkpoint, ...), split by job
into files.py (names, paths, folder checks, atomic writes, provenance), lock.py, checkpoints.py and
eval_folders.py; the CSV logs are the modules run_folder.train_log and run_folder.monitor_log. What needs
TrainConfig (the resume rules) is training/resume.py. No TensorFlow at import time (inference/threshold.py and
sweep.py use this package without it).
"""
from run_folder.checkpoints import (checkpoint_steps, discard_new_run, find_checkpoint, repair_checkpoint_state,
                                    restore, save_checkpoint)
from run_folder.eval_folders import check_eval_output, staging_folder, swap_in
from run_folder.files import (BEST_ON_TEST_DIR, CHECKPOINT_DIR, CHECKPOINT_FOLDERS, CONFIG_FILE, EVAL_DIR,
                              FOLDER_FLAGS, HOLDOUT_SCORES_FILE, LOCK_FILE, MONITOR_FILE, PREDICTIONS_DIR,
                              PREVIEWS_DIR, TENSORBOARD_DIR, TRAIN_LOG_FILE, atomic_write, check_folder,
                              checkpoint_folder, default_run_dir, git_commit, holds_only_the_lock, is_run_folder,
                              make_folder, path, provenance, read_csv_rows, write_text)
from run_folder.lock import acquire_lock, release_lock

__all__ = [
    "BEST_ON_TEST_DIR", "CHECKPOINT_DIR", "CHECKPOINT_FOLDERS", "CONFIG_FILE", "EVAL_DIR", "FOLDER_FLAGS",
    "HOLDOUT_SCORES_FILE", "LOCK_FILE", "MONITOR_FILE", "PREDICTIONS_DIR", "PREVIEWS_DIR", "TENSORBOARD_DIR",
    "TRAIN_LOG_FILE",
    "acquire_lock", "atomic_write", "check_eval_output", "check_folder", "checkpoint_folder", "checkpoint_steps",
    "default_run_dir", "discard_new_run", "find_checkpoint", "git_commit", "holds_only_the_lock", "is_run_folder",
    "make_folder", "path", "provenance", "read_csv_rows", "release_lock", "repair_checkpoint_state", "restore",
    "save_checkpoint", "staging_folder", "swap_in", "write_text",
]
