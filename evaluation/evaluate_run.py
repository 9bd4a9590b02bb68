"""Evaluate one trained run folder: score its category's test set and write <run>/eval/ (see docs/EVALUATION.md).

    summary = evaluate_run("runs/bottle-alpha0.0001-...", EvalSettings())
    print(format_summary(summary))

Steps: load config.json; find the checkpoint (NoCheckpoint, a ConfigError naming the folder, if there is none);
resolve the dataset root (--data_dir, else the run's config.data_dir, else the absolute category folder recorded
in config.json's provenance; if none exists: a one-line DatasetError telling to pass --data_dir); restore the
model (EMA weights by default); score the test set chunk by chunk (data.streams.iter_test_chunks, so a texture
set never has all its patches in memory) for every lambda; write scores.csv; compute the metrics (a test set
with one class only raises MetricUndefined after scores.csv is written); write metrics.csv, per_defect.csv, the
plots and eval_settings.json (the settings, to let the folder-of-runs mode reuse an evaluation).

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
import json
import math
import os
import shutil
from typing import Optional

import numpy as np

from config import TrainConfig, evaluation_protocol, scoring_defaults
from data.files import display_path
from data.sources import find_files, uses_folders
from data.streams import iter_test_chunks, load_train_images
from errors import ConfigError, DatasetError
from evaluation import diagnostics as D
from evaluation import image_metrics as IM
from models import image_scores as IS
from models import map_transforms as MT
from evaluation import pixel_metrics as PM
from evaluation import plots, reports, tensorboard_log
from evaluation.metric_inputs import MetricUndefined
from models.scoring import DEFAULT_LAMBDAS
from inference import threshold as thresholds
import run_folder

SETTINGS_FILE = "eval_settings.json"
DIAGNOSTICS_FILE = "diagnostics.json"
SCORES_FILE = "scores.csv"
METRICS_FILE = "metrics.csv"
PER_DEFECT_FILE = "per_defect.csv"
ROC_FILE = "roc.png"
HISTOGRAM_FILE = "histogram.png"
EXAMPLES_FILE = "examples.png"
OUTPUT_FILES = (SCORES_FILE, METRICS_FILE, PER_DEFECT_FILE, ROC_FILE, HISTOGRAM_FILE, EXAMPLES_FILE, SETTINGS_FILE,
                DIAGNOSTICS_FILE)

WEIGHTS = ("ema", "last")
CHECKPOINTS = ("latest", "best_on_test")
DEFAULT_SMOOTHING_SIGMA = IS.DEFAULT_SMOOTHING_SIGMA
SMOOTHING_REFERENCE_SIZE = IS.SMOOTHING_REFERENCE_SIZE
PIXEL_MEMORY_BUDGET = 1 << 30          # bytes of float32 anomaly maps kept for the pixel metrics
EXAMPLES_GOOD = 3
EXAMPLES_ANOMALOUS = 5
PATCHES_PER_CHUNK = 2048               # 2048 patches of 64x64x3 float32 = 100 MB per chunk


class NoCheckpoint(ConfigError):
    """The run folder has no checkpoint of the requested kind (the folder-of-runs mode skips such runs)."""


@dataclasses.dataclass
class EvalSettings:
    weights: Optional[str] = None        # "ema" (the EMA copies of E and G) or "last" (the trained weights)
    checkpoint: Optional[str] = None     # "latest" or "best_on_test" (kept by --keep_best_on_test)
    # None: what the run's --protocol scores (config.PROTOCOL_SCORING): fair -> latest/ema,
    # authors -> best_on_test/last; for_run() fills them in per run
    data_dir: Optional[str] = None       # dataset root; None: the run's config (or its recorded provenance)
    lambdas: tuple = DEFAULT_LAMBDAS     # eq. 7 weights; the run's score_lambda is always added
    feature_layer: Optional[str] = None  # None: the run's config.feature_layer
    batch_size: int = 64                 # model inputs (objects or texture patches) per forward pass
    output: Optional[str] = None         # None: default_output_dir(...)
    smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA  # Gaussian sigma of the pixel maps, in px at 256 px scale
    pixel_size: int = 0                  # side of the maps/masks for pixel metrics; 0: the run's image size
    image_score: str = IS.DEFAULT_IMAGE_SCORE  # "paper" (eq. 7), "map_max", "map_topk" (models/image_scores.py)
    topk_percent: float = IS.DEFAULT_TOPK_PERCENT  # map_topk: the mean of the top k % of the smoothed map

    def validate(self):
        from models.critic import FEATURE_LAYERS
        if self.weights is not None and self.weights not in WEIGHTS:
            raise ConfigError(f"--weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.checkpoint is not None and self.checkpoint not in CHECKPOINTS:
            raise ConfigError(f"--checkpoint must be one of {CHECKPOINTS}, got {self.checkpoint!r}")
        if self.feature_layer is not None and self.feature_layer not in FEATURE_LAYERS:
            raise ConfigError(f"--feature_layer must be one of {FEATURE_LAYERS}, got {self.feature_layer!r}")
        if int(self.batch_size) < 1:
            raise ConfigError(f"--batch_size must be >= 1, got {self.batch_size}")
        if not (self.smoothing_sigma >= 0 and math.isfinite(self.smoothing_sigma)):
            raise ConfigError(f"--smoothing_sigma must be >= 0, got {self.smoothing_sigma}")
        IS.validate(self.image_score, self.topk_percent)
        if int(self.pixel_size) < 0:
            raise ConfigError(f"--pixel_size must be >= 0 (0: the run's image size), got {self.pixel_size}")
        if not self.lambdas:
            raise ConfigError("--lambdas is empty: give at least one value in [0, 1]")
        for lam in self.lambdas:
            if not (0.0 <= float(lam) <= 1.0):
                raise ConfigError(f"--lambdas: every lambda must be in [0, 1], got {lam}")
        return self

    def for_run(self, config):
        """These settings with weights and checkpoint filled in from the run's protocol where not given."""
        checkpoint, weights = scoring_defaults(config, self.checkpoint, self.weights)
        return dataclasses.replace(self, checkpoint=checkpoint, weights=weights)


@dataclasses.dataclass
class EvalSummary:
    run_dir: str
    eval_dir: str
    category: str
    category_type: str
    alpha: float
    step: int
    weights: str
    checkpoint: str
    feature_layer: str
    default_lambda: float
    metrics: list              # metrics.csv rows (dicts), ascending lambda
    n_images: int
    n_anomalous: int
    has_masks: bool
    reused: bool = False
    diagnostics: Optional[dict] = None  # diagnostics.json (evaluation/diagnostics.py)
    image_score: str = IS.DEFAULT_IMAGE_SCORE
    topk_percent: Optional[float] = None  # map_topk only
    no_holdout_threshold: Optional[str] = None  # why the operating-point columns are empty (None: they are not)

    @property
    def protocol(self):
        """"authors" when the checkpoint was selected on the test set, else "fair" (config.evaluation_protocol)."""
        return evaluation_protocol(self.checkpoint)

    def at_default(self):
        """The metrics row at the run's default lambda (config.score_lambda, 0.1 as in the paper); a map image
        score has one row, whatever lambda (lambda does not enter it)."""
        if IS.is_map_score(self.image_score):
            return self.metrics[0] if self.metrics else None
        return reports.metrics_at(self.metrics, self.default_lambda)

    def image_score_text(self):
        """The image score in words, e.g. 'paper (eq. 7)' or 'map top-1% mean'."""
        return IS.describe(self.image_score, self.topk_percent)


# ---------------------------------------------------------------------------------------------- settings


def parse_lambdas(text):
    """'0.1,0.5' -> (0.1, 0.5); '' -> DEFAULT_LAMBDAS. ConfigError naming --lambdas on bad values."""
    if text is None or not str(text).strip():
        return DEFAULT_LAMBDAS
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--lambdas: {part!r} is not a number (give e.g. --lambdas=0.1,0.5)") from None
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"--lambdas: every lambda must be in [0, 1], got {part}")
        values.append(value)
    if not values:
        raise ConfigError("--lambdas is empty: give at least one value in [0, 1]")
    return tuple(values)


def resolve_lambdas(lambdas, default_lambda):
    """Distinct lambdas in ascending order, always including the run's default lambda."""
    values = sorted({float(lam) for lam in lambdas} | {float(default_lambda)})
    return tuple(values)


def default_output_dir(run_dir, settings, config):
    """<run>/eval for the weights and checkpoint of the run's protocol (fair: EMA weights of the latest
    checkpoint; authors: last weights of the best-on-test checkpoint) with the run's feature layer and the paper's
    image score; other settings get a suffix so that their evaluations coexist: eval_last, eval_best_on_test,
    eval_joint, eval_last_joint, eval_map_max, eval_last_map_topk, eval_map_topk5 (top 5 %), ... (an authors run:
    eval_ema, eval_latest, ...)."""
    default_checkpoint, default_weights = scoring_defaults(config)
    checkpoint, weights = scoring_defaults(config, settings.checkpoint, settings.weights)
    name = run_folder.EVAL_DIR
    if weights != default_weights:
        name += f"_{weights}"
    if checkpoint != default_checkpoint:
        name += f"_{checkpoint}"
    layer = settings.feature_layer or config.feature_layer
    if layer != config.feature_layer:
        name += f"_{layer}"
    if settings.image_score != IS.DEFAULT_IMAGE_SCORE:
        name += f"_{IS.name(settings.image_score, settings.topk_percent)}"
    return run_folder.path(run_dir, name)


def find_checkpoint(run_dir, checkpoint="latest", log=print):
    """The checkpoint path restore_run will use (the newest that can be read: run_folder.find_checkpoint), or
    NoCheckpoint naming the run folder."""
    folder = run_folder.checkpoint_folder(run_dir, checkpoint)
    path = run_folder.find_checkpoint(run_dir, checkpoint, log=log)
    if path is None:
        if checkpoint == "best_on_test":
            raise NoCheckpoint(f"run {run_dir} has no best-on-test checkpoint in {folder} (it was trained without "
                               "--keep_best_on_test); use --checkpoint=latest")
        raise NoCheckpoint(f"run {run_dir} has no checkpoint in {folder}: train it first "
                           f"(python train.py --run_dir={run_dir}) or remove the folder")
    return path


def resolve_data_dir(run_dir, config, payload, override=None):
    """The dataset root holding <category>/: override, else config.data_dir, else the recorded absolute root.
    None for a run trained on plain folders (--normal_dir, saved as absolute paths), which --data_dir cannot move."""
    category = config.category
    if uses_folders(config):
        if override:
            raise ConfigError(f"--data_dir does not apply to {run_dir}: it was trained on folders (--normal_dir="
                              f"{config.normal_dir}); evaluate it without --data_dir")
        return None
    if override:
        if not os.path.isdir(override):
            raise DatasetError(f"--data_dir={override} does not exist or is not a folder")
        return override
    if os.path.isdir(os.path.join(config.data_dir, category)):
        return config.data_dir
    recorded = (payload.get("dataset") or {}).get("root")
    if recorded and os.path.isdir(recorded):
        return os.path.dirname(os.path.normpath(recorded))
    raise DatasetError(f"the dataset of run {run_dir} is no longer where it was trained "
                       f"({os.path.join(config.data_dir, category)} does not exist): pass --data_dir=<the folder "
                       f"that now holds the {category} folder>")


def settings_record(settings, config, checkpoint_path, lambdas):
    """What decides an evaluation's results (eval_settings.json; compared to reuse an evaluation)."""
    return {"weights": settings.weights, "checkpoint": settings.checkpoint,
            "checkpoint_file": os.path.basename(checkpoint_path),
            "feature_layer": settings.feature_layer or config.feature_layer,
            "lambdas": [float(lam) for lam in lambdas],
            "smoothing_sigma": float(settings.smoothing_sigma), "pixel_size": int(settings.pixel_size),
            "data_dir_override": os.path.abspath(settings.data_dir) if settings.data_dir else None,
            "image_score": settings.image_score,
            "topk_percent": IS.effective_topk(settings.image_score, settings.topk_percent),
            "holdout_quantile": thresholds.DEFAULT_QUANTILE}  # the operating point (metrics.csv) is at it


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


# ---------------------------------------------------------------------------------------------- metrics


def image_metrics(labels, defect_types, scores, lambdas):
    """Per lambda: ({lambda: (auroc, balanced accuracy, threshold)}, per-defect rows). MetricUndefined if the
    test set has one class only. A map image score is keyed by lambda None (lambda does not enter it)."""
    by_lambda, per_defect = {}, []
    for lam in lambdas:
        values = scores[lam]
        auroc = IM.image_auroc(labels, values)
        balanced, threshold = IM.max_balanced_accuracy(labels, values)
        by_lambda[lam] = (auroc, balanced, threshold)
        counts = {}
        for defect, label in zip(defect_types, labels):
            if label:
                counts[defect] = counts.get(defect, 0) + 1
        for defect, value in IM.per_defect_auroc(labels, defect_types, values).items():
            per_defect.append({"lambda": None if lam is None else float(lam), "defect_type": defect,
                               "n": counts[defect], "auroc": value})
    return by_lambda, per_defect


def no_holdout_reason(run_dir, config, err):
    """Why the run has no held-out threshold, in a few words (err: read_holdout's ConfigError)."""
    if not config.threshold_holdout:
        return "trained with --threshold_holdout=0"
    if not os.path.isfile(thresholds.holdout_path(run_dir)):
        return (f"no {run_folder.HOLDOUT_SCORES_FILE} (no training image was held out, or training has not "
                "finished)")
    return str(err)


def deployed_thresholds(run_dir, config, checkpoint_path, weights, map_score, keys, rescore, log=print):
    """({key: Threshold}, None): predict.py's default threshold for each metrics key (a lambda, or None for a map
    image score): the DEFAULT_QUANTILE of the held-out good training images, from the stored scores when they
    describe these settings (inference/threshold.stored_scores_fit), else rescored by rescore(paths) ->
    {key: scores}. (None, why) when there is none (e.g. --threshold_holdout=0)."""
    try:
        table = thresholds.read_holdout(run_dir)
    except ConfigError as err:
        return None, no_holdout_reason(run_dir, config, err)
    warnings = set()
    fits = {key: thresholds.stored_scores_fit(table, run_dir, checkpoint_path, weights, map_score,
                                              0.0 if key is None else key, warn=warnings.add) for key in keys}
    for line in sorted(warnings):
        log(line)
    rescored = {}
    if not all(fits.values()):
        missing = [p for p in table["path"] if not os.path.isfile(p)]
        if missing:
            return None, (f"held-out image {display_path(missing[0])} is not found to score it with "
                          "these settings")
        try:
            rescored = rescore(table["path"])
        except DatasetError as err:
            return None, f"a held-out image cannot be read ({err})"
    chosen = {}
    for key in keys:
        scores = thresholds.lambda_column(table, key) if fits[key] else rescored[key]
        chosen[key] = thresholds.Threshold(thresholds.quantile_threshold(scores), "holdout quantile",
                                           thresholds.DEFAULT_QUANTILE, len(scores), rescored=not fits[key])
    return chosen, None


def _score_files(scorer, spec, paths, lambdas, image_score, topk, sigma, batch_size):
    """{key: scores} of image files as predict.py scores them (its preprocessing, the same Scorer): per lambda,
    or {None: the map image score}."""
    from data.images import read_image
    from inference.predict_images import preprocess
    scores = {}
    for start in range(0, len(paths), 32):
        inputs = np.stack([preprocess(read_image(p), spec) for p in paths[start:start + 32]])
        out = scorer.score_images(inputs, spec.image_size, lambdas=lambdas, batch_size=batch_size)
        if IS.is_map_score(image_score):
            scores.setdefault(None, []).append(IS.map_scores(out["anomaly_map"], image_score, topk, sigma))
        else:
            for lam in lambdas:
                scores.setdefault(lam, []).append(out["scores"][lam])
    return {key: np.concatenate(values).astype(np.float64) for key, values in scores.items()}


def operating_metrics(labels, scores, threshold):
    """The metrics.csv columns of the deployed operating point (threshold: a Threshold, or None: those columns
    empty) and the threshold-free F1-max and AUPR."""
    row = {"f1_max": IM.f1_max(labels, scores)[0], "aupr": IM.aupr(labels, scores)}
    if threshold is not None:
        row["holdout_threshold"] = threshold.value
        row.update(IM.operating_point(labels, scores, threshold.value))
    return row


def _example_indices(items):
    """The first EXAMPLES_GOOD good images and up to EXAMPLES_ANOMALOUS anomalous ones, one defect type at a time."""
    good = [i for i, item in enumerate(items) if item.label == 0][:EXAMPLES_GOOD]
    by_type = {}
    for i, item in enumerate(items):
        if item.label == 1:
            by_type.setdefault(item.defect_type, []).append(i)
    anomalous, depth = [], 0
    while len(anomalous) < EXAMPLES_ANOMALOUS and any(depth < len(v) for v in by_type.values()):
        for indices in by_type.values():
            if depth < len(indices) and len(anomalous) < EXAMPLES_ANOMALOUS:
                anomalous.append(indices[depth])
        depth += 1
    return good + sorted(anomalous)


# ---------------------------------------------------------------------------------------------- the job


def evaluate_run(run_dir, settings=None, log=print, restored=None):
    """Evaluate one run folder and write its eval folder; returns an EvalSummary (see the module docstring).
    restored: this run's inference.restore.restore_run of the requested checkpoint, to reuse across evaluations
    (bench/image_scores.py); None restores it."""
    from models.scoring import Scorer
    from data.categories import spec_for
    from inference.restore import restore_run

    settings = (settings or EvalSettings()).validate()
    run_dir = os.fspath(run_dir)
    config, payload = TrainConfig.load(run_dir)
    settings = settings.for_run(config)
    checkpoint_path = find_checkpoint(run_dir, settings.checkpoint, log=log)
    data_dir = resolve_data_dir(run_dir, config, payload, settings.data_dir)
    spec = spec_for(config)
    files = find_files(config, data_dir)
    for warning in files.warnings:
        log(f"warning: {warning}")
    if not files.test_items:
        where = ("(--normal_test_dir, or --normal_test_fraction above 0, and --abnormal_dir)" if uses_folders(config)
                 else "(test/good, test/<defect>)")
        raise DatasetError(f"{files.root} has no test images {where}: nothing to evaluate")
    feature_layer = settings.feature_layer or config.feature_layer
    default_lambda = float(config.score_lambda)
    lambdas = resolve_lambdas(settings.lambdas, default_lambda)
    eval_dir = settings.output or default_output_dir(run_dir, settings, config)
    run_folder.check_eval_output(run_dir, eval_dir)
    image_score, topk = settings.image_score, IS.effective_topk(settings.image_score, settings.topk_percent)
    map_score = IS.is_map_score(image_score)

    if restored is None:
        restored = restore_run(run_dir, settings.checkpoint, log=lambda *a: None)  # find_checkpoint said it
    elif restored.checkpoint_path != checkpoint_path:
        raise ValueError(f"restored holds {restored.checkpoint_path}, not the {settings.checkpoint} checkpoint "
                         f"{checkpoint_path} of {run_dir}")
    final_dir, eval_dir = eval_dir, run_folder.staging_folder(eval_dir)  # the previous result stays until the end
    try:
        step = restored.step
        scorer = Scorer(restored.model, weights=settings.weights, feature_layer=feature_layer)
        items = files.test_items
        n_images = len(items)
        size = spec.image_size
        log(f"evaluating {run_dir}: {config.category} ({spec.type}, {n_images} test images, "
            f"{sum(i.label for i in items)} anomalous), {settings.weights} weights of step {step}, "
            f"feature layer {feature_layer}, image score {IS.describe(image_score, topk)}")

        pixel = files.has_masks
        if pixel:
            pixel_size = pixel_metric_size(n_images, size, int(settings.pixel_size))
            if pixel_size != size and not settings.pixel_size:
                log(f"note: pixel metrics at {pixel_size}x{pixel_size} (the {n_images} maps at {size}x{size} would "
                    f"exceed {PIXEL_MEMORY_BUDGET >> 20} MB)")
            maps = np.empty((n_images, pixel_size, pixel_size), np.float32)
            masks = np.empty((n_images, pixel_size, pixel_size), bool)
        sigma = IS.sigma_pixels(settings.smoothing_sigma, size)

        template = _mean_training_image(spec, files)
        chunk_size = max(1, min(32, PATCHES_PER_CHUNK // spec.patches_per_image))
        rec, feat, labels, defects, paths, template_distances, map_values = [], [], [], [], [], [], []
        good = D.GoodReconstructions(size)
        scores = {lam: [] for lam in lambdas}
        done = 0
        for chunk in iter_test_chunks(spec, files, chunk_size=chunk_size):
            keep = good.wants_more
            out = scorer.score_images(chunk["image"], size, lambdas=lambdas, batch_size=int(settings.batch_size),
                                      keep_reconstructions=keep)
            k = len(chunk["label"])
            if template is not None:  # the mean-image baseline, aggregated as the model's score
                template_distances.append(
                    IS.map_scores(template.distance_maps(chunk["image"], size), image_score, topk, sigma) if map_score
                    else template.distances(chunk["image"]))
            if keep:
                good.add(chunk, out)
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
        # float64 from here on: the values written to scores.csv are exactly those the metrics are computed from.
        reconstruction_error = np.concatenate(rec).astype(np.float64)
        feature_error = np.concatenate(feat).astype(np.float64)
        scores = {lam: np.concatenate(v).astype(np.float64) for lam, v in scores.items()}
        labels = np.concatenate(labels).astype(int)
        defects = np.asarray(defects, dtype=object)
        # The image score the metrics are about: eq. 7 at each lambda, or the map aggregation (one, keyed None).
        chosen = {None: np.concatenate(map_values)} if map_score else scores
        keys = (None,) if map_score else lambdas
        default_key = None if map_score else default_lambda

        scores_path = reports.write_scores(os.path.join(eval_dir, SCORES_FILE), paths, defects, labels,
                                           reconstruction_error, feature_error, scores,
                                           extra={reports.map_score_column(image_score, topk): chosen[None]}
                                           if map_score else None)
        try:
            by_lambda, per_defect = image_metrics(labels, defects, chosen, keys)
        except MetricUndefined as err:  # the scores are a new result: they replace the previous evaluation
            run_folder.swap_in(eval_dir, final_dir, OUTPUT_FILES)
            scores_path = os.path.join(final_dir, SCORES_FILE)
            raise MetricUndefined(f"run {run_dir} ({config.category}): {err}; the per-image scores are in "
                                  f"{scores_path}") from None

        pixel_auroc = aupro = None
        if pixel:
            try:
                pixel_auroc = PM.pixel_auroc(masks, maps)
                aupro = PM.aupro(masks, maps)
            except MetricUndefined as err:
                log(f"warning: pixel metrics skipped: {err}")
            del maps

        deployed, no_holdout_threshold = deployed_thresholds(
            run_dir, config, checkpoint_path, settings.weights, map_score, keys, log=log,
            rescore=lambda paths: _score_files(scorer, spec, paths, lambdas, image_score, topk, sigma,
                                               int(settings.batch_size)))
        rows = [{"lambda": None if lam is None else float(lam), "image_auroc": by_lambda[lam][0],
                 "balanced_accuracy": by_lambda[lam][1], "threshold": by_lambda[lam][2], "pixel_auroc": pixel_auroc,
                 "aupro": aupro, "weights": settings.weights, "checkpoint": settings.checkpoint, "step": step,
                 "protocol": evaluation_protocol(settings.checkpoint),
                 "feature_layer": feature_layer, "image_score": image_score, "topk_percent": topk,
                 **operating_metrics(labels, chosen[lam], None if deployed is None else deployed[lam])}
                for lam in keys]
        reports.write_metrics(os.path.join(eval_dir, METRICS_FILE), rows)
        diagnostics = {"template_auroc": (D.template_auroc(labels, np.concatenate(template_distances))
                                          if template is not None else None),
                       "template_image_score": IS.name(image_score, topk or IS.DEFAULT_TOPK_PERCENT),
                       "reconstruction_specificity": good.specificity()}
        del good
        with open(os.path.join(eval_dir, DIAGNOSTICS_FILE), "w") as handle:
            json.dump(diagnostics, handle, indent=2)
            handle.write("\n")
        reports.write_per_defect(os.path.join(eval_dir, PER_DEFECT_FILE), per_defect)

        auroc, balanced, threshold = by_lambda[default_key]
        title = f"{config.category}, {settings.weights} weights, step {step}, " + (
            f"{IS.describe(image_score, topk)} score" if map_score else f"lambda {default_lambda:g}")
        plots.roc_plot(os.path.join(eval_dir, ROC_FILE), labels, chosen[default_key], title=title, auroc=auroc,
                       threshold=threshold)
        plots.histogram_plot(os.path.join(eval_dir, HISTOGRAM_FILE), labels, chosen[default_key],
                             threshold=threshold, title=title)
        _examples(os.path.join(eval_dir, EXAMPLES_FILE), scorer, spec, files, default_lambda, settings, title, sigma)

        record = settings_record(settings, config, checkpoint_path, lambdas)
        record.update({"step": step, "checkpoint_path": checkpoint_path, "data_dir": os.path.abspath(data_dir) if data_dir else None,
                       "category": config.category, "category_type": spec.type, "alpha": config.alpha,
                       "default_lambda": default_lambda, "n_images": n_images, "n_anomalous": int(labels.sum()),
                       "has_masks": bool(files.has_masks),
                       "smoothing_sigma_px": sigma, "pixel_metric_size": pixel_size if pixel else None,
                       "no_holdout_threshold": no_holdout_threshold})
        with open(os.path.join(eval_dir, SETTINGS_FILE), "w") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
    except BaseException:
        shutil.rmtree(eval_dir, ignore_errors=True)  # our staging folder (gone if already swapped in)
        raise
    run_folder.swap_in(eval_dir, final_dir, OUTPUT_FILES)
    eval_dir = final_dir
    summary = EvalSummary(run_dir=run_dir, eval_dir=eval_dir, category=config.category, category_type=spec.type,
                          alpha=float(config.alpha), step=step, weights=settings.weights,
                          checkpoint=settings.checkpoint, feature_layer=feature_layer, default_lambda=default_lambda,
                          metrics=reports.read_metrics(os.path.join(eval_dir, METRICS_FILE)), n_images=n_images,
                          n_anomalous=int(labels.sum()), has_masks=bool(files.has_masks), diagnostics=diagnostics,
                          image_score=image_score, topk_percent=topk, no_holdout_threshold=no_holdout_threshold)
    tensorboard_log.write_evaluation(summary)  # the headline metrics in the run's tensorboard/, at the step
    return summary


def _mean_training_image(spec, files, chunk=64):
    """The mean-image baseline's template (evaluation/diagnostics.py), decoded chunk by chunk; None without
    training images."""
    if not files.train_paths:
        return None
    template = D.MeanTemplate(spec.patch_size)
    for start in range(0, len(files.train_paths), chunk):
        part = dataclasses.replace(files, train_paths=files.train_paths[start:start + chunk])
        template.add(load_train_images(spec, part, verbose=False))
    return template


def _examples(path, scorer, spec, files, default_lambda, settings, title, sigma):
    indices = _example_indices(files.test_items)
    subset = dataclasses.replace(files, test_items=[files.test_items[i] for i in indices])
    chunk = next(iter_test_chunks(spec, subset, chunk_size=len(indices)))
    out = scorer.score_images(chunk["image"], spec.image_size, lambdas=(default_lambda,),
                              batch_size=int(settings.batch_size), keep_reconstructions=True)
    shown = out["scores"][default_lambda]
    if IS.is_map_score(settings.image_score):
        shown = IS.map_scores(out["anomaly_map"], settings.image_score, settings.topk_percent, sigma)
    titles = [f"{d}\nA = {s:.4g}" for d, s in zip(chunk["defect_type"], shown)]
    plots.examples_plot(path, chunk["image_uint8"], out["reconstruction"], out["anomaly_map"], titles,
                        masks=chunk["mask"] if files.has_masks else None, title=title)


# ---------------------------------------------------------------------------------------------- reuse, summary


def load_evaluation(run_dir, settings=None):
    """The EvalSummary of an existing evaluation made with the same settings and checkpoint, else None."""
    settings = (settings or EvalSettings()).validate()
    config, _ = TrainConfig.load(run_dir)
    settings = settings.for_run(config)
    eval_dir = settings.output or default_output_dir(run_dir, settings, config)
    settings_path = os.path.join(eval_dir, SETTINGS_FILE)
    metrics_path = os.path.join(eval_dir, METRICS_FILE)
    if not (os.path.isfile(settings_path) and os.path.isfile(metrics_path)):
        return None
    saved = _read_json(settings_path)
    if saved is None:
        return None
    saved.setdefault("image_score", IS.DEFAULT_IMAGE_SCORE)  # written before image scores existed: the paper's
    saved.setdefault("topk_percent", None)
    checkpoint_path = find_checkpoint(run_dir, settings.checkpoint, log=lambda *a: None)
    lambdas = resolve_lambdas(settings.lambdas, config.score_lambda)
    wanted = settings_record(settings, config, checkpoint_path, lambdas)
    if any(saved.get(key) != value for key, value in wanted.items()):
        return None
    return EvalSummary(run_dir=os.fspath(run_dir), eval_dir=eval_dir, category=config.category,
                       category_type=saved["category_type"], alpha=float(config.alpha), step=int(saved["step"]),
                       weights=settings.weights, checkpoint=settings.checkpoint,
                       feature_layer=wanted["feature_layer"], default_lambda=float(config.score_lambda),
                       metrics=reports.read_metrics(metrics_path), n_images=int(saved["n_images"]),
                       n_anomalous=int(saved["n_anomalous"]), has_masks=bool(saved["has_masks"]), reused=True,
                       diagnostics=_read_json(os.path.join(eval_dir, DIAGNOSTICS_FILE)),
                       image_score=wanted["image_score"], topk_percent=wanted["topk_percent"],
                       no_holdout_threshold=saved.get("no_holdout_threshold"))


def _read_json(path):
    """The JSON content of path, or None when it is missing or unreadable."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None


def _fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def format_summary(summary):
    """A few lines: the metrics at the default lambda, the best lambda on the test set, where the files are."""
    row = summary.at_default()
    n_good = summary.n_images - summary.n_anomalous
    lines = [f"{summary.run_dir}: {summary.category} ({summary.category_type}), {summary.weights} weights of step "
             f"{summary.step}, feature layer {summary.feature_layer}; {summary.n_images} test images "
             f"({n_good} good, {summary.n_anomalous} anomalous)"]
    if summary.protocol == "authors":
        lines.append(f"  protocol authors: the {summary.checkpoint} checkpoint, selected on the test set as the authors' "
                     "code did (optimistic: not an estimate for new images)")
    else:
        lines.append(f"  protocol fair: the {summary.checkpoint} checkpoint, no selection on the test set")
    map_score = IS.is_map_score(summary.image_score)
    where = (f"image score {summary.image_score_text()} (smoothed anomaly map; lambda does not enter it)" if map_score
             else f"image score {summary.image_score_text()}, lambda {summary.default_lambda:g}")
    text = (f"  {where}: image AUROC {_fmt(row['image_auroc'])}, max balanced accuracy "
            f"{_fmt(row['balanced_accuracy'])} (threshold {row['threshold']:.6g})")
    if row["pixel_auroc"] is not None:
        text += f", pixel AUROC {_fmt(row['pixel_auroc'])}, AUPRO {_fmt(row['aupro'])}"
    elif not summary.has_masks:
        text += "; no masks, so no pixel metrics"
    lines.append(text)
    best = max(summary.metrics, key=lambda r: r["image_auroc"])
    if not map_score and abs(best["lambda"] - summary.default_lambda) > 1e-12:
        lines.append(f"  (best lambda on the test set: {best['lambda']:g} with AUROC {_fmt(best['image_auroc'])}; "
                     "chosen on the test set, so for reference only)")
    lines.extend(format_operating_point(row, summary.no_holdout_threshold))
    lines.extend(format_diagnostics(summary.diagnostics, row["image_auroc"], summary.image_score_text()))
    lines.append(f"  files: {summary.eval_dir}/ ({SCORES_FILE}, {METRICS_FILE}, {PER_DEFECT_FILE}, {ROC_FILE}, "
                 f"{HISTOGRAM_FILE}, {EXAMPLES_FILE}, {DIAGNOSTICS_FILE})")
    return "\n".join(lines)


def format_operating_point(row, no_holdout_threshold=None):
    """Lines on the deployed operating point (predict.py's threshold) and the threshold-free F1-max and AUPR."""
    lines = []
    if row.get("holdout_threshold") is not None:
        lines.append(f"  at the run's threshold {row['holdout_threshold']:.6g} (what predict.py uses: quantile "
                     f"{thresholds.DEFAULT_QUANTILE:g} of the held-out good training images): false alarms "
                     f"{_fmt(row['false_alarm_rate'])} of good test images, detection {_fmt(row['detection_rate'])} "
                     f"of anomalous ones, precision {_fmt(row['precision'])}, F1 {_fmt(row['f1'])}")
    elif no_holdout_threshold:
        lines.append(f"  no operating point at the run's threshold: {no_holdout_threshold}")
    if row.get("f1_max") is not None:
        lines.append(f"  threshold-free: F1-max {_fmt(row['f1_max'])} (at the test-optimal threshold), AUPR "
                     f"{_fmt(row['aupr'])}")
    return lines


def format_diagnostics(diagnostics, auroc, image_score_text=None):
    """Lines saying whether the model beats the mean-image baseline (scored with the same image score) and whether
    its reconstructions depend on the input (evaluation/diagnostics.py); none without diagnostics."""
    if not diagnostics:
        return []
    lines = []
    baseline = diagnostics.get("template_auroc")
    if baseline is not None:
        how = f"; {image_score_text}" if image_score_text else ""
        lines.append(f"  mean-image baseline (L1 to the mean training image, no model{how}): image AUROC "
                     f"{_fmt(baseline)}"
                     + ("; the model does not beat it" if auroc <= baseline else ""))
    specificity = diagnostics.get("reconstruction_specificity")
    if specificity:
        ratio = specificity["ratio"]
        lines.append(f"  reconstruction specificity {ratio:.3f} (own / other images' reconstruction error over "
                     f"{specificity['images']} good test images; 0 = exact, 1 = the same output for every input)"
                     + ("; reconstructions barely depend on the input: train longer" if ratio > 0.9 else ""))
    return lines
