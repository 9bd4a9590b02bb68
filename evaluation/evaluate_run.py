"""Evaluate one trained run folder: score its category's test set and write <run>/eval/ (see docs/EVALUATION.md).

    summary = evaluate_run("runs/bottle-alpha0.0001-...", EvalSettings())
    print(format_summary(summary))

The recipe below, one module per step: restore (run_inputs.py: config.json, the checkpoint, the dataset, the
model) -> score (scored_test_set.py: every lambda of eq. 7, the map image score, the pixel maps) -> metrics
(run_metrics.py; a test set with one class only raises MetricUndefined after scores.csv is written) -> reports
(reports.py: scores.csv, metrics.csv, per_defect.csv; run_figures.py: the plots) -> diagnostics
(run_diagnostics.py: diagnostics.json) -> eval_settings.json (reuse.py: the settings, to let the folder-of-runs
mode reuse an evaluation) -> the summary (summary.py). Everything is written into a staging folder that replaces
the previous result only at the end (eval_files.py). This module is evaluation's front door: evaluate_run and the
names its callers use (EvalSettings, parse_lambdas, NoCheckpoint, EvalSummary, format_summary, load_evaluation).
"""
import os

from evaluation import eval_files, reports, run_figures, tensorboard_log
from evaluation.eval_files import DIAGNOSTICS_FILE, METRICS_FILE, PER_DEFECT_FILE, SCORES_FILE, SETTINGS_FILE
from evaluation.metric_inputs import MetricUndefined
from evaluation.reuse import evaluation_record, load_evaluation
from evaluation.run_diagnostics import RunDiagnostics
from evaluation.run_inputs import NoCheckpoint, read_run_inputs, restore_model
from evaluation.run_metrics import deployed_thresholds, image_metrics, metrics_rows, pixel_metrics, score_files
from evaluation.scored_test_set import pixel_size_for, score_test_set
from evaluation.settings import EvalSettings, parse_lambdas
from evaluation.summary import EvalSummary, format_summary

__all__ = ["evaluate_run", "EvalSettings", "parse_lambdas", "NoCheckpoint", "EvalSummary", "format_summary",
           "load_evaluation"]


def evaluate_run(run_dir, settings=None, log=print, restored=None):
    """Evaluate one run folder and write its eval folder; returns an EvalSummary (see the module docstring).
    restored: this run's inference.restore.restore_run of the requested checkpoint, to reuse across evaluations
    (bench/image_scores.py); None restores it."""
    from models.scoring import Scorer

    run = read_run_inputs(run_dir, (settings or EvalSettings()).validate(), log=log)
    settings, run_dir, config = run.settings, run.run_dir, run.config
    restored = restore_model(run, restored)
    with eval_files.staging(run.eval_dir) as stage:  # the previous result stays until the end
        step = restored.step
        scorer = Scorer(restored.model, weights=settings.weights, feature_layer=run.feature_layer)
        items = run.files.test_items
        log(f"evaluating {run_dir}: {config.category} ({run.spec.type}, {len(items)} test images, "
            f"{sum(i.label for i in items)} anomalous), {settings.weights} weights of step {step}, "
            f"feature layer {run.feature_layer}, image score {run.describe_score()}")
        pixel_size = pixel_size_for(run, log=log)
        collector = RunDiagnostics(run)  # the mean training image, then each chunk's scores
        test = score_test_set(scorer, run, pixel_size, collector, log=log)
        reports.write_scores(stage.path(SCORES_FILE), test.paths, test.defect_types, test.labels,
                             test.reconstruction_error, test.feature_error, test.scores,
                             extra={reports.map_score_column(run.image_score, run.topk): test.chosen[None]}
                             if run.map_score else None)

        try:
            by_lambda, per_defect = image_metrics(test.labels, test.defect_types, test.chosen, run.metric_keys)
        except MetricUndefined as err:  # the scores are a new result: they replace the previous evaluation
            stage.publish()
            raise MetricUndefined(f"run {run_dir} ({config.category}): {err}; the per-image scores are in "
                                  f"{os.path.join(run.eval_dir, SCORES_FILE)}") from None
        pixel_auroc, aupro = pixel_metrics(test.masks, test.maps, log=log)
        test.maps = None  # up to PIXEL_MEMORY_BUDGET: freed before the rescoring and the plots
        deployed, no_holdout_threshold = deployed_thresholds(
            run_dir, config, run.checkpoint_path, settings.weights, run.map_score, run.metric_keys, log=log,
            rescore=lambda paths: score_files(scorer, run, paths))
        reports.write_metrics(stage.path(METRICS_FILE),
                              metrics_rows(run, step, test, by_lambda, pixel_auroc, aupro, deployed))
        diagnostics = collector.result(test.labels)
        eval_files.write_json(stage.path(DIAGNOSTICS_FILE), diagnostics)
        reports.write_per_defect(stage.path(PER_DEFECT_FILE), per_defect)
        run_figures.write_figures(stage.dir, scorer, run, step, test, by_lambda)
        eval_files.write_json(stage.path(SETTINGS_FILE),
                              evaluation_record(run, step, test, pixel_size, no_holdout_threshold))

    summary = EvalSummary(run_dir=run_dir, eval_dir=run.eval_dir, category=config.category,
                          category_type=run.spec.type, alpha=float(config.alpha), step=step, weights=settings.weights,
                          checkpoint=settings.checkpoint, feature_layer=run.feature_layer,
                          default_lambda=run.default_lambda,
                          metrics=reports.read_metrics(os.path.join(run.eval_dir, METRICS_FILE)),
                          n_images=test.n_images, n_anomalous=test.n_anomalous, has_masks=bool(run.files.has_masks),
                          diagnostics=diagnostics, image_score=run.image_score, topk_percent=run.topk,
                          no_holdout_threshold=no_holdout_threshold)
    tensorboard_log.write_evaluation(summary)  # the headline metrics in the run's tensorboard/, at the step
    return summary
