"""One live progress line on a terminal; a plain line per logging interval when the output is a file."""
import sys
import time


def format_duration(seconds):
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    def __init__(self, total_steps, stream=None):
        self.total = total_steps
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._last_draw = 0.0

    def update(self, step, images_per_s, steps_per_s, losses, force=False):
        now = time.monotonic()
        if not force and (not self.live or now - self._last_draw < 0.5):
            return
        self._last_draw = now
        eta = (self.total - step) / steps_per_s if steps_per_s > 0 else 0
        parts = [f"step {step}/{self.total}", f"{images_per_s:.0f} img/s", f"ETA {format_duration(eta)}"]
        parts += [f"{name} {value:.4g}" for name, value in losses.items()]
        line = " | ".join(parts)
        if self.live:
            self.stream.write("\r" + line[:160].ljust(160))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
