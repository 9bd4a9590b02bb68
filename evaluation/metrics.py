"""Anomaly-detection metrics as pure numpy / scikit-learn functions (definitions: docs and metrics.md).

Image level (the paper, section V-C), anomalous = 1 = positive class, higher score = more anomalous:
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

Pixel level (MVTec AD convention; the paper has none):
- `pixel_auroc`: ROC AUC over every pixel of every image. Computed exactly as the Mann-Whitney statistic
  (ties count one half) from the sorted negative pixels, which equals `roc_auc_score` (tests check it to 1e-9)
  but needs one float copy of the negatives instead of several float64/int64 arrays: scikit-learn took 9 s and
  1.4 GB for 16M pixels (so ~40 s and ~5 GB for 1000 maps of 256x256 = 65M pixels); this takes ~9 s and
  ~0.3 GB beyond the float32 inputs for the 65M pixels (2 shared CPU cores).
- `aupro`: area under the per-region-overlap curve up to FPR 0.3, normalized to [0, 1] (Bergmann et al.,
  IJCV 2021). Exact by default: every distinct map value is a threshold, as in the MVTec AD reference code,
  computed by sorting the pixels once and reading the curve from cumulative counts (PRO is a TPR in which each
  anomalous pixel weighs 1 / (size of its component * number of components)); ~11 s and ~0.6 GB beyond the
  inputs for 65M pixels. Tests compare it with a brute-force implementation of the definition.
- `smooth_maps`, `resize_maps`: Gaussian smoothing and bilinear resizing of anomaly maps, applied before the
  pixel metrics.

A metric that cannot be computed from the data (one class only, non-finite scores) raises `MetricUndefined`,
a `UserError` whose one-line message says why. Shape mismatches are programming errors: `ValueError`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from errors import UserError

__all__ = [
    "MetricUndefined",
    "image_auroc",
    "max_balanced_accuracy",
    "per_defect_auroc",
    "operating_point",
    "f1_max",
    "aupr",
    "pixel_auroc",
    "pro_curve",
    "aupro",
    "smooth_maps",
    "resize_maps",
]


class MetricUndefined(UserError):
    """A metric that the given labels/scores cannot define, e.g. AUROC on a test set with one class only."""


# ---------------------------------------------------------------------------------------------- helpers


def _image_inputs(labels, scores, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated 1-D boolean labels (True = anomalous) and float64 scores, both classes present."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels and scores must be 1-D of equal length, got {labels.shape} and {scores.shape}")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be 0 (good) or 1 (anomalous)")
        labels = labels.astype(bool)
    _check_classes(int(labels.sum()), int(labels.size - labels.sum()), metric, "images")
    _check_finite(scores, metric, "scores")
    return labels, scores


def _check_classes(n_pos: int, n_neg: int, metric: str, what: str) -> None:
    if n_pos == 0:
        if what == "images":
            raise MetricUndefined(f"{metric} is undefined: the test set has no anomalous images")
        raise MetricUndefined(f"{metric} is undefined: the ground-truth masks have no anomalous pixels")
    if n_neg == 0:
        if what == "images":
            raise MetricUndefined(f"{metric} is undefined: the test set has no good images")
        raise MetricUndefined(f"{metric} is undefined: every ground-truth pixel is anomalous (no normal pixels)")


def _check_finite(values: np.ndarray, metric: str, what: str) -> None:
    if not np.isfinite(values).all():
        bad = int(values.size - np.isfinite(values).sum())
        raise MetricUndefined(
            f"{metric} is undefined: {bad} of {values.size} {what} are NaN or infinite (did training diverge?)"
        )


def _pixel_inputs(masks, maps, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Masks as bool (N, H, W) (> 0.5 is anomalous) and maps as a float array of the same shape."""
    masks = np.asarray(masks)
    maps = np.asarray(maps)
    if masks.shape != maps.shape or masks.ndim not in (2, 3):
        raise ValueError(f"masks and maps must have equal shapes (N, H, W) or (H, W), got {masks.shape} and {maps.shape}")
    if masks.ndim == 2:
        masks, maps = masks[None], maps[None]
    masks = masks if masks.dtype == bool else masks > 0.5
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float64)
    n_pos = int(np.count_nonzero(masks))
    _check_classes(n_pos, masks.size - n_pos, metric, "pixels")
    _check_finite(maps, metric, "anomaly map values")
    return masks, maps


# ---------------------------------------------------------------------------------------------- image level


def image_auroc(labels, scores) -> float:
    """Area under the ROC curve of image scores; labels 1 = anomalous (positive), 0 = good."""
    labels, scores = _image_inputs(labels, scores, "AUROC")
    return float(roc_auc_score(labels, scores))


def max_balanced_accuracy(labels, scores) -> tuple[float, float]:
    """(B, threshold): maximum balanced accuracy B = (TPR + TNR) / 2 over thresholds, and its threshold.

    An image is called anomalous when score >= threshold. Among thresholds that tie for the maximum the highest
    is returned (the first ROC point reaching it). When the best is to call nothing anomalous (B = 0.5 at
    scikit-learn's infinite first threshold), the returned threshold is the smallest float above the highest
    score, which gives the same B.
    """
    labels, scores = _image_inputs(labels, scores, "balanced accuracy")
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
    labels, scores = _image_inputs(labels, scores, "per-defect AUROC")
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
    labels, scores = _image_inputs(labels, scores, "the operating point")
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
    labels, scores = _image_inputs(labels, scores, "F1-max")
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    total = precision + recall
    f1 = np.divide(2.0 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    best = np.flatnonzero(f1 == f1.max())[-1]  # thresholds ascend: the last tie is the highest threshold
    return float(f1[best]), float(thresholds[best])


def aupr(labels, scores) -> float:
    """Area under the precision-recall curve of image scores: sklearn's average_precision_score (anomalous =
    positive)."""
    labels, scores = _image_inputs(labels, scores, "AUPR")
    return float(average_precision_score(labels, scores))


# ---------------------------------------------------------------------------------------------- pixel level


def pixel_auroc(masks, maps) -> float:
    """ROC AUC over all pixels of all images; masks (N, H, W) in {0, 1}, maps (N, H, W) float.

    Equals sklearn's roc_auc_score on the flattened arrays: AUC = P(pos > neg) + P(pos == neg) / 2, counted
    exactly with integer ranks against the sorted negative pixels (see the module docstring for why).
    """
    masks, maps = _pixel_inputs(masks, maps, "pixel AUROC")
    negatives = maps[~masks]
    negatives.sort()
    positives = maps[masks]
    below = np.searchsorted(negatives, positives, side="left")
    not_above = np.searchsorted(negatives, positives, side="right")
    # Sums of int64 counts are exact; the halves of the ties are added as (below + not_above) / 2.
    wins_twice = int(below.sum(dtype=np.int64)) + int(not_above.sum(dtype=np.int64))
    return float(wins_twice / (2.0 * positives.size * negatives.size))


def _region_weights(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Per anomalous pixel (in masks[m] order): 1 / size of its 8-connected component, and the component count."""
    structure = np.ones((3, 3), dtype=int)
    weights, n_regions = [], 0
    for mask in masks:
        if not mask.any():
            continue
        labeled, n = ndimage.label(mask, structure=structure)
        sizes = np.bincount(labeled.ravel())
        weights.append(1.0 / sizes[labeled[mask]])
        n_regions += n
    return np.concatenate(weights), n_regions


def _trapezoid_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under y(x) for x in [x[0], x_max]; x non-decreasing, y linearly interpolated at x_max."""
    inside = int(np.searchsorted(x, x_max, side="right"))  # points with x <= x_max
    area = float(np.sum((y[1:inside] + y[: inside - 1]) * np.diff(x[:inside])) / 2.0)
    if inside < x.size and x[inside - 1] < x_max:
        x0, x1, y0, y1 = x[inside - 1], x[inside], y[inside - 1], y[inside]
        y_at = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += (y0 + y_at) * (x_max - x0) / 2.0
    return area


def pro_curve(masks, maps, max_fpr: float = 1.0, num_thresholds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, pro) points of the per-region-overlap curve, by decreasing threshold, from (0, 0) to (1, 1).

    A pixel is called anomalous when its map value >= t. PRO(t) = mean over all 8-connected ground-truth
    components of all images of the fraction of the component's pixels called anomalous; FPR(t) = fraction of
    all normal pixels called anomalous. With num_thresholds None every distinct map value is a threshold (exact,
    as the MVTec AD reference code); otherwise num_thresholds evenly spaced values from the maps' max to min.
    Points beyond the first one with FPR > max_fpr are left out (they do not change the area up to max_fpr).
    """
    masks, maps = _pixel_inputs(masks, maps, "AUPRO")
    weights, n_regions = _region_weights(masks)
    negatives = maps[~masks]
    negatives.sort()
    order = np.argsort(maps[masks], kind="stable")
    positives = maps[masks][order]
    # weight_at_or_above[i] = PRO contribution of positives[i:], i.e. PRO for a threshold t = positives[i].
    weight_at_or_above = np.append(np.cumsum(weights[order][::-1])[::-1], 0.0) / n_regions

    if num_thresholds is None:
        # The first point with FPR > max_fpr has a threshold at or above this negative value: thresholds below
        # it only add points beyond it. (+1 rank of margin against rounding in max_fpr * count.)
        rank = min(negatives.size - 1, int(np.floor(max_fpr * negatives.size)) + 1)
        cutoff = negatives[negatives.size - 1 - rank]
        thresholds = np.unique(np.concatenate([
            negatives[np.searchsorted(negatives, cutoff, side="left"):],
            positives[np.searchsorted(positives, cutoff, side="left"):],
        ]))[::-1]
    else:
        if num_thresholds < 2:
            raise ValueError(f"num_thresholds must be at least 2 or None, got {num_thresholds}")
        thresholds = np.linspace(maps.max(), maps.min(), num_thresholds).astype(maps.dtype)
        thresholds[0], thresholds[-1] = maps.max(), maps.min()

    fpr = (negatives.size - np.searchsorted(negatives, thresholds, side="left")) / negatives.size
    pro = weight_at_or_above[np.searchsorted(positives, thresholds, side="left")]
    fpr = np.clip(np.concatenate([[0.0], fpr, [1.0]]), 0.0, 1.0)
    pro = np.clip(np.concatenate([[0.0], pro, [1.0]]), 0.0, 1.0)
    return fpr, pro


def aupro(masks, maps, max_fpr: float = 0.3, num_thresholds: int | None = None) -> float:
    """Normalized area under the PRO curve for FPR in [0, max_fpr] (MVTec AD); a perfect map gives 1.0.

    masks (N, H, W) in {0, 1} (good images all 0), maps (N, H, W) float. The area is integrated with the
    trapezoid rule, interpolating PRO linearly at max_fpr, and divided by max_fpr. A constant map has the
    diagonal as its curve and scores max_fpr / 2 (0.15 at 0.3); a map ranking every normal pixel above every
    anomalous one scores 0. num_thresholds: None = exact (every distinct value), or a grid size (an
    approximation; see `pro_curve`). Raises MetricUndefined without anomalous or without normal pixels.
    """
    if not 0.0 < max_fpr <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")
    fpr, pro = pro_curve(masks, maps, max_fpr=max_fpr, num_thresholds=num_thresholds)
    return _trapezoid_up_to(fpr, pro, max_fpr) / max_fpr


# ---------------------------------------------------------------------------------------------- map helpers


def smooth_maps(maps, sigma: float) -> np.ndarray:
    """Gaussian smoothing of each (H, W) map of maps (N, H, W) or a single (H, W) map; sigma in pixels.

    scipy.ndimage.gaussian_filter with its default 'reflect' border; sigma 0 returns a float copy.
    Float inputs keep their dtype, others become float32.
    """
    maps = np.asarray(maps)
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float32)
    if maps.ndim not in (2, 3):
        raise ValueError(f"maps must be (N, H, W) or (H, W), got shape {maps.shape}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return maps.copy()
    sigmas = (sigma, sigma) if maps.ndim == 2 else (0.0, sigma, sigma)
    return ndimage.gaussian_filter(maps, sigma=sigmas)


def _linear_along(a: np.ndarray, out_len: int, axis: int) -> np.ndarray:
    in_len = a.shape[axis]
    if in_len == out_len:
        return a
    # Half-pixel centres, as tf.image.resize(method="bilinear") and PIL: source = (dst + 0.5) * in/out - 0.5.
    src = np.clip((np.arange(out_len) + 0.5) * (in_len / out_len) - 0.5, 0.0, in_len - 1)
    low = np.floor(src).astype(np.intp)
    high = np.minimum(low + 1, in_len - 1)
    shape = [1] * a.ndim
    shape[axis] = out_len
    frac = (src - low).astype(a.dtype).reshape(shape)
    return np.take(a, low, axis=axis) * (1 - frac) + np.take(a, high, axis=axis) * frac


def resize_maps(maps, size) -> np.ndarray:
    """Bilinear resize of maps (N, H, W) or (H, W) to size (an int for square, or (height, width)).

    Half-pixel-centre convention of tf.image.resize(method="bilinear", antialias=False): e.g. [0, 1] resized to
    4 gives [0, 0.25, 0.75, 1]. Float inputs keep their dtype, others become float32.
    """
    maps = np.asarray(maps)
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float32)
    if maps.ndim not in (2, 3):
        raise ValueError(f"maps must be (N, H, W) or (H, W), got shape {maps.shape}")
    height, width = (size, size) if np.isscalar(size) else tuple(size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size}")
    out = _linear_along(maps, int(height), maps.ndim - 2)
    return _linear_along(out, int(width), maps.ndim - 1)
