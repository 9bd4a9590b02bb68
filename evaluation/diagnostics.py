"""Has the model learned more than a template? Two checks written to <eval>/diagnostics.json by evaluate.py.

reconstruction_specificity (good test images, at most MAX_SPECIFICITY_IMAGES of them):
    mean_i ||x_i - G(E(x_i))||_1  /  mean_{i != j} ||x_i - G(E(x_j))||_1
  0 = each reconstruction is its own input; about 1 = the reconstruction does not depend on the input (G(E(x)) is
  one template for every image, so L_R only measures the distance to that template).
template_auroc:
  the image AUROC of a model-free baseline: the L1 distance of each model input (object image or texture patch)
  to the mean training image at the same position, max over the patches of an image (as the model's score).
  A trained model should beat it; a model that does not has learned nothing beyond the mean image.
  With a map image score (models/image_scores.py: map_max, map_topk) the baseline uses the same aggregation:
  its map is the per-pixel L1 distance to the mean image (summed over channels, patches stitched), smoothed and
  aggregated exactly as the model's anomaly map, so the comparison stays fair.
"""
import numpy as np

from data.patches import stitch_patches, to_patches_numpy
from evaluation.image_metrics import image_auroc

MAX_SPECIFICITY_IMAGES = 64


def reconstruction_specificity(inputs, reconstructions):
    """inputs, reconstructions: (N, ...) arrays of the same images in the same order, N >= 2."""
    x = np.asarray(inputs, np.float32).reshape(len(inputs), -1)
    r = np.asarray(reconstructions, np.float32).reshape(len(reconstructions), -1)
    if len(x) < 2 or len(x) != len(r):
        raise ValueError(f"need >= 2 inputs with one reconstruction each, got {len(x)} and {len(r)}")
    distances = np.stack([np.abs(x[i] - r).sum(axis=1, dtype=np.float64) for i in range(len(x))])  # [i, j]
    own = float(np.mean(np.diag(distances)))
    cross = float(distances[~np.eye(len(x), dtype=bool)].mean())
    return {"own_error": own, "cross_error": cross, "ratio": own / cross if cross > 0 else float("nan"),
            "images": len(x)}


class GoodReconstructions:
    """Up to `limit` good test images (unrounded model inputs, patches stitched) and their reconstructions,
    collected chunk by chunk from Scorer.score_images(..., keep_reconstructions=True) outputs."""

    def __init__(self, image_size, limit=MAX_SPECIFICITY_IMAGES):
        self.image_size, self.limit = image_size, limit
        self.inputs, self.reconstructions = [], []

    @property
    def wants_more(self):
        return len(self.inputs) < self.limit

    def add(self, chunk, out):
        """chunk: a test chunk (its "image" patch grids and "label"); out: its scores with "reconstruction"."""
        for i in np.flatnonzero(np.asarray(chunk["label"]) == 0)[:self.limit - len(self.inputs)]:
            self.inputs.append(stitch_patches(chunk["image"][i], self.image_size))
            self.reconstructions.append(out["reconstruction"][i])

    def specificity(self):
        """reconstruction_specificity of the collected images, None with fewer than two."""
        if len(self.inputs) < 2:
            return None
        return reconstruction_specificity(self.inputs, self.reconstructions)


class MeanTemplate:
    """The mean training image, accumulated from (N, S, S, C) uint8 batches; compared patch by patch."""

    def __init__(self, patch_size):
        self.patch_size = patch_size
        self.total, self.count = None, 0

    def add(self, images_uint8):
        batch = np.asarray(images_uint8, np.float64).sum(axis=0)
        self.total = batch if self.total is None else self.total + batch
        self.count += len(images_uint8)

    def patches(self):
        """The mean image in [-1, 1] as a patch grid (P, p, p, C), the layout of the model's inputs."""
        mean = (self.total / self.count / 127.5 - 1.0).astype(np.float32)
        return to_patches_numpy(mean, self.patch_size)

    def distances(self, patch_grids):
        """Per image of (N, P, p, p, C) in [-1, 1]: the max over patches of the L1 distance to the mean image's
        patch at the same position."""
        diff = np.abs(np.asarray(patch_grids, np.float32) - self.patches())
        return diff.reshape(diff.shape[0], diff.shape[1], -1).sum(axis=2, dtype=np.float64).max(axis=1)

    def distance_maps(self, patch_grids, image_size):
        """Per image of (N, P, p, p, C) in [-1, 1]: the map (N, S, S) of per-pixel L1 distances to the mean image
        (summed over channels; patches stitched), the counterpart of the model's anomaly map."""
        diff = np.abs(np.asarray(patch_grids, np.float32) - self.patches()).sum(axis=-1)   # (N, P, p, p)
        if diff.shape[1] == 1:
            return diff[:, 0]
        return stitch_patches(diff[..., None], image_size)[..., 0]


def template_auroc(labels, distances):
    return image_auroc(np.asarray(labels), np.asarray(distances))
