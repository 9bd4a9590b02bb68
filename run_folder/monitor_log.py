"""metrics.csv of a run trained with --monitor_every: the test AUROC of the EMA weights every N batches.

Monitoring only (it never selects a checkpoint unless --keep_best_on_test, as under --protocol=authors; the
purpose column says which). Each monitoring step writes one row
per lambda of MONITOR_LAMBDAS plus the run's score_lambda: the scores are computed once and the lambdas only mix
L_R and L_fD (eq. 7), so the extra rows cost nothing and show how the choice of lambda plays out over training.
On resume, rows after the restored step are dropped, as in train_log.csv. The same values go to TensorBoard
under monitor/ (write_scalars).
"""
import csv
import os

from run_folder.files import read_csv_rows
from run_folder.train_log import rewrite_csv, rows_up_to

# reconstruction_specificity: of the monitored (EMA) weights on up to 64 good test images
# (evaluation/diagnostics.py; about 1 = one template for every input); the same on each lambda's row.
COLUMNS = ("step", "purpose", "weights", "lambda", "image_auroc", "reconstruction_specificity")
PURPOSE = "monitoring (test set, not for model selection)"
SELECTING_PURPOSE = "test-set selection of checkpoints_best_on_test (optimistic)"  # --keep_best_on_test
MONITOR_LAMBDAS = (0.0, 1.0)


def monitor_lambdas(score_lambda):
    """The run's score_lambda first, then the others of MONITOR_LAMBDAS."""
    return (float(score_lambda),) + tuple(lam for lam in MONITOR_LAMBDAS if lam != float(score_lambda))


def read_rows(path):
    return read_csv_rows(path)


def rows_at_lambda(rows, score_lambda):
    """(step, auroc) of the rows scored with score_lambda, in file order."""
    return [(int(row["step"]), float(row["image_auroc"])) for row in rows
            if float(row["lambda"]) == float(score_lambda)]


class MonitorLog:
    def __init__(self, path, resume_step, selects=False):
        """Keeps the rows up to resume_step (all of them for a new run: resume_step 0 drops every row).
        selects: the rows pick the best-on-test checkpoint (--keep_best_on_test); their purpose says so."""
        self.path = path
        self.purpose = SELECTING_PURPOSE if selects else PURPOSE
        kept = rows_up_to(path, resume_step)
        if os.path.exists(path):
            rewrite_csv(path, COLUMNS, kept)
        self.rows = kept

    def best(self, score_lambda):
        """Highest monitored AUROC at score_lambda so far (None before the first row), as written (6 decimals)."""
        values = [auroc for _, auroc in rows_at_lambda(self.rows, score_lambda)]
        return max(values) if values else None

    def append(self, step, weights, aurocs, specificity=None):
        """aurocs: {lambda: image AUROC}, written in the given order; specificity: the ratio, or None."""
        spec = "" if specificity is None else f"{specificity:.6f}"
        new = [{"step": step, "purpose": self.purpose, "weights": weights, "lambda": lam, "image_auroc": f"{auroc:.6f}",
                "reconstruction_specificity": spec} for lam, auroc in aurocs.items()]
        exists = os.path.exists(self.path)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            if not exists:
                writer.writeheader()
            writer.writerows(new)
        self.rows.extend({k: str(v) for k, v in row.items()} for row in new)


def scalar_tags(score_lambda, lambdas):
    """{lambda: TensorBoard tag} of the monitored test AUROC: monitor/test_auroc_ema for the run's score_lambda,
    monitor/test_auroc_ema_lambda<lambda> for the other lambdas (the prefix says it is monitoring)."""
    return {lam: "monitor/test_auroc_ema" if float(lam) == float(score_lambda)
            else f"monitor/test_auroc_ema_lambda{float(lam):g}" for lam in lambdas}


SPECIFICITY_TAG = "monitor/reconstruction_specificity_ema"


def write_scalars(writer, step, score_lambda, aurocs, specificity=None):
    """The rows of one monitoring step as TensorBoard scalars (writer: a tf.summary writer)."""
    import tensorflow as tf
    tags = scalar_tags(score_lambda, aurocs)
    with writer.as_default(step=step):
        for lam, auroc in aurocs.items():
            tf.summary.scalar(tags[lam], float(auroc))
        if specificity is not None:
            tf.summary.scalar(SPECIFICITY_TAG, float(specificity))
    writer.flush()
