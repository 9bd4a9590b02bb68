"""The metrics of one scored test set, as metrics.csv and per_defect.csv rows: per lambda of eq. 7 (or the one map
image score) the image AUROC, max balanced accuracy and per-defect AUROC (MetricUndefined if the test set has one
class only), the pixel AUROC and AUPRO, and the operating point at the run's own threshold (predict.py's: a
quantile of the held-out good training images) with the threshold-free F1-max and AUPR."""
import os

import numpy as np

from config import evaluation_protocol
from data.files import display_path
from errors import ConfigError, DatasetError
from evaluation import image_metrics as IM
from evaluation import pixel_metrics as PM
from evaluation.metric_inputs import MetricUndefined
from inference import threshold as thresholds
from models import image_scores as IS
import run_folder


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


def pixel_metrics(masks, maps, log=print):
    """(pixel AUROC, AUPRO) of the smoothed maps against the masks; None without masks or, with a warning, for
    each one from the first that is undefined."""
    pixel_auroc = aupro = None
    if maps is not None:
        try:
            pixel_auroc = PM.pixel_auroc(masks, maps)
            aupro = PM.aupro(masks, maps)
        except MetricUndefined as err:
            log(f"warning: pixel metrics skipped: {err}")
    return pixel_auroc, aupro


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


def score_files(scorer, run, paths):
    """{key: scores} of image files as predict.py scores them (its preprocessing, the same Scorer): per lambda,
    or {None: the map image score} (run: evaluation.run_inputs.RunInputs)."""
    from data.images import read_image
    from inference.predict_images import preprocess
    spec, lambdas = run.spec, run.lambdas
    scores = {}
    for start in range(0, len(paths), 32):
        inputs = np.stack([preprocess(read_image(p), spec) for p in paths[start:start + 32]])
        out = scorer.score_images(inputs, spec.image_size, lambdas=lambdas, batch_size=run.batch_size)
        if run.map_score:
            scores.setdefault(None, []).append(IS.map_scores(out["anomaly_map"], run.image_score, run.topk,
                                                             run.sigma))
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


def metrics_rows(run, step, test, by_lambda, pixel_auroc, aupro, deployed):
    """metrics.csv's rows, one per metrics key (run.metric_keys): image_metrics' by_lambda, the pixel metrics (the
    same on every row) and the operating point at deployed (deployed_thresholds; None: empty columns)."""
    settings = run.settings
    return [{"lambda": None if lam is None else float(lam), "image_auroc": by_lambda[lam][0],
             "balanced_accuracy": by_lambda[lam][1], "threshold": by_lambda[lam][2], "pixel_auroc": pixel_auroc,
             "aupro": aupro, "weights": settings.weights, "checkpoint": settings.checkpoint, "step": step,
             "protocol": evaluation_protocol(settings.checkpoint),
             "feature_layer": run.feature_layer, "image_score": run.image_score, "topk_percent": run.topk,
             **operating_metrics(test.labels, test.chosen[lam], None if deployed is None else deployed[lam])}
            for lam in run.metric_keys]
