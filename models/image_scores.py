"""Image scores: the paper's eq. 7 (default) or an aggregation of the smoothed anomaly map.

    paper     A(x) = (1 - lambda) L_R(x) + lambda L_fD(x) (eq. 7-9, L1 sums over every pixel; textures: the max
              over the image's patches), models/scoring.py.
    map_max   the maximum of the smoothed anomaly map of the whole image.
    map_topk  the mean of the top k % of the smoothed map's values (k = topk_percent, default 1; the count is
              ceil(k / 100 * H * W), at least 1).

The anomaly map is the one of the pixel metrics (models/scoring.py): the per-pixel L1 reconstruction error
|x - G(E(x))| summed over the 3 channels of the [-1, 1] image, at the run's image size (textures: stitched from
the patch maps, so the whole image, not one patch). It is the L_R term only: the critic features have no
per-pixel map, so lambda does not enter the map scores. It is smoothed exactly as for the pixel metrics: a
Gaussian of sigma = smoothing_sigma * image_size / 256 pixels (scipy.ndimage.gaussian_filter, 'reflect'
border; 0 = no smoothing).

The same functions serve evaluate.py (and its mean-image baseline, whose map is the per-pixel L1 distance to
the mean training image), predict.py and its held-out threshold (inference/), and the exported model, whose
graph version (map_scores_graph) smooths with the same filter written as a matrix (smoothing_matrix).
"""
import math

import numpy as np

from errors import ConfigError

PAPER = "paper"
MAP_MAX = "map_max"
MAP_TOPK = "map_topk"
IMAGE_SCORES = (PAPER, MAP_MAX, MAP_TOPK)
DEFAULT_IMAGE_SCORE = PAPER
DEFAULT_TOPK_PERCENT = 1.0
DEFAULT_SMOOTHING_SIGMA = 4.0   # at SMOOTHING_REFERENCE_SIZE: 2 px for 128 px objects, 8 px for 512 px textures
SMOOTHING_REFERENCE_SIZE = 256


def parse_topk_percent(value):
    """--topk_percent as a float in (0, 100] (a string flag, so a bad value is a one-line ConfigError)."""
    try:
        k = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--topk_percent must be a number in (0, 100], got {value!r}") from None
    if not (math.isfinite(k) and 0.0 < k <= 100.0):
        raise ConfigError(f"--topk_percent must be in (0, 100] (percent of the map's pixels), got {value}")
    return k


def validate(image_score, topk_percent=DEFAULT_TOPK_PERCENT):
    """ConfigError naming the flag for an unknown image score or a top-k share outside (0, 100]."""
    if image_score not in IMAGE_SCORES:
        raise ConfigError(f"--image_score must be one of {', '.join(IMAGE_SCORES)}, got {image_score!r}")
    parse_topk_percent(topk_percent)
    return image_score


def is_map_score(image_score):
    return image_score in (MAP_MAX, MAP_TOPK)


def effective_topk(image_score, topk_percent):
    """topk_percent as a float for map_topk, None otherwise (it does not matter there)."""
    return float(topk_percent) if image_score == MAP_TOPK else None


def name(image_score, topk_percent=DEFAULT_TOPK_PERCENT):
    """A short token for folder names: paper, map_max, map_topk (k = 1 %), map_topk5, map_topk0.5, ..."""
    if image_score != MAP_TOPK or float(topk_percent) == DEFAULT_TOPK_PERCENT:
        return image_score
    return f"{MAP_TOPK}{float(topk_percent):g}"


def describe(image_score, topk_percent=DEFAULT_TOPK_PERCENT):
    """Words for summaries and tables: 'paper (eq. 7)', 'map max', 'map top-1% mean'."""
    if image_score == PAPER:
        return "paper (eq. 7)"
    if image_score == MAP_MAX:
        return "map max"
    return f"map top-{float(topk_percent):g}% mean"


def sigma_pixels(smoothing_sigma, image_size):
    """The Gaussian sigma in pixels of a map of image_size (smoothing_sigma is given at 256 px scale)."""
    return float(smoothing_sigma) * int(image_size) / SMOOTHING_REFERENCE_SIZE


def topk_count(n_values, topk_percent):
    """How many values the top-k mean averages: ceil(k / 100 * n), at least 1, at most n."""
    count = math.ceil(round(float(topk_percent) * int(n_values) / 100.0, 9))
    return int(min(max(count, 1), int(n_values)))


def smooth(maps, sigma_px):
    """Gaussian smoothing of (N, H, W) maps with sigma in pixels, as the pixel metrics (float32)."""
    from models.map_transforms import smooth_maps
    return smooth_maps(np.asarray(maps, np.float32), float(sigma_px))


def aggregate(smoothed_maps, image_score, topk_percent=DEFAULT_TOPK_PERCENT):
    """Per map of (N, H, W) already smoothed: its max (map_max) or the mean of its top k % (map_topk); float64."""
    maps = np.asarray(smoothed_maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {maps.shape}")
    flat = maps.reshape(len(maps), -1)
    if image_score == MAP_MAX:
        return flat.max(axis=1).astype(np.float64)
    if image_score == MAP_TOPK:
        k = topk_count(flat.shape[1], topk_percent)
        return np.partition(flat, flat.shape[1] - k, axis=1)[:, -k:].mean(axis=1, dtype=np.float64)
    raise ValueError(f"{image_score!r} is not a map aggregation ({MAP_MAX}, {MAP_TOPK})")


def map_scores(maps, image_score, topk_percent, sigma_px):
    """Image scores of raw anomaly maps (N, H, W): smoothed with sigma_px, then aggregated."""
    return aggregate(smooth(maps, sigma_px), image_score, topk_percent)


# ---------------------------------------------------------------------------------------------- graph version


def smoothing_matrix(size, sigma_px):
    """K (size, size) float64 with K @ m @ K.T == the Gaussian smoothing of an (size, size) map m (the 1-D
    filter of scipy.ndimage.gaussian_filter, 'reflect' border, applied to each unit impulse)."""
    from scipy import ndimage
    identity = np.eye(int(size))
    if sigma_px <= 0:
        return identity
    return ndimage.gaussian_filter1d(identity, float(sigma_px), axis=0, mode="reflect")


def map_scores_graph(maps, image_score, topk_percent, sigma_px, size):
    """map_scores as TensorFlow ops on maps (N, size, size) float32 (the exported model)."""
    import tensorflow as tf
    size = int(size)
    maps = tf.reshape(maps, [-1, size, size])
    if sigma_px > 0:
        kernel = tf.constant(smoothing_matrix(size, sigma_px), tf.float32)
        maps = tf.einsum("ij,njk,lk->nil", kernel, maps, kernel)
    flat = tf.reshape(maps, [-1, size * size])
    if image_score == MAP_MAX:
        return tf.reduce_max(flat, axis=1)
    if image_score == MAP_TOPK:
        return tf.reduce_mean(tf.math.top_k(flat, k=topk_count(size * size, topk_percent)).values, axis=1)
    raise ValueError(f"{image_score!r} is not a map aggregation ({MAP_MAX}, {MAP_TOPK})")
