"""Image-level anomaly-detection metrics as pure numpy / scikit-learn functions (definitions: docs/EVALUATION.md).

The paper, section V-C; anomalous = 1 = positive class, higher score = more anomalous:
- `image_auroc`: `sklearn.metrics.roc_auc_score`.
- `max_balanced_accuracy`: B = (TPR + TNR) / 2 = 1/2 + max(TPR - FPR) over the points of
  `sklearn.metrics.roc_curve`, with the threshold that gives it (score >= threshold -> anomalous).
- `per_defect_auroc`: AUROC of the good images against the images of each defect type alone.
- `operating_point`: at a given threshold (score > threshold -> anomalous, predict.py's rule), the false-alarm
  rate (good images called anomalous / good images), the detection rate (anomalous images called anomalous /
  anomalous images, i.e. recall), precision (anomalous among those called anomalous; 0 when none is called
  anomalous, as scikit-learn's zero_division=0) and F1 (their harmonic mean; 0 when both are 0).
- `f1_max`: the best F1 over all thresholds (`sklearn.metrics.precision_recall_curve`, score >= threshold ->
  anomalous), with that threshold; `aupr`: `sklearn.metrics.average_precision_score` (area under the
  precision-recall curve as a step function; chance level = the fraction of anomalous images).

Labels and scores are checked by evaluation/metric_inputs.py: a test set with one class only or non-finite
scores raises `MetricUndefined` (a one-line `UserError`); mismatched shapes raise `ValueError`.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from evaluation.metric_inputs import MetricUndefined, image_inputs

__all__ = ["image_auroc", "max_balanced_accuracy", "per_defect_auroc", "operating_point", "f1_max", "aupr"]


def image_auroc(labels, scores) -> float:
    """Area under the ROC curve of image scores; labels 1 = anomalous (positive), 0 = good."""
    labels, scores = image_inputs(labels, scores, "AUROC")
    return float(roc_auc_score(labels, scores))


def max_balanced_accuracy(labels, scores) -> tuple[float, float]:
    """(B, threshold): maximum balanced accuracy B = (TPR + TNR) / 2 over thresholds, and its threshold.

    An image is called anomalous when score >= threshold. Among thresholds that tie for the maximum the highest
    is returned (the first ROC point reaching it). When the best is to call nothing anomalous (B = 0.5 at
    scikit-learn's infinite first threshold), the returned threshold is the smallest float above the highest
    score, which gives the same B.
    """
    labels, scores = image_inputs(labels, scores, "balanced accuracy")
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))
    threshold = float(thresholds[best])
    if not np.isfinite(threshold):
        threshold = float(np.nextafter(scores.max(), np.inf))
    return float(0.5 + (tpr[best] - fpr[best]) / 2.0), threshold


def per_defect_auroc(labels, defect_types, scores) -> dict[str, float]:
    """AUROC of the good images (label 0) against the anomalous images of each defect type, sorted by name.

    defect_types gives each image's type (e.g. "good", "crack"); the types of anomalous images define the keys.
    """
    labels, scores = image_inputs(labels, scores, "per-defect AUROC")
    defect_types = np.asarray(defect_types, dtype=object)
    if defect_types.shape != labels.shape:
        raise ValueError(f"defect_types must have one entry per image, got {defect_types.shape} for {labels.shape}")
    good = ~labels
    result = {}
    for defect in sorted({str(d) for d in defect_types[labels]}):
        chosen = (defect_types == defect) & labels
        subset = good | chosen
        result[defect] = float(roc_auc_score(labels[subset], scores[subset]))
    return result


def operating_point(labels, scores, threshold) -> dict[str, float]:
    """{false_alarm_rate, detection_rate, precision, f1} when images with score > threshold are called anomalous
    (the rule of predict.py and the exported model). See the module docstring for the edge cases."""
    labels, scores = image_inputs(labels, scores, "the operating point")
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise MetricUndefined(f"the operating point is undefined: the threshold is {threshold}")
    flagged = scores > threshold
    true_positives = int(np.count_nonzero(flagged & labels))
    false_positives = int(np.count_nonzero(flagged & ~labels))
    detection_rate = true_positives / int(labels.sum())
    precision = true_positives / (true_positives + false_positives) if true_positives + false_positives else 0.0
    f1 = 2.0 * precision * detection_rate / (precision + detection_rate) if precision + detection_rate else 0.0
    return {"false_alarm_rate": false_positives / int((~labels).sum()), "detection_rate": float(detection_rate),
            "precision": float(precision), "f1": float(f1)}


def f1_max(labels, scores) -> tuple[float, float]:
    """(F1, threshold): the maximum F1 over thresholds (score >= threshold -> anomalous) and its threshold (the
    highest among ties)."""
    labels, scores = image_inputs(labels, scores, "F1-max")
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    total = precision + recall
    f1 = np.divide(2.0 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    best = np.flatnonzero(f1 == f1.max())[-1]  # thresholds ascend: the last tie is the highest threshold
    return float(f1[best]), float(thresholds[best])


def aupr(labels, scores) -> float:
    """Area under the precision-recall curve of image scores: sklearn's average_precision_score (anomalous =
    positive)."""
    labels, scores = image_inputs(labels, scores, "AUPR")
    return float(average_precision_score(labels, scores))
