"""SIGINT / SIGTERM set a flag; the training loop checkpoints and exits at the next step boundary with the
signal's exit code (130 for Ctrl-C, 143 for SIGTERM; errors.Interrupted). The first signal says "saving
checkpoint..." at once; a second one while the checkpoint is being written waits for the write to end, at any
other time it stops waiting (KeyboardInterrupt)."""
import contextlib
import os
import signal

from errors import Interrupted  # noqa: F401  (raised by the loop once the checkpoint is written)


class StopRequest:
    def __init__(self):
        self.signal_name = None
        self._previous = {}
        self._saving = False

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal_name is None:
            self.signal_name = name
            os.write(2, f"{name}: saving checkpoint...\n".encode())
            return
        if self._saving:  # never leave a half-written checkpoint
            os.write(2, f"{name}: the checkpoint is being written; exiting when it is complete\n".encode())
            return
        raise KeyboardInterrupt  # second signal outside a checkpoint write: stop waiting

    @contextlib.contextmanager
    def saving(self):
        """Signals arriving inside this block do not interrupt it."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False

    @property
    def requested(self):
        return self.signal_name is not None
