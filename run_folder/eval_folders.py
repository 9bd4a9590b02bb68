"""Where evaluate.py writes: a temporary folder beside the final one, swapped in at the end."""
import contextlib
import os
import shutil

from errors import ConfigError
from run_folder.files import EVAL_DIR, check_folder, path


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
