"""Gaussian smoothing and bilinear resizing of anomaly maps, applied before the pixel metrics
(evaluation/pixel_metrics.py) and before aggregating a map into an image score (models/image_scores.py)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["smooth_maps", "resize_maps"]


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
