"""Training progress: one live line on a terminal, one plain line per logging interval when the output is a file.

The live line follows the terminal width (read at each redraw, so a resized window is followed) and never
reaches the last column (a full-width line would wrap, and the next redraw would scroll): when the fields do
not fit, the least important are dropped first (the losses from the last, then the image rate, then the ETA),
and a line that still does not fit is cut. The ETA comes from the steady-state rate only: the first steps
(tf.function tracing, the input pipeline filling its buffers) are excluded, and "ETA --" is shown until there
is a steady-state rate. Only the standard library is used (shutil-style width lookup, no terminal library).
"""
import os
import sys
import threading
import time

WARMUP_STEPS = 10       # steps after the start (or resume) left out of the ETA
REDRAW_SECONDS = 0.5    # the live line is redrawn at most this often (forced updates always draw)
DEFAULT_WIDTH = 80      # when the width of a terminal cannot be read


def format_duration(seconds):
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def terminal_width(stream):
    """Columns of the terminal behind stream: $COLUMNS when set (as shutil.get_terminal_size), else the
    terminal's own size, else DEFAULT_WIDTH."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size(stream.fileno()).columns or DEFAULT_WIDTH
    except (AttributeError, OSError, ValueError):
        return DEFAULT_WIDTH


def fit(fields, width):
    """Join fields with " | " into at most width - 1 characters: drop fields from the end (the least important
    last) while it does not fit, keep the first one always, and cut it if it alone is too long."""
    limit = max(width - 1, 1)
    fields = list(fields)
    while len(fields) > 1 and len(" | ".join(fields)) > limit:
        fields.pop()
    return " | ".join(fields)[:limit]


class Progress:
    def __init__(self, total_steps, start_step=0, stream=None, live=None, width=None, clock=time.monotonic,
                 warmup_steps=WARMUP_STEPS):
        """live: redraw one line in place (default: when stream is a terminal); width: the columns to fit in
        (default: the terminal's, read at each redraw); clock: seconds (time.monotonic; tests pass a fake one)."""
        self.total = total_steps
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.width = width
        self.clock = clock
        self._warmup_end = start_step + warmup_steps
        self._steady = None  # (step, time) once the warm-up steps are done
        self._last_draw = None
        self._line_open = False  # a live line is on screen without its newline
        self._lock = threading.RLock()  # message() may come from the signal-watching thread

    def eta(self, step, now):
        """Seconds left at the steady-state rate (steps after the warm-up), or None before there is one."""
        if self._steady is None:
            if step >= self._warmup_end:
                self._steady = (step, now)
            return None
        steady_step, steady_time = self._steady
        if step <= steady_step or now <= steady_time:
            return None
        rate = (step - steady_step) / (now - steady_time)
        return (self.total - step) / rate

    def fields(self, step, images_per_s, losses, eta):
        """The fields of one line, most important first."""
        parts = [f"step {step}/{self.total}", "ETA --" if eta is None else f"ETA {format_duration(eta)}",
                 f"{images_per_s:.0f} img/s"]
        return parts + [f"{name} {value:.4g}" for name, value in losses.items()]

    def update(self, step, images_per_s, losses, force=False):
        """Called after every step (the ETA needs them all); draws at most every REDRAW_SECONDS on a terminal,
        and on force (the logging interval: the only lines written when the output is not a terminal)."""
        now = self.clock()
        eta = self.eta(step, now)
        if not force and (not self.live or (self._last_draw is not None
                                            and now - self._last_draw < REDRAW_SECONDS)):
            return
        self._last_draw = now
        fields = self.fields(step, images_per_s, losses, eta)
        with self._lock:
            if self.live:
                width = self.width or terminal_width(self.stream)
                self.stream.write("\r" + fit(fields, width).ljust(max(width - 1, 1)))
                self._line_open = True
            else:
                self.stream.write(" | ".join(fields) + "\n")
            self.stream.flush()

    def message(self, text):
        """One line of text at once, below the live line (which the next update redraws)."""
        with self._lock:
            self.stream.write(("\n" if self._line_open else "") + text + "\n")
            self._line_open = False
            self.stream.flush()

    def close(self):
        with self._lock:
            if self._line_open:
                self.stream.write("\n")
                self.stream.flush()
            self._line_open = False
