"""Evaluate a folder of run folders and write paper-style tables across them (results.csv, results.md).

    python evaluate.py --run runs/        (runs/ has no config.json, its subfolders do)

Each run folder (a direct subfolder with config.json, in name order) is evaluated with the same settings, unless
its eval folder already holds an evaluation with the same settings of the same checkpoint (eval_settings.json
and metrics.csv), which is reused (force=True re-evaluates). A run without a checkpoint is skipped with a
warning; a run whose test set has one class only (metrics undefined) is left out of the tables with a warning.
Other errors (e.g. a moved dataset) stop the job with their one-line message.

Also training_curves.png (evaluation.curves): L_R, critic loss, gradient penalty and monitored AUROC of every run.

Tables (evaluation.tables.write_results): metrics auroc and balanced_accuracy at each run's default lambda
(config.score_lambda, 0.1 as in the paper), plus pixel_auroc and aupro for the runs that have them, the
threshold-free f1_max and aupr, and the deployed operating point (false_alarm_rate, detection_rate, precision,
f1 at the run's held-out threshold, predict.py's) for the runs that have held-out images. Category types
(texture/object) come from each run's config, so custom categories keep theirs.

Method labels (table rows): "CBiGAN alpha=<alpha>" for alpha > 0, "EGBAD (alpha=0)" for alpha 0. When two runs
of the same category get the same label, each of them gets its run folder name appended in brackets,
e.g. "CBiGAN alpha=0.0001 [bottle-alpha0.0001-20250101-120000]". With a map image score (--image_score=map_max
or map_topk, models/image_scores.py) every one of our rows, the mean-image baseline included, names it:
"CBiGAN alpha=0.0001, map max", "mean-image baseline, map top-1% mean"; rows without it use the paper's score
(eq. 7), as the paper's own rows. results.md ends with a list of the runs behind each row (folder, step,
weights, checkpoint, feature layer, lambda, image score).
"""
import dataclasses
import os
from pathlib import Path

from run_folder import CONFIG_FILE
from errors import ConfigError
from models import image_scores as IS
from evaluation import tables
from evaluation.curves import training_curves_plot
from evaluation.evaluate_run import EvalSettings, NoCheckpoint, evaluate_run, format_summary, load_evaluation
from evaluation.metric_inputs import MetricUndefined

TABLE_METRICS = (("auroc", "image_auroc"), ("balanced_accuracy", "balanced_accuracy"),
                 ("pixel_auroc", "pixel_auroc"), ("aupro", "aupro"), ("f1_max", "f1_max"), ("aupr", "aupr"),
                 ("false_alarm_rate", "false_alarm_rate"), ("detection_rate", "detection_rate"),
                 ("precision", "precision"), ("f1", "f1"))


@dataclasses.dataclass
class CollectSummary:
    folder: str
    results_csv: str
    results_md: str
    evaluated: list   # EvalSummary of every run in the tables (reused ones have .reused True)
    methods: list     # method label of each of them
    skipped: list     # (run folder, reason)
    curves_png: str | None = None  # training_curves.png (None when no run has a train_log.csv)


BASELINE_METHOD = "mean-image baseline"


def run_folders(folder):
    """Direct subfolders holding config.json, sorted by name."""
    folder = Path(folder)
    return [str(p) for p in sorted(folder.iterdir()) if p.is_dir() and (p / CONFIG_FILE).is_file()]


def is_folder_of_runs(folder):
    return os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, CONFIG_FILE)) \
        and bool(run_folders(folder))


def method_label(alpha):
    """'EGBAD (alpha=0)' for alpha 0, else 'CBiGAN alpha=<alpha>' (the paper's method names)."""
    alpha = float(alpha)
    return "EGBAD (alpha=0)" if alpha == 0.0 else f"CBiGAN alpha={alpha:g}"


def score_suffix(image_score, topk_percent=None):
    """'' for the paper's image score, else ', <the aggregation>' (e.g. ', map max') for table row labels."""
    if not IS.is_map_score(image_score):
        return ""
    return ", " + IS.describe(image_score, IS.DEFAULT_TOPK_PERCENT if topk_percent is None else topk_percent)


def method_labels(runs, suffix=""):
    """runs: (run_dir, category, alpha) triples -> labels; duplicates within a category get the folder name.
    suffix (score_suffix) names a map image score."""
    labels = [method_label(alpha) + suffix for _, _, alpha in runs]
    keys = [(category, label) for (_, category, _), label in zip(runs, labels)]
    return [f"{label} [{os.path.basename(os.path.normpath(run_dir))}]" if keys.count(key) > 1 else label
            for (run_dir, _, _), label, key in zip(runs, labels, keys)]


def evaluate_folder(folder, settings=None, force=False, results_dir=None, log=print):
    """Evaluate (or reuse) every run in folder and write results.csv / results.md into results_dir (default
    folder). Returns a CollectSummary. ConfigError when no run could be put in a table."""
    settings = settings or EvalSettings()
    if settings.output:
        raise ValueError("settings.output must be None for a folder of runs: each run uses its default eval "
                         "folder; results_dir says where results.csv / results.md go")
    runs = run_folders(folder)
    if not runs:
        raise ConfigError(f"{folder} holds no run folders (subfolders with {CONFIG_FILE})")
    evaluated, skipped = [], []
    for run_dir in runs:
        try:
            summary = None if force else load_evaluation(run_dir, settings)
            if summary is not None:
                log(f"{run_dir}: reusing {summary.eval_dir} (same settings and checkpoint; --force re-evaluates)")
            else:
                summary = evaluate_run(run_dir, settings, log=log)
                log(format_summary(summary))
        except NoCheckpoint as err:
            log(f"warning: skipping {run_dir}: {err}")
            skipped.append((run_dir, str(err)))
            continue
        except MetricUndefined as err:
            log(f"warning: {run_dir} left out of the tables: {err}")
            skipped.append((run_dir, str(err)))
            continue
        evaluated.append(summary)
    if not evaluated:
        raise ConfigError(f"no run in {folder} could be evaluated ({len(skipped)} skipped: see the warnings)")

    suffix = score_suffix(settings.image_score, settings.topk_percent)
    methods = method_labels([(s.run_dir, s.category, s.alpha) for s in evaluated], suffix)
    results = {metric: [] for metric, _ in TABLE_METRICS}
    category_types = {}
    for summary, method in zip(evaluated, methods):
        row = summary.at_default()
        category_types[summary.category] = summary.category_type
        for metric, column in TABLE_METRICS:
            if row is not None and row.get(column) is not None:
                results[metric].append({"method": method, "category": summary.category, "value": row[column]})
    results["auroc"].extend(_baseline_rows(evaluated, suffix))
    out_dir = results_dir or folder
    protocols = {method: summary.protocol for summary, method in zip(evaluated, methods)}
    csv_path, md_path = tables.write_results(results, out_dir, category_types, protocols)
    with open(md_path, "a") as handle:
        handle.write(_runs_section(evaluated, methods))
    curves_png = os.path.join(out_dir, "training_curves.png")
    curve_labels = [f"{s.category}: {method}" for s, method in zip(evaluated, methods)]
    if training_curves_plot(curves_png, [s.run_dir for s in evaluated], curve_labels) is None:
        curves_png = None
    else:
        log(f"training curves: {curves_png}")
    if skipped:
        log(f"{len(skipped)} run(s) not in the tables: " + ", ".join(os.path.basename(r) for r, _ in skipped))
    log(f"tables of {len(evaluated)} run(s): {csv_path}, {md_path}")
    return CollectSummary(str(folder), str(csv_path), str(md_path), evaluated, methods, skipped, curves_png)


def _baseline_rows(evaluated, suffix=""):
    """The mean-image baseline (diagnostics.json, no model; scored with the runs' image score) of each category,
    one auroc entry per category."""
    rows = {}
    for summary in evaluated:
        value = (summary.diagnostics or {}).get("template_auroc")
        if value is not None and summary.category not in rows:
            rows[summary.category] = {"method": BASELINE_METHOD + suffix, "category": summary.category,
                                      "value": value}
    return list(rows.values())


def _runs_section(evaluated, methods):
    lines = ["", "## Runs", "", "| method | protocol | category | run folder | step | weights | checkpoint | "
             "feature layer | lambda | image score | reconstruction specificity |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for summary, method in zip(evaluated, methods):
        specificity = ((summary.diagnostics or {}).get("reconstruction_specificity") or {}).get("ratio")
        lines.append(f"| {method} | {summary.protocol} | {summary.category} | {summary.run_dir} | {summary.step} | {summary.weights} | "
                     f"{summary.checkpoint} | {summary.feature_layer} | "
                     f"{'-' if IS.is_map_score(summary.image_score) else f'{summary.default_lambda:g}'} | "
                     f"{summary.image_score_text()} | {'-' if specificity is None else f'{specificity:.3f}'} |")
    lines += ["", f"{BASELINE_METHOD}: L1 distance to the mean training image, no model (evaluate.py diagnostics), "
              "scored with the same image score as the runs. Image score: paper (eq. 7) = the L1 sums of eq. 7-9 "
              "at the run's lambda (the paper's rows use it too); map max / map top-k% mean = the maximum / the "
              "mean of the top k % of the smoothed anomaly map (lambda does not enter it). Reconstruction "
              "specificity: own / other images' reconstruction error on good test images (0 = exact, 1 = the same "
              "reconstruction for every input)."]
    return "\n".join(lines) + "\n"

