"""The lock of a run folder (train.py) or a sweep folder (sweep.py): the pid of the holder under fcntl.flock."""
import contextlib
import errno
import os

from errors import ConfigError
from run_folder.files import FOLDER_FLAGS, LOCK_FILE, make_folder, path

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
