"""train_log.csv: one row per logging interval, appended and flushed as training goes (nothing kept in memory
beyond the current interval's sums). On resume, rows after the restored step are dropped first (an atomic
rewrite); a torn last line (a kill during an append) is dropped on read."""
import csv
import math

from run_folder.files import atomic_write, read_csv_rows

LOSS_COLUMNS = ("critic_loss", "gradient_penalty", "critic_total", "adversarial_loss", "image_reconstruction",
                "latent_reconstruction", "consistency_loss", "generator_encoder_total", "real_score",
                "fake_score")
# elapsed_s: wall seconds since the run's first start (monitoring and previews included); cpu_s: CPU seconds of
# the process spent on training batches only (both cores counted: about 2 per wall second on an idle 2-core CPU).
COLUMNS = ("step",) + LOSS_COLUMNS + ("images_per_s", "elapsed_s", "cpu_s")


class IntervalMeans:
    """Running sums of each loss over the current logging interval; each term is averaged over the updates
    that report it (critic terms over critic updates, G/E terms over G/E updates, scores over both)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.sums, self.counts = {}, {}

    def add(self, values):
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self):
        return {name: self.sums[name] / self.counts[name] for name in self.sums}


def rows_up_to(path, step):
    """The rows of a CSV log with a "step" column up to step (none when the file does not exist)."""
    return [row for row in read_csv_rows(path) if int(row["step"]) <= step]


def rewrite_csv(path, columns, rows):
    """Write the header and rows (dicts; missing columns left empty), replacing the file atomically."""
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in columns} for row in rows)


class TrainLog:
    def __init__(self, path, resume_step):
        self.path = path
        rewrite_csv(path, COLUMNS, rows_up_to(path, resume_step))
        self._handle = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._handle, COLUMNS)

    def write(self, step, means, images_per_s, elapsed_s, cpu_s):
        row = {"step": step, "images_per_s": f"{images_per_s:.1f}", "elapsed_s": f"{elapsed_s:.1f}",
               "cpu_s": f"{cpu_s:.1f}"}
        for name in LOSS_COLUMNS:
            value = means.get(name)
            row[name] = "" if value is None else f"{value:.6g}"
        self._writer.writerow(row)
        self._handle.flush()

    def close(self):
        self._handle.close()


def first_non_finite(values):
    """Name of the first NaN/Inf value in a dict of floats, or None."""
    for name, value in values.items():
        if not math.isfinite(float(value)):
            return name
    return None
