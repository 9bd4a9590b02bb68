"""Reusing a previous evaluation: eval_settings.json records what decides an evaluation's results (with what it
found: step, dataset, test-set counts), and load_evaluation returns the EvalSummary of an eval folder whose record
matches the settings asked for (the folder-of-runs mode evaluates only the runs without one)."""
import os

from config import TrainConfig
from evaluation import reports
from evaluation.eval_files import DIAGNOSTICS_FILE, METRICS_FILE, SETTINGS_FILE, read_json
from evaluation.run_inputs import find_checkpoint
from evaluation.settings import EvalSettings, default_output_dir, resolve_lambdas
from evaluation.summary import EvalSummary
from inference import threshold as thresholds
from models import image_scores as IS


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


def evaluation_record(run, step, test, pixel_size, no_holdout_threshold):
    """eval_settings.json's content: settings_record and what the evaluation found (run: RunInputs; test: its
    ScoredTestSet; pixel_size: that of the pixel metrics, None without masks)."""
    record = settings_record(run.settings, run.config, run.checkpoint_path, run.lambdas)
    record.update({"step": step, "checkpoint_path": run.checkpoint_path,
                   "data_dir": os.path.abspath(run.data_dir) if run.data_dir else None,
                   "category": run.config.category, "category_type": run.spec.type, "alpha": run.config.alpha,
                   "default_lambda": run.default_lambda, "n_images": test.n_images, "n_anomalous": test.n_anomalous,
                   "has_masks": bool(run.files.has_masks),
                   "smoothing_sigma_px": run.sigma, "pixel_metric_size": pixel_size,
                   "no_holdout_threshold": no_holdout_threshold})
    return record


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
    saved = read_json(settings_path)
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
                       diagnostics=read_json(os.path.join(eval_dir, DIAGNOSTICS_FILE)),
                       image_score=wanted["image_score"], topk_percent=wanted["topk_percent"],
                       no_holdout_threshold=saved.get("no_holdout_threshold"))
