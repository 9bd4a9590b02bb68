"""SIGINT / SIGTERM set a flag; the training loop (training.hooks.StopHook) checkpoints and exits at the end of
the step with the signal's exit code (130 for Ctrl-C, 143 for SIGTERM; errors.Interrupted). The first signal
says "saving checkpoint..." at once; a second one while the checkpoint is being written waits for the write to
end, at any other time it stops waiting (KeyboardInterrupt).

"At once": Python runs a signal handler only when the main thread is back in Python code, which during a
training step (TensorFlow's C++ code) can take seconds. So the signal also wakes a small thread (through
signal.set_wakeup_fd, written by the C-level handler the moment the signal arrives) that prints the line."""
import contextlib
import os
import signal
import threading

from errors import Interrupted  # noqa: F401  (raised by the loop once the checkpoint is written)


def _write_stderr(text):
    os.write(2, (text + "\n").encode())


class StopRequest:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, announce=None, current_step=None):
        """announce(text): writes one line at once (default: straight to stderr; the training loop passes its
        Progress.message, which first ends the live progress line). current_step(): the last completed step or
        None, read when the first message is said (default: the step attribute, kept up to date by the
        caller); training.hooks.StopHook passes the loop's step counter."""
        self.signal_name = None
        self.step = None  # the last completed step (unless current_step is given): named in the first message
        self._current_step = current_step
        self._announce = announce or _write_stderr
        self._announced = False
        self._lock = threading.RLock()
        self._previous = {}
        self._saving = False
        self._pipe = self._watcher = None
        self._previous_wakeup_fd = -1

    def __enter__(self):
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # set_wakeup_fd needs a non-blocking descriptor
        self._pipe = (read_fd, write_fd)
        self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd)
        self._watcher = threading.Thread(target=self._watch, name="stop-request", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc):
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        read_fd, write_fd = self._pipe
        os.write(write_fd, b"\0")  # no signal is numbered 0: tells the watcher to end
        self._watcher.join()
        os.close(read_fd)
        os.close(write_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _watch(self):
        """The thread: one byte per signal (its number) as soon as it arrives; announces the first."""
        while True:
            data = os.read(self._pipe[0], 1)
            if not data or data == b"\0":
                return
            if data[0] in [int(sig) for sig in self.SIGNALS]:
                self._first_message(signal.Signals(data[0]).name)

    def _first_message(self, name):
        """Said once, by whichever comes first: the watching thread or the Python-level handler."""
        with self._lock:
            if self._announced:
                return
            self._announced = True
        step = self.step if self._current_step is None else self._current_step()
        where = "" if step is None else f" (interrupted at step {step})"
        self._announce(f"{name}: saving checkpoint...{where}")

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal_name is None:
            self.signal_name = name
            self._first_message(name)
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
