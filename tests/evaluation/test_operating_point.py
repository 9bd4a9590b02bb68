"""The deployed operating point: evaluate.py's metrics at the run's own threshold (predict.py's: a quantile of the
held-out good training images), F1-max and AUPR in metrics.csv, the summary and results.md; the normalised score
(score / threshold) of predict.py's CSV and of the exported model.

Uses the tiny object run of conftest.py's trained_run (10 training images, 3 held out; test set 2 good, 2 anomalous),
copied so that the evaluations written here stay out of the shared run folder."""
import csv
import json
import os
import shutil

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from evaluation.collect import evaluate_folder
from evaluation.evaluate_run import EvalSettings, evaluate_run, format_summary
from inference.threshold import DEFAULT_QUANTILE, read_holdout


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run_copy(tmp_path_factory, trained_run):
    """(copied run folder inside a folder of runs, its data folder)."""
    run_dir, data_dir = trained_run("object")
    runs = tmp_path_factory.mktemp("operating_point") / "runs"
    copy = runs / "widget-a"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("eval*", "predictions*"))  # mtimes kept
    return str(copy), data_dir


def check_row(row, labels, scores, threshold):
    """A metrics.csv row against scikit-learn at `threshold` (score > threshold: anomalous)."""
    flagged = (scores > threshold).astype(int)
    assert float(row["holdout_threshold"]) == threshold
    assert float(row["false_alarm_rate"]) == pytest.approx(np.mean(scores[labels == 0] > threshold))
    assert float(row["detection_rate"]) == pytest.approx(recall_score(labels, flagged))
    assert float(row["precision"]) == pytest.approx(precision_score(labels, flagged, zero_division=0))
    assert float(row["f1"]) == pytest.approx(f1_score(labels, flagged, zero_division=0))
    assert float(row["f1_max"]) == pytest.approx(
        max(f1_score(labels, (scores >= t).astype(int)) for t in np.unique(scores)))
    assert float(row["aupr"]) == pytest.approx(average_precision_score(labels, scores))


def test_metrics_at_the_runs_threshold_are_predicts(run_copy):
    from inference.predict_images import Predictor
    run, _ = run_copy
    summary = evaluate_run(run, EvalSettings(), log=lambda *a: None)
    scores_csv = read_csv(os.path.join(summary.eval_dir, "scores.csv"))
    labels = np.array([int(r["label"]) for r in scores_csv])
    assert sorted(labels) == [0, 0, 1, 1]
    holdout = read_holdout(run)
    assert len(holdout["path"]) == 3
    rows = read_csv(os.path.join(summary.eval_dir, "metrics.csv"))
    for row in rows:
        lam = float(row["lambda"])
        threshold = float(np.quantile(holdout[f"score_lambda_{lam:g}"], DEFAULT_QUANTILE))
        check_row(row, labels, np.array([float(r[f"score_lambda_{lam:g}"]) for r in scores_csv]), threshold)
    # the run's lambda: the very threshold predict.py uses
    at_default = [r for r in rows if float(r["lambda"]) == 0.1][0]
    assert float(at_default["holdout_threshold"]) == Predictor(run).threshold().value
    text = format_summary(summary)
    assert (f"at the run's threshold {float(at_default['holdout_threshold']):.6g} (what predict.py uses: quantile "
            "0.99 of the held-out good training images): false alarms ") in text
    assert f"F1-max {float(at_default['f1_max']):.3f}" in text and f"AUPR {float(at_default['aupr']):.3f}" in text
    assert json.loads(open(os.path.join(summary.eval_dir, "eval_settings.json")).read())["holdout_quantile"] == 0.99

    # results.md / results.csv of the folder of runs: the evaluation is reused, the new metrics are tables
    collected = evaluate_folder(os.path.dirname(run), EvalSettings(), log=lambda *a: None)
    assert [s.reused for s in collected.evaluated] == [True]
    table = {(r["metric"], r["method"]): r for r in read_csv(collected.results_csv)}
    for metric in ("false_alarm_rate", "detection_rate", "precision", "f1", "f1_max", "aupr"):
        assert float(table[(metric, "CBiGAN alpha=0.0001")]["widget"]) == float(at_default[metric])
    markdown = open(collected.results_md).read()
    for title in ("## False-alarm rate on good test images at the run's threshold (predict.py's)",
                  "## Detection rate on anomalous test images", "## F1-max", "## AUPR (average precision)"):
        assert title in markdown


def test_last_weights_rescore_the_held_out_images_as_predict_does(run_copy):
    from inference.predict_images import Predictor
    run, _ = run_copy
    summary = evaluate_run(run, EvalSettings(weights="last", lambdas=(0.5,)), log=lambda *a: None)
    rows = {float(r["lambda"]): r for r in read_csv(os.path.join(summary.eval_dir, "metrics.csv"))}
    assert sorted(rows) == [0.1, 0.5]
    stored = read_holdout(run)["score_lambda_0.1"]
    for lam, row in rows.items():
        expected = Predictor(run, weights="last", score_lambda=lam).threshold()
        assert expected.rescored
        assert float(row["holdout_threshold"]) == pytest.approx(expected.value, rel=1e-6)
    assert float(rows[0.1]["holdout_threshold"]) != pytest.approx(np.quantile(stored, DEFAULT_QUANTILE), rel=1e-6)


def test_a_run_without_held_out_images_says_why(run_copy, tmp_path):
    run, _ = run_copy
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("eval*", "holdout_scores.csv"))
    payload = json.loads((bare / "config.json").read_text())
    payload["config"]["threshold_holdout"] = 0.0
    (bare / "config.json").write_text(json.dumps(payload))
    summary = evaluate_run(str(bare), EvalSettings(lambdas=(0.1,)), log=lambda *a: None)
    [row] = read_csv(os.path.join(summary.eval_dir, "metrics.csv"))
    for column in ("holdout_threshold", "false_alarm_rate", "detection_rate", "precision", "f1"):
        assert row[column] == ""
    assert float(row["f1_max"]) > 0 and float(row["aupr"]) > 0  # threshold-free: still there
    text = format_summary(summary)
    assert "  no operating point at the run's threshold: trained with --threshold_holdout=0" in text.splitlines()
    assert "false alarms" not in text


def test_predictions_csv_has_the_normalised_score(run_copy, tmp_path):
    from inference.predict_images import predict
    run, data_dir = run_copy
    summary = predict(run, [os.path.join(data_dir, "widget", "test")], output_dir=str(tmp_path / "out"),
                      log=lambda *a: None)
    rows = read_csv(summary.predictions_csv)
    assert list(rows[0])[:4] == ["path", "score", "normalized_score", "verdict"] and len(rows) == 4
    for row in rows:
        ratio = float(row["normalized_score"])
        assert ratio == pytest.approx(float(row["score"]) / float(row["threshold"]), rel=1e-8)
        assert (ratio > 1) == (row["verdict"] == "anomalous")
    assert float(rows[0]["threshold"]) == pytest.approx(summary.threshold.value, rel=1e-8)


def test_exported_model_outputs_the_normalised_score(run_copy, tmp_path):
    import tensorflow as tf
    from data.images import read_image
    from inference.export_model import export_run
    run, data_dir = run_copy
    info = export_run(run, str(tmp_path / "export"), log=lambda *a: None)
    model = tf.saved_model.load(str(tmp_path / "export"))
    folder = os.path.join(data_dir, "widget", "test", "good")
    image = read_image(os.path.join(folder, sorted(os.listdir(folder))[0]))
    out = model.serve(tf.constant(image[None]))
    np.testing.assert_allclose(out["normalized_score"].numpy(), out["score"].numpy() / info["threshold"], rtol=1e-6)
    assert "normalized_score" in open(tmp_path / "export" / "README.txt").read()
