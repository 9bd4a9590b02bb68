"""Scoring a run's test set: chunk by chunk (data.streams.iter_test_chunks, so a texture set never has all its
patches in memory), every lambda of eq. 7 at once, the image score the metrics are about, and the anomaly maps and
masks of the pixel metrics.

Pixel metrics (only when every anomalous test image has a mask, data.files has_masks): the anomaly map is the
per-pixel L1 error summed over channels (textures: stitched from the patch maps) at the run's image size, which
is also the size of the masks (data.streams resizes them to spec.image_size). Each map is smoothed with a
Gaussian of sigma = smoothing_sigma * image_size / 256 pixels (smoothing_sigma is given at the 256 px scale of the
MVTec AD convention: 4 px -> 2 px for 128 px objects, 8 px for 512 px textures), then kept in float32. The maps of
the whole test set are kept for the pixel metrics; at the image size that is 64 KB per 128 px object and 1 MB per
512 px texture image (124 MB for the largest MVTec AD texture test set). Only when the maps would exceed 1 GiB
(e.g. > 1000 texture images) are maps and masks reduced to a smaller power-of-two-halved size (bilinear, masks
thresholded at 0.5) and a note printed; pixel_size forces a size.
"""
import dataclasses
from typing import Optional

import numpy as np

from data.streams import iter_test_chunks
from errors import ConfigError
from models import image_scores as IS
from models import map_transforms as MT

PIXEL_MEMORY_BUDGET = 1 << 30          # bytes of float32 anomaly maps kept for the pixel metrics
PATCHES_PER_CHUNK = 2048               # 2048 patches of 64x64x3 float32 = 100 MB per chunk


def pixel_metric_size(n_images, image_size, requested=0, budget=PIXEL_MEMORY_BUDGET):
    """Side of the maps and masks for the pixel metrics (see the module docstring)."""
    if requested:
        if requested > image_size:
            raise ConfigError(f"--pixel_size={requested} is larger than the run's image size {image_size}: "
                              "the maps have that size (use 0 for it)")
        return int(requested)
    size = int(image_size)
    while n_images * size * size * 4 > budget and size > 64:
        size //= 2
    return size


def pixel_size_for(run, log=print):
    """The pixel metrics' map size for run (evaluation.run_inputs.RunInputs), None without masks; a note when the
    memory budget reduces it."""
    if not run.files.has_masks:
        return None
    n_images, size = len(run.files.test_items), run.spec.image_size
    pixel_size = pixel_metric_size(n_images, size, int(run.settings.pixel_size))
    if pixel_size != size and not run.settings.pixel_size:
        log(f"note: pixel metrics at {pixel_size}x{pixel_size} (the {n_images} maps at {size}x{size} would "
            f"exceed {PIXEL_MEMORY_BUDGET >> 20} MB)")
    return pixel_size


@dataclasses.dataclass
class ScoredTestSet:
    """The test set's scores in the stable test order, float64: the values written to scores.csv are exactly
    those the metrics are computed from."""
    paths: list
    defect_types: np.ndarray          # object array of str
    labels: np.ndarray                # int, 0 good, 1 anomalous
    reconstruction_error: np.ndarray  # L_R (eq. 8)
    feature_error: np.ndarray         # L_fD (eq. 9)
    scores: dict                      # {lambda: eq. 7 scores}
    chosen: dict                      # {metrics key: the image score the metrics are about} (RunInputs.metric_keys)
    maps: Optional[np.ndarray]        # (N, S, S) float32 smoothed anomaly maps at pixel_size; None without masks
    masks: Optional[np.ndarray]       # (N, S, S) bool

    @property
    def n_images(self):
        return len(self.labels)

    @property
    def n_anomalous(self):
        return int(self.labels.sum())


def score_test_set(scorer, run, pixel_size, diagnostics, log=print):
    """Score run's test items with scorer (models.scoring.Scorer); pixel_size: pixel_size_for(run), None for no
    pixel metrics; diagnostics: a run_diagnostics.RunDiagnostics given every chunk and its scores."""
    files, size, lambdas = run.files, run.spec.image_size, run.lambdas
    image_score, topk, sigma, map_score = run.image_score, run.topk, run.sigma, run.map_score
    n_images = len(files.test_items)
    pixel = pixel_size is not None
    if pixel:
        maps = np.empty((n_images, pixel_size, pixel_size), np.float32)
        masks = np.empty((n_images, pixel_size, pixel_size), bool)
    chunk_size = max(1, min(32, PATCHES_PER_CHUNK // run.spec.patches_per_image))
    rec, feat, labels, defects, paths, map_values = [], [], [], [], [], []
    scores = {lam: [] for lam in lambdas}
    done = 0
    for chunk in iter_test_chunks(run.spec, files, chunk_size=chunk_size):
        out = scorer.score_images(chunk["image"], size, lambdas=lambdas, batch_size=run.batch_size,
                                  keep_reconstructions=diagnostics.wants_reconstructions)
        k = len(chunk["label"])
        diagnostics.add(chunk, out)
        rec.append(out["reconstruction_error"])
        feat.append(out["feature_error"])
        for lam in lambdas:
            scores[lam].append(out["scores"][lam])
        labels.append(chunk["label"])
        defects.extend(str(d) for d in chunk["defect_type"])
        paths.extend(str(p) for p in chunk["path"])
        if pixel or map_score:
            smoothed = MT.smooth_maps(out["anomaly_map"].astype(np.float32), sigma)
        if map_score:  # the image score from the smoothed map at the image size (before any pixel_size reduction)
            map_values.append(IS.aggregate(smoothed, image_score, topk))
        if pixel:
            chunk_masks = chunk["mask"]
            if pixel_size != size:
                smoothed = MT.resize_maps(smoothed, pixel_size)
                chunk_masks = MT.resize_maps(chunk_masks, pixel_size)
            maps[done:done + k] = smoothed
            masks[done:done + k] = chunk_masks > 0.5
        done += k
        if n_images >= 200 and (done // chunk_size) % 5 == 0:
            log(f"scored {done}/{n_images} test images")
    scores = {lam: np.concatenate(v).astype(np.float64) for lam, v in scores.items()}
    # The image score the metrics are about: eq. 7 at each lambda, or the map aggregation (one, keyed None).
    chosen = {None: np.concatenate(map_values)} if map_score else scores
    return ScoredTestSet(paths=paths, defect_types=np.asarray(defects, dtype=object),
                         labels=np.concatenate(labels).astype(int),
                         reconstruction_error=np.concatenate(rec).astype(np.float64),
                         feature_error=np.concatenate(feat).astype(np.float64), scores=scores, chosen=chosen,
                         maps=maps if pixel else None, masks=masks if pixel else None)
