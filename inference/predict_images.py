"""Scoring new images with a trained run: the library behind predict.py.

Inputs are files, folders (searched recursively for .png/.jpg/.jpeg/.bmp, hidden files skipped) and glob
patterns (matches filtered to those extensions; a matched folder is searched like a folder). A file named
explicitly is always tried, whatever its extension. The same file reached twice is scored once.

Each image goes through the test-time pipeline of data/streams.py: read_image (any PNG/JPEG/BMP, gray/RGB/RGBA,
8/16 bit -> uint8 RGB), prepare_image to spec.image_size (bilinear without antialiasing, float32, unrounded),
the patch grid (objects: one patch = the whole image),
x / 127.5 - 1. Scores come from models.scoring.Scorer (eq. 7-9; textures: max over patches), or with a map
image score (image_score map_max / map_topk) from the smoothed anomaly map as evaluate.py computes them
(models/image_scores.py); the threshold is then chosen on the held-out images scored the same way.

Unreadable files (corrupt, truncated, unsupported, missing) are reported on stderr and skipped: they are not
rows of predictions.csv (every row there has numbers) but are listed with the reason in skipped.csv next to it.

Outputs in the output folder (default <run>/predictions/):
  predictions.csv  path, score, normalized_score (score / threshold: above 1 = anomalous), verdict
                   (anomalous|good), threshold, lambda (empty for a map image score), reconstruction_error,
                   feature_error, image_score (paper, map_max, map_topk, map_topk5, ...)
  skipped.csv      path, reason (only when something was skipped)
  heatmaps/        with heatmaps: <relative path of the input>.heatmap.png, the relative path taken from the
                   deepest folder containing all inputs, so equal names in different folders do not collide
"""
import csv
import dataclasses
import glob
import os
import sys
from typing import List, Tuple

import numpy as np
import tensorflow as tf

from data.files import IMAGE_EXTENSIONS, display_path
from data.images import prepare_image, read_image, to_model_range_numpy
from data.patches import to_patches_numpy
from config import TrainConfig, scoring_defaults
from errors import ConfigError, DatasetError
from inference.batch_progress import BatchProgress
from models import image_scores as IS
from models.scoring import Scorer
from inference import threshold as thresholds
from inference.heatmap_figure import overlay_heatmap, save_heatmap  # noqa: F401 (overlay_heatmap: public)
import run_folder
from inference.restore import restore_run

PREDICTIONS_FILE = "predictions.csv"
SKIPPED_FILE = "skipped.csv"
HEATMAP_DIR = "heatmaps"
HEATMAP_SUFFIX = ".heatmap.png"
COLUMNS = ("path", "score", "normalized_score", "verdict", "threshold", "lambda", "reconstruction_error",
           "feature_error", "image_score")
GLOB_CHARS = "*?["


def _is_image_name(name):
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _inside(path, folders):
    """True when path is one of folders (real paths) or lies inside one."""
    real = os.path.realpath(path)
    return any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


def _walk_images(folder, exclude=()):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(os.path.join(root, d), exclude))
        found.extend(os.path.join(root, f) for f in sorted(files) if _is_image_name(f))
    return found


def expand_inputs(inputs, output_dir=None) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(image paths in order, without duplicates; [(input, problem)] for inputs that gave nothing).

    output_dir (predict's own output folder) is never read: a folder input skips it (e.g. images/ with
    --output=images/out). An input inside it (or equal to it) was named on purpose: then only the heatmaps
    predict writes there are skipped."""
    paths, problems, seen = [], [], set()
    output = os.path.realpath(output_dir) if output_dir else None
    heatmaps = os.path.join(output, HEATMAP_DIR) if output else None

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            paths.append(path)

    for item in inputs:
        item = os.fspath(item)
        exclude = [] if output is None else [heatmaps] if _inside(item, [output]) else [output]
        if exclude and _inside(item, exclude):
            problems.append((item, "is in predict.py's output folder (its own results), not scored"))
        elif os.path.isdir(item):
            found = [p for p in _walk_images(item, exclude) if not _inside(p, exclude)]
            if not found:
                problems.append((item, f"folder has no {'/'.join(IMAGE_EXTENSIONS)} images"))
            for path in found:
                add(path)
        elif os.path.isfile(item):
            add(item)
        elif any(ch in item for ch in GLOB_CHARS):
            matches = sorted(glob.glob(item, recursive=True))
            found = []
            for match in matches:
                if os.path.isdir(match):
                    found.extend(_walk_images(match, exclude))
                elif os.path.isfile(match) and _is_image_name(os.path.basename(match)):
                    found.append(match)
            found = [p for p in found if not _inside(p, exclude)]
            if not found:
                problems.append((item, f"pattern matches no {'/'.join(IMAGE_EXTENSIONS)} images"))
            for path in found:
                add(path)
        else:
            problems.append((item, "no such file or folder"))
    return paths, problems


def preprocess(image_uint8, spec):
    """uint8 H x W x 3 -> the model inputs of one image: float32 (P, p, p, 3) in [-1, 1] (as data/streams.py)."""
    resized = prepare_image(image_uint8, spec.image_size, spec.intensity)
    return to_model_range_numpy(to_patches_numpy(resized, spec.patch_size))


def normalized_score(score, threshold):
    """score / threshold as predictions.csv writes it (above 1: anomalous, the verdict's rule); empty when the
    threshold is not positive (an explicit --threshold <= 0), where the ratio would not keep that meaning."""
    return repr(float(score) / float(threshold)) if threshold > 0 else ""  # shortest exact form: "> 1" holds


def heatmap_names(paths, folder):
    """{path: heatmap file}: the path relative to the deepest folder holding all inputs, + HEATMAP_SUFFIX."""
    if not paths:
        return {}
    absolute = [os.path.abspath(p) for p in paths]
    base = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return {p: os.path.join(folder, os.path.relpath(a, base) + HEATMAP_SUFFIX) for p, a in zip(paths, absolute)}


@dataclasses.dataclass
class PredictionSummary:
    output_dir: str
    predictions_csv: str
    threshold: thresholds.Threshold
    score_lambda: float
    n_scored: int
    n_anomalous: int
    skipped: List[Tuple[str, str]]
    heatmaps: List[str]
    image_score: str = IS.DEFAULT_IMAGE_SCORE
    topk_percent: float = IS.DEFAULT_TOPK_PERCENT

    def line(self):
        score = (f"image score {IS.describe(self.image_score, self.topk_percent)}"
                 if IS.is_map_score(self.image_score) else f"lambda {self.score_lambda:g}")
        return (f"scored {self.n_scored} image(s): {self.n_anomalous} anomalous, "
                f"{self.n_scored - self.n_anomalous} good, {len(self.skipped)} skipped "
                f"({self.threshold.describe()}, {score}); results in {self.predictions_csv}")


class Predictor:
    """A restored run with a Scorer, scoring uint8 images or image files at one lambda (image_score "paper",
    eq. 7) or by an aggregation of the smoothed anomaly map (map_max, map_topk; smoothing_sigma at 256 px scale as
    evaluate.py's --smoothing_sigma)."""

    def __init__(self, run_dir, weights=None, score_lambda=None, checkpoint=None,
                 image_score=IS.DEFAULT_IMAGE_SCORE, topk_percent=IS.DEFAULT_TOPK_PERCENT,
                 smoothing_sigma=IS.DEFAULT_SMOOTHING_SIGMA):
        """weights / checkpoint None: those of the run's --protocol (fair: ema / latest; authors: last /
        best_on_test, config.PROTOCOL_SCORING)."""
        if weights is not None and weights not in ("ema", "last"):
            raise ConfigError(f"--weights must be ema or last, got {weights!r}")
        IS.validate(image_score, topk_percent)
        if not (float(smoothing_sigma) >= 0 and np.isfinite(float(smoothing_sigma))):
            raise ConfigError(f"--smoothing_sigma must be >= 0, got {smoothing_sigma}")
        self.image_score, self.topk_percent = image_score, float(topk_percent)
        checkpoint, weights = scoring_defaults(TrainConfig.load(run_dir)[0], checkpoint, weights)
        self.restored = restore_run(run_dir, checkpoint)
        self.config, self.spec = self.restored.config, self.restored.spec
        self.weights, self.checkpoint = weights, checkpoint
        self.score_lambda = float(self.config.score_lambda if score_lambda is None else score_lambda)
        if not 0.0 <= self.score_lambda <= 1.0:
            raise ConfigError(f"--score_lambda must be in [0, 1], got {self.score_lambda}")
        self.scorer = Scorer(self.restored.model, weights=weights, feature_layer=self.config.feature_layer)
        self.sigma_px = IS.sigma_pixels(smoothing_sigma, self.spec.image_size)

    @property
    def image_score_name(self):
        """paper, map_max, map_topk (1 %), map_topk5, ... (predictions.csv's image_score column)."""
        return IS.name(self.image_score, self.topk_percent)

    def score_inputs(self, inputs, batch_size=64):
        """Model inputs (N, P, p, p, 3) in [-1, 1] -> dict score (eq. 7 at score_lambda, or the map aggregation),
        reconstruction_error, feature_error, anomaly_map (N, S, S; not smoothed)."""
        out = self.scorer.score_images(np.asarray(inputs, np.float32), self.spec.image_size,
                                       lambdas=(self.score_lambda,), batch_size=batch_size)
        score = out["scores"][self.score_lambda]
        if IS.is_map_score(self.image_score):
            score = IS.map_scores(out["anomaly_map"], self.image_score, self.topk_percent, self.sigma_px)
        return {"score": score, "reconstruction_error": out["reconstruction_error"],
                "feature_error": out["feature_error"], "anomaly_map": out["anomaly_map"]}

    def score_files(self, paths, batch_size=64):
        """Scores of readable image files (DatasetError on the first unreadable one)."""
        scores = []
        for start in range(0, len(paths), 32):
            inputs = np.stack([preprocess(read_image(p), self.spec) for p in paths[start:start + 32]])
            scores.append(self.score_inputs(inputs, batch_size)["score"])
        return np.concatenate(scores) if scores else np.zeros((0,), np.float32)

    def threshold(self, explicit=None, quantile=thresholds.DEFAULT_QUANTILE):
        """The decision threshold (inference/threshold.py). The stored held-out scores are EMA scores of the
        final checkpoint at DEFAULT_LAMBDAS (the paper's image score); other weights, lambdas, checkpoints or a
        map image score rescore the held-out images listed there (with this predictor's score_inputs)."""
        def rescore(paths):
            try:
                return self.score_files(paths)
            except DatasetError as err:
                raise ConfigError(f"cannot rescore the held-out images for the threshold ({err}); pass "
                                  "--threshold=<value>") from None

        needs_rescore = False
        if explicit is None:
            table = thresholds.read_holdout(self.restored.run_dir)
            needs_rescore = not thresholds.stored_scores_fit(
                table, self.restored.run_dir, self.restored.checkpoint_path, self.weights,
                IS.is_map_score(self.image_score), self.score_lambda, warn=lambda line: print(line, file=sys.stderr))
        return thresholds.choose_threshold(self.restored.run_dir, self.score_lambda, quantile, explicit,
                                           rescore=rescore if needs_rescore else None)


def _remove_if_present(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def predict(run_dir, inputs, output_dir=None, weights=None, score_lambda=None, threshold=None,
            threshold_quantile=thresholds.DEFAULT_QUANTILE, heatmaps=False, heatmap_vmax=None,
            batch_size=32, checkpoint=None, stderr=None, log=print, image_score=IS.DEFAULT_IMAGE_SCORE,
            topk_percent=IS.DEFAULT_TOPK_PERCENT, smoothing_sigma=IS.DEFAULT_SMOOTHING_SIGMA) -> PredictionSummary:
    """Score image files/folders/globs with the run in run_dir; write predictions.csv (+ skipped.csv,
    heatmaps/) into output_dir (default <run_dir>/predictions). Returns a PredictionSummary."""
    stderr = stderr or sys.stderr
    if batch_size <= 0:
        raise ConfigError(f"--batch_size must be positive, got {batch_size}")
    output_dir = output_dir or run_folder.path(run_dir, run_folder.PREDICTIONS_DIR)
    run_folder.check_folder(output_dir, "--output")  # a file, a read-only folder: said before any scoring
    paths, problems = expand_inputs(inputs, output_dir)
    for item, problem in problems:
        print(f"warning: {display_path(item)}: {problem}", file=stderr)
    if not paths:
        raise ConfigError("no images to score: pass image files, folders or glob patterns "
                          f"({'/'.join(IMAGE_EXTENSIONS)})")
    from inference.detector import load_detector  # here: detector.py builds on this module's Predictor
    detector = load_detector(run_dir, weights, checkpoint, score_lambda, threshold, threshold_quantile, image_score,
                             topk_percent, smoothing_sigma)
    predictor, chosen = detector.predictor, detector.threshold
    map_score = IS.is_map_score(predictor.image_score)
    shown_lambda = "" if map_score else f"{predictor.score_lambda:g}"  # lambda does not enter a map score
    run_folder.make_folder(output_dir, "--output")
    csv_path = os.path.join(output_dir, PREDICTIONS_FILE)
    names = heatmap_names(paths, os.path.join(output_dir, HEATMAP_DIR)) if heatmaps else {}
    skipped, written, n_scored, n_anomalous = list(problems), [], 0, 0
    score_text = (f"image score {IS.describe(predictor.image_score, predictor.topk_percent)}" if map_score
                  else f"lambda {predictor.score_lambda:g}")
    log(f"scoring {len(paths)} image(s) with {run_dir} (step {predictor.restored.step}, {predictor.weights} weights, "
        f"{score_text}, {chosen.describe()})")
    with BatchProgress(len(paths), stderr, shown=len(paths) > batch_size) as progress, \
            run_folder.atomic_write(csv_path, newline="") as handle:  # the previous file stays until this one is whole
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for start in range(0, len(paths), batch_size):
            chunk, images = [], []
            for path in paths[start:start + batch_size]:
                try:
                    image = read_image(path)
                except DatasetError as err:
                    progress.message(f"skipped: {err}")
                    skipped.append((path, str(err)))
                    continue
                chunk.append(path)
                images.append(image)
            if not chunk:
                continue
            found = detector.score(images, batch_size=len(images))
            verdicts = np.where(found.anomalous, "anomalous", "good")
            for i, path in enumerate(chunk):
                writer.writerow([display_path(path), f"{found.scores[i]:.9g}",
                                 normalized_score(found.scores[i], chosen.value), verdicts[i], f"{chosen.value:.9g}",
                                 shown_lambda, f"{found.reconstruction_errors[i]:.9g}",
                                 f"{found.feature_errors[i]:.9g}", predictor.image_score_name])
                if heatmaps:
                    target = names[path]
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    save_heatmap(target, images[i], found.anomaly_maps[i], float(found.scores[i]), chosen.value,
                                 verdicts[i], heatmap_vmax, name=display_path(path), score_text=score_text)
                    written.append(target)
            handle.flush()
            n_scored += len(chunk)
            n_anomalous += int(np.sum(verdicts == "anomalous"))
            progress.update(min(start + batch_size, len(paths)), n_anomalous)
    skipped_path = os.path.join(output_dir, SKIPPED_FILE)
    if skipped:
        with run_folder.atomic_write(skipped_path, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "reason"])
            writer.writerows((display_path(path), reason) for path, reason in skipped)
    else:
        _remove_if_present(skipped_path)  # a stale list from an earlier prediction into the same folder
    summary = PredictionSummary(output_dir, csv_path, chosen, predictor.score_lambda, n_scored, n_anomalous,
                                skipped, written, predictor.image_score, predictor.topk_percent)
    log(summary.line())
    return summary
