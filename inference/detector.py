"""A trained run as a Python object: load it once, score numpy images, get scores, maps and verdicts.

    from inference.detector import load_detector
    detector = load_detector("runs/bottle-...")          # the run's protocol decides weights and checkpoint
    result = detector.score(images)                      # uint8 images: (N, H, W, 3), (N, H, W), or a list
    result.scores, result.normalized_scores, result.anomalous, result.anomaly_maps, detector.threshold.value

Images are preprocessed exactly as predict.py and evaluate.py do (resized to the run's image size, its intensity
mode, texture patches); any size is accepted, grayscale (H, W) or (H, W, 1), RGB or RGBA (alpha dropped).
predict.py scores through this class, so the two always agree.
"""
import dataclasses
from typing import Optional

import numpy as np

from errors import ConfigError
from models import image_scores as IS
from inference import threshold as thresholds
from inference.predict_images import Predictor, preprocess


@dataclasses.dataclass
class Detections:
    """Per-image results of Detector.score, in input order."""
    scores: np.ndarray             # (N,) the run's image score (eq. 7 at the detector's lambda, or a map score)
    normalized_scores: np.ndarray  # (N,) score / threshold: above 1 = anomalous (NaN if the threshold is <= 0)
    anomalous: np.ndarray          # (N,) bool: score > threshold
    anomaly_maps: np.ndarray       # (N, S, S) per-pixel reconstruction error at the model's image size S
    reconstruction_errors: np.ndarray  # (N,) eq. 8
    feature_errors: np.ndarray     # (N,) eq. 9


def as_rgb_uint8(image, index=0):
    """One numpy image as uint8 (H, W, 3): (H, W) and (H, W, 1) are repeated, (H, W, 4) loses its alpha.
    ConfigError naming the image's position for any other dtype or shape."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ConfigError(f"image {index}: expected uint8 pixels (0-255), got {array.dtype}; convert with "
                          "np.clip(x, 0, 255).astype(np.uint8) if the values are already in that range")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) == 0:
        raise ConfigError(f"image {index}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got "
                          f"{array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


class Detector:
    """A restored run, its image score and its decision threshold (see load_detector)."""

    def __init__(self, predictor: Predictor, threshold: thresholds.Threshold):
        self.predictor = predictor
        self.threshold = threshold

    @property
    def image_size(self):
        return self.predictor.spec.image_size

    @property
    def image_score_name(self):
        return self.predictor.image_score_name

    @property
    def score_lambda(self):
        return self.predictor.score_lambda

    def score(self, images, batch_size=32) -> Detections:
        """Score uint8 images: a batch array (N, H, W) or (N, H, W, C), or a list of (H, W[, C]) arrays of any
        sizes (see the module doc)."""
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        if isinstance(images, np.ndarray) and images.ndim not in (3, 4):
            raise ConfigError(f"images: expected a batch (N, H, W) or (N, H, W, C) or a list of images, got an "
                              f"array of shape {images.shape} (one image: pass [image])")
        images = list(images)
        parts = []
        for start in range(0, len(images), batch_size):
            inputs = np.stack([preprocess(as_rgb_uint8(image, start + i), self.predictor.spec)
                               for i, image in enumerate(images[start:start + batch_size])])
            parts.append(self.predictor.score_inputs(inputs))
        return self._detections(parts)

    def score_files(self, paths, batch_size=32) -> Detections:
        """Score image files (DatasetError naming the first unreadable one)."""
        from data.images import read_image
        parts = []
        for start in range(0, len(paths), batch_size):
            inputs = np.stack([preprocess(read_image(p), self.predictor.spec) for p in paths[start:start + batch_size]])
            parts.append(self.predictor.score_inputs(inputs))
        return self._detections(parts)

    def _detections(self, parts) -> Detections:
        size = self.image_size
        if not parts:
            empty = np.zeros((0,), np.float32)
            return Detections(empty, empty, np.zeros((0,), bool), np.zeros((0, size, size), np.float32), empty,
                              empty)
        joined = {key: np.concatenate([np.asarray(p[key]) for p in parts]) for key in parts[0]}
        scores = joined["score"].astype(np.float64)
        value = self.threshold.value
        normalized = scores / value if value > 0 else np.full_like(scores, np.nan)
        return Detections(scores=scores, normalized_scores=normalized, anomalous=scores > value,
                          anomaly_maps=joined["anomaly_map"], reconstruction_errors=joined["reconstruction_error"],
                          feature_errors=joined["feature_error"])


def load_detector(run_dir, weights: Optional[str] = None, checkpoint: Optional[str] = None,
                  score_lambda: Optional[float] = None, threshold: Optional[float] = None,
                  threshold_quantile: float = thresholds.DEFAULT_QUANTILE,
                  image_score: str = IS.DEFAULT_IMAGE_SCORE, topk_percent: float = IS.DEFAULT_TOPK_PERCENT,
                  smoothing_sigma: float = IS.DEFAULT_SMOOTHING_SIGMA) -> Detector:
    """Restore a run folder for scoring. The arguments are predict.py's flags of the same names: weights /
    checkpoint default to the run's protocol (fair: EMA weights of the latest checkpoint); threshold None chooses
    it from the run's held-out good images (quantile threshold_quantile), as predict.py does. ConfigError (one
    line) for a folder that is not a run, a bad option or a missing threshold source."""
    predictor = Predictor(run_dir, weights, score_lambda, checkpoint, image_score, topk_percent, smoothing_sigma)
    return Detector(predictor, predictor.threshold(threshold, threshold_quantile))
