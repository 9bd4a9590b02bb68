"""CSV files of one evaluated run (written into <run>/eval/ by evaluation/evaluate_run.py).

scores.csv      one row per test image, in the stable test order of data/files.py:
                path, defect_type, label (0 good, 1 anomalous), reconstruction_error (L_R, eq. 8),
                feature_error (L_fD, eq. 9), then score_lambda_<l> (eq. 7) for each lambda, ascending.
                Textures: L_R and L_fD are the maxima over the image's patches and each score is the maximum
                over the patches of eq. 7 (so it is not eq. 7 of the two maxima). With a map image score
                (models/image_scores.py) a last column score_<image score> (e.g. score_map_max) holds it.
metrics.csv     one row per lambda, ascending: lambda, image_auroc, balanced_accuracy, threshold, pixel_auroc,
                aupro, holdout_threshold, false_alarm_rate, detection_rate, precision, f1, f1_max, aupr, weights,
                checkpoint, step, feature_layer, image_score (paper), topk_percent (empty), protocol (fair: the
                latest checkpoint; authors: the best-on-test checkpoint, selected on the test set, as the
                authors' code did: optimistic).
                holdout_threshold is predict.py's default threshold (quantile 0.99 of the run's held-out good
                training images, at this row's lambda / image score); false_alarm_rate (good test images
                called anomalous), detection_rate (anomalous ones called anomalous), precision and f1 are at it
                (score > threshold: anomalous); all five empty when the run has no held-out images
                (--threshold_holdout=0). f1_max (best F1 over all thresholds, test-optimal) and aupr
                (average precision) need no threshold.
                Pixel metrics do not depend on lambda (the anomaly map is the per-pixel L1 error) and repeat on
                every row; empty without masks. A map image score (map_max, map_topk with its topk_percent) does
                not depend on lambda either: one row, lambda empty.
per_defect.csv  lambda, defect_type, n (anomalous images of that type), auroc (good images vs that type); lambda
                empty for a map image score.

Floats are written with repr (shortest round-trip form), so reading the files back gives the exact values the
metrics were computed from. Text is UTF-8; bytes of a file name that are not UTF-8 are written as U+FFFD
(data.files.display_path).
"""
import csv

import numpy as np

from data.files import display_path
from run_folder import atomic_write

SCORE_FIELDS = ("path", "defect_type", "label", "reconstruction_error", "feature_error")
OPERATING_POINT_FIELDS = ("holdout_threshold", "false_alarm_rate", "detection_rate", "precision", "f1")
THRESHOLD_FREE_FIELDS = ("f1_max", "aupr")
METRIC_FIELDS = ("lambda", "image_auroc", "balanced_accuracy", "threshold", "pixel_auroc", "aupro",
                 *OPERATING_POINT_FIELDS, *THRESHOLD_FREE_FIELDS, "weights", "checkpoint", "step", "feature_layer",
                 "image_score", "topk_percent", "protocol")
PER_DEFECT_FIELDS = ("lambda", "defect_type", "n", "auroc")


def score_column(score_lambda) -> str:
    """Column name of a lambda's score, e.g. score_lambda_0.1 (same as the training job's holdout_scores.csv)."""
    return f"score_lambda_{float(score_lambda):g}"


def map_score_column(image_score, topk_percent=None) -> str:
    """Column name of a map image score in scores.csv: score_map_max, score_map_topk, score_map_topk5, ..."""
    from models.image_scores import DEFAULT_TOPK_PERCENT, name
    return f"score_{name(image_score, DEFAULT_TOPK_PERCENT if topk_percent is None else topk_percent)}"


def _lambda_order(row):
    """Ascending lambda; rows without one (map image scores) last."""
    return (row["lambda"] is None, row["lambda"] or 0.0)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return display_path(value)
    return value


def _write(path, fields, rows):
    with atomic_write(path, newline="") as handle:  # never a truncated file, even if the write fails
        writer = csv.writer(handle)
        writer.writerow(fields)
        for row in rows:
            writer.writerow([_cell(row.get(name)) for name in fields])
    return path


def write_scores(path, paths, defect_types, labels, reconstruction_error, feature_error, scores, extra=None):
    """scores: {lambda: per-image scores}; columns for the lambdas in ascending order, then extra {column:
    per-image values} (a map image score)."""
    lambdas = sorted(scores)
    extra = extra or {}
    fields = SCORE_FIELDS + tuple(score_column(lam) for lam in lambdas) + tuple(extra)
    rows = []
    for i, image_path in enumerate(paths):
        row = {"path": str(image_path), "defect_type": str(defect_types[i]), "label": int(labels[i]),
               "reconstruction_error": float(reconstruction_error[i]), "feature_error": float(feature_error[i])}
        for lam in lambdas:
            row[score_column(lam)] = float(scores[lam][i])
        for column, values in extra.items():
            row[column] = float(values[i])
        rows.append(row)
    return _write(path, fields, rows)


def write_metrics(path, rows):
    """rows: dicts with the METRIC_FIELDS keys (None = empty cell)."""
    return _write(path, METRIC_FIELDS, sorted(rows, key=_lambda_order))


def write_per_defect(path, rows):
    """rows: dicts with the PER_DEFECT_FIELDS keys."""
    return _write(path, PER_DEFECT_FIELDS, sorted(rows, key=lambda r: (_lambda_order(r), r["defect_type"])))


def _float_or_none(text):
    return None if text in ("", None) else float(text)


def read_metrics(path):
    """metrics.csv back as a list of dicts (floats for the metric columns, None for empty cells; image_score
    'paper' and protocol from the checkpoint in files written before they existed)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for name in ("lambda", "image_auroc", "balanced_accuracy", "threshold", "pixel_auroc", "aupro",
                     *OPERATING_POINT_FIELDS, *THRESHOLD_FREE_FIELDS, "topk_percent"):
            row[name] = _float_or_none(row.get(name))
        row["image_score"] = row.get("image_score") or "paper"
        row["protocol"] = row.get("protocol") or ("authors" if row.get("checkpoint") == "best_on_test" else "fair")
        row["step"] = int(row["step"]) if row.get("step") not in ("", None) else None
    return rows


def metrics_at(rows, score_lambda):
    """The metrics.csv row of one lambda (rows from read_metrics), or None."""
    for row in rows:
        if row["lambda"] is not None and abs(row["lambda"] - float(score_lambda)) < 1e-12:
            return row
    return None
