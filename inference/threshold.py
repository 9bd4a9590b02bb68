"""The decision threshold of predict.py and export.py, chosen without test labels.

At the end of training, training/loop.py scores a held-out slice of the train/good images (every k-th image,
TrainConfig.threshold_holdout) and writes <run>/holdout_scores.csv (path, reconstruction_error, feature_error,
score_lambda_<l> for l in models.scoring.DEFAULT_LAMBDAS; EMA weights). The default threshold is a high
quantile of those good scores (DEFAULT_QUANTILE, numpy's "linear" interpolation); an image is anomalous when
its score is strictly greater than the threshold. An explicit value (--threshold) overrides it.
The stored columns are the paper's image score (eq. 7); a threshold for a map image score (map_max, map_topk:
models/image_scores.py) is always computed on the held-out images listed there, scored with that
aggregation (the `rescore` callable of choose_threshold; inference/predict_images.Predictor.threshold).

Trade-off: the quantile only sees good images, so it bounds the false-alarm rate on images like the held-out
ones (about 1 - q of them would be flagged) and says nothing about how many defects are caught. A higher q
gives fewer false alarms and misses more subtle defects; a lower q flags more. With few held-out images the
high quantiles all sit between the two largest scores (q = 0.99 with 10 images is 0.91 of the way from the
second largest to the largest), so the threshold is close to the held-out maximum and noisy: hold out more
images (--threshold_holdout) or set --threshold from your own validation data when that matters.
"""
import csv
import dataclasses
import math
import os
from typing import Optional

import numpy as np

from data.files import display_path
from errors import ConfigError
import run_folder
from run_folder import HOLDOUT_SCORES_FILE  # the run folder's owner (no TensorFlow there)

DEFAULT_QUANTILE = 0.99
SCORE_COLUMN_PREFIX = "score_lambda_"


@dataclasses.dataclass(frozen=True)
class Threshold:
    value: float
    source: str                       # "explicit" | "holdout quantile"
    quantile: Optional[float] = None  # for "holdout quantile"
    n_holdout: int = 0
    rescored: bool = False            # the held-out images were scored again (other weights/lambda/checkpoint)

    def describe(self):
        if self.source == "explicit":
            return f"threshold {self.value:.9g} (explicit)"
        return (f"threshold {self.value:.9g} (quantile {self.quantile:g} of {self.n_holdout} held-out good "
                f"training images{', rescored' if self.rescored else ''})")


def quantile_threshold(scores, quantile=DEFAULT_QUANTILE):
    """The `quantile` (linear interpolation) of good scores."""
    scores = np.asarray(scores, np.float64)
    if scores.size == 0:
        raise ConfigError("no held-out scores to choose a threshold from: pass --threshold=<value>")
    if not 0.0 <= quantile <= 1.0:
        raise ConfigError(f"--threshold_quantile must be in [0, 1], got {quantile}")
    return float(np.quantile(scores, quantile, method="linear"))


def holdout_path(run_dir):
    return run_folder.path(run_dir, HOLDOUT_SCORES_FILE)


def read_holdout(run_dir):
    """holdout_scores.csv as {"path": [...], column: float64 array}; ConfigError when the run has none."""
    path = holdout_path(run_dir)
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} has no {HOLDOUT_SCORES_FILE} (trained with --threshold_holdout=0, or "
                          "training did not finish): pass --threshold=<value> to choose the decision threshold")
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:  # paths byte for byte
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ConfigError(f"{path} has no rows: pass --threshold=<value> to choose the decision threshold")
    table = {"path": [row["path"] for row in rows]}
    for column in rows[0]:
        if column != "path":
            try:
                table[column] = np.array([float(row[column]) for row in rows], np.float64)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{path}: column {column} is not numeric ({err}); retrain or pass "
                                  "--threshold=<value>") from None
    return table


def lambda_column(table, score_lambda):
    """The score_lambda_<l> column of a read_holdout table matching score_lambda, or None."""
    for column in table:
        if column.startswith(SCORE_COLUMN_PREFIX):
            try:
                value = float(column[len(SCORE_COLUMN_PREFIX):])
            except ValueError:
                continue
            if math.isclose(value, score_lambda, rel_tol=0.0, abs_tol=1e-9):
                return table[column]
    return None


def holdout_is_current(run_dir, checkpoint_path):
    """holdout_scores.csv is written right after the final checkpoint: a checkpoint written later (training
    continued and interrupted) or another checkpoint (best_on_test) is not what the stored scores describe."""
    csv_path = holdout_path(run_dir)
    index = checkpoint_path + ".index"
    if not (os.path.isfile(csv_path) and os.path.isfile(index)):
        return True  # nothing to compare; read_holdout reports a missing CSV
    return os.path.getmtime(index) <= os.path.getmtime(csv_path)


def stored_scores_fit(table, run_dir, checkpoint_path, weights, map_score, score_lambda, warn=None):
    """Whether the stored columns of holdout_scores.csv (table: read_holdout) are the held-out scores of these
    settings, so that no rescoring is needed: EMA weights, the paper's image score (not a map score) at a stored
    lambda, of the checkpoint the file was written after. A stale file whose held-out images are gone (e.g. a
    copied run folder without its data) is the best there is: used, after warn(one line)."""
    if weights != "ema" or map_score or lambda_column(table, score_lambda) is None:
        return False
    if holdout_is_current(run_dir, checkpoint_path):
        return True
    missing = [p for p in table["path"] if not os.path.isfile(p)]
    if not missing:
        return False
    if warn is not None:
        warn(f"warning: {holdout_path(run_dir)} is older than {checkpoint_path} and held-out image "
             f"{display_path(missing[0])} is not found to rescore it; using the stored scores")
    return True


def choose_threshold(run_dir, score_lambda, quantile=DEFAULT_QUANTILE, explicit=None, rescore=None):
    """The decision threshold for scores at score_lambda.

    explicit: a value that overrides everything (the run needs no holdout_scores.csv then).
    rescore: optional callable(paths) -> scores at score_lambda, used instead of the stored columns (for
    --weights=last, whose scores the stored EMA columns do not describe; for a map image score, which they do not
    hold) or when the CSV has no column for score_lambda (texture scores are a max over patches, so they cannot
    be recombined from the stored maxima).
    """
    if explicit is not None:
        if not math.isfinite(explicit):
            raise ConfigError(f"--threshold must be a finite number, got {explicit}")
        return Threshold(float(explicit), "explicit")
    table = read_holdout(run_dir)
    scores = None if rescore is not None else lambda_column(table, score_lambda)
    if scores is None:
        if rescore is None:
            raise ConfigError(f"{holdout_path(run_dir)} has no column for lambda {score_lambda:g}: use one of "
                              "its score_lambda_* values or pass --threshold=<value>")
        missing = [p for p in table["path"] if not os.path.isfile(p)]
        if missing:
            raise ConfigError(f"held-out image {display_path(missing[0])} listed in {holdout_path(run_dir)} is not found "
                              f"(needed to rescore for lambda {score_lambda:g} / these weights / this image "
                              "score): run from the "
                              "training folder or pass --threshold=<value>")
        scores = np.asarray(rescore(table["path"]), np.float64)
    return Threshold(quantile_threshold(scores, quantile), "holdout quantile", float(quantile), len(scores),
                     rescored=rescore is not None)


def verdicts(scores, threshold):
    """'anomalous' where score > threshold, else 'good'."""
    return np.where(np.asarray(scores) > threshold, "anomalous", "good")
