"""predict.py's progress over its batches: a tqdm bar on a terminal (tqdm reads the terminal's width at each redraw
and stays one column short of it), one plain line per batch when stderr is a file or a pipe; messages (a skipped
file) above the bar."""
import time

from tqdm import tqdm


class BatchProgress:
    def __init__(self, total, stream, shown, clock=time.monotonic, redraw_seconds=0.5):
        """total images; shown: print progress at all (predict.py: more than one batch); clock: seconds (of the
        plain lines' rate); redraw_seconds: the bar is redrawn at most this often."""
        self.total, self.stream, self.clock = total, stream, clock
        self.started = clock()
        self.shown = shown
        self.bar = (tqdm(total=total, unit="img", desc="scoring", file=stream, dynamic_ncols=True, position=0,
                         leave=True, mininterval=redraw_seconds, postfix="0 anomalous")
                    if shown and stream.isatty() else None)

    def update(self, done, n_anomalous):
        """done images of total scored so far (skipped ones included), n_anomalous of them anomalous."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{n_anomalous} anomalous", refresh=False)
            self.bar.update(done - self.bar.n)
        elif self.shown:
            rate = done / max(self.clock() - self.started, 1e-9)
            print(f"{done}/{self.total} images ({rate:.1f} img/s), {n_anomalous} anomalous so far",
                  file=self.stream, flush=True)

    def message(self, text):
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:  # also on an error: the bar's line is ended before the error is printed
            self.bar.close()
