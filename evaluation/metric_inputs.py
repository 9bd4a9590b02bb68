"""Checking the inputs of the metrics (evaluation/image_metrics.py, evaluation/pixel_metrics.py).

A metric that cannot be computed from the data (one class only, non-finite scores) raises `MetricUndefined`,
a `UserError` whose one-line message says why. Shape mismatches are programming errors: `ValueError`.
"""

from __future__ import annotations

import numpy as np

from errors import UserError

__all__ = ["MetricUndefined", "image_inputs", "pixel_inputs"]


class MetricUndefined(UserError):
    """A metric that the given labels/scores cannot define, e.g. AUROC on a test set with one class only."""


def image_inputs(labels, scores, metric: str) -> tuple[np.ndarray, np.ndarray]:
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


def pixel_inputs(masks, maps, metric: str) -> tuple[np.ndarray, np.ndarray]:
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
