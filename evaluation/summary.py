"""The result of one evaluation in memory (EvalSummary: what evaluate_run and load_evaluation return) and in words
(format_summary: the lines evaluate.py prints)."""
import dataclasses
from typing import Optional

from config import evaluation_protocol
from evaluation import reports
from evaluation.eval_files import (DIAGNOSTICS_FILE, EXAMPLES_FILE, HISTOGRAM_FILE, METRICS_FILE, PER_DEFECT_FILE,
                                   ROC_FILE, SCORES_FILE)
from inference import threshold as thresholds
from models import image_scores as IS


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
