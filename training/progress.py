"""Training progress: a tqdm bar on a terminal, one plain line per logging interval when the output is a file.

On a terminal the line is a tqdm bar: `step 1200/3000  40%|████      | ETA 2:03 | 52 img/s | critic_loss ...`.
Its width follows the terminal (read at each redraw, so a resized window is followed) and stays one column
short of it (a full-width line can wrap, and the next redraw would scroll); when the fields right of the bar do
not fit, the least important are dropped first (the losses from the last, then the image rate, then the ETA),
and the bar shrinks to MIN_BAR_WIDTH before that. Messages (Ctrl-C, checkpoint notes) go through tqdm.write,
which lifts the bar, prints the line and redraws the bar below it.
Off a terminal (a log file, a pipe, CI) nothing is redrawn: one plain line per logging interval with every field.
The ETA comes from the steady-state rate only: the first steps (tf.function tracing, the input pipeline filling
its buffers) are excluded, and "ETA --" is shown until there is a steady-state rate. tqdm's own rate and
remaining-time estimate are not shown: they include those first steps.
"""
import os
import sys
import threading
import time

from tqdm import tqdm

WARMUP_STEPS = 10       # steps after the start (or resume) left out of the ETA
REDRAW_SECONDS = 0.5    # the live line is redrawn at most this often (forced updates always draw)
DEFAULT_WIDTH = 80      # when the width of a terminal cannot be read
MIN_BAR_WIDTH = 10      # the bar itself shrinks to this many columns before fields are dropped
BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}|{right}"


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


def fit_right(fields, room):
    """The fields right of the bar, " ETA 2:03 | 52 img/s | ...", in at most room characters, the least important
    dropped first; "" when not even the first fits."""
    fields = list(fields)
    while fields and len(" " + " | ".join(fields)) > room:
        fields.pop()
    return " " + " | ".join(fields) if fields else ""


class _Bar(tqdm):
    """tqdm with one more bar_format key, {right}: the fields right of the bar, fitted by Progress (tqdm's
    documented way to add a format key is to extend format_dict)."""
    monitor_interval = 0  # no monitor thread: this bar is redrawn only when Progress says so

    def __init__(self, *args, right="", **kwargs):
        self.right = right  # before tqdm's __init__, which draws the bar once
        super().__init__(*args, **kwargs)

    @property
    def format_dict(self):
        return dict(super().format_dict, right=self.right)


class Progress:
    def __init__(self, total_steps, start_step=0, stream=None, live=None, width=None, clock=time.monotonic,
                 warmup_steps=WARMUP_STEPS):
        """live: a tqdm bar redrawn in place (default: when stream is a terminal); width: the columns to fit in
        (default: the terminal's, read at each redraw); clock: seconds (time.monotonic; tests pass a fake one)."""
        self.total = total_steps
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.width = width
        self.clock = clock
        self._warmup_end = start_step + warmup_steps
        self._steady = None  # (step, time) once the warm-up steps are done
        self._last_draw = None
        self._bar = None  # the tqdm bar, made at the first live draw
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
                self._draw(step, fields)
            else:
                self.stream.write(" | ".join(fields) + "\n")
                self.stream.flush()

    def _draw(self, step, fields):
        columns = max((self.width or terminal_width(self.stream)) - 1, 1)
        left = fields[0]  # "step n/total": tqdm adds the percentage, the bar and the fields right of it
        right = fit_right(fields[1:], columns - len(left) - len(" 100%||") - MIN_BAR_WIDTH)
        if self._bar is None:  # tqdm draws it once here
            self._bar = _Bar(total=self.total, initial=step, desc=left, right=right, ncols=columns,
                             file=self.stream, position=0, leave=True, bar_format=BAR_FORMAT, mininterval=0,
                             smoothing=0)
            return
        self._bar.desc, self._bar.right, self._bar.n = left, right, step
        self._bar.ncols = columns  # tqdm cuts the line to this and sizes the bar to what is left
        self._bar.refresh()

    def message(self, text):
        """One line of text at once, above the live bar (which tqdm redraws below it)."""
        with self._lock:
            if self._bar is not None:
                self._bar.write(text, file=self.stream)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def close(self):
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
                self.stream.flush()
