"""bench/image_scores.py on a tiny trained run: one row per (weights, image score), the numbers of the eval folders
it writes (the mean-image baseline under the same aggregation), and reuse on a second call."""
import csv
import json
import os
import shutil

import pytest

from bench import image_scores as bench


def test_bench_image_scores_rows(trained_run, tmp_path, capsys):
    from evaluation.reports import read_metrics

    source, _ = trained_run("object")
    run = str(tmp_path / "widget-run")
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("eval*", "predictions", "tensorboard"))
    out_csv = str(tmp_path / "rows.csv")
    assert bench.main([f"--run={run}", f"--csv={out_csv}"]) == 0
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["weights"], r["image_score"]) for r in rows] == [
        (w, s) for w in ("ema", "last") for s in ("paper (eq. 7)", "map max", "map top-1% mean")]
    folders = [("eval", "paper"), ("eval_map_max", "map_max"), ("eval_map_topk", "map_topk"),
               ("eval_last", "paper"), ("eval_last_map_max", "map_max"), ("eval_last_map_topk", "map_topk")]
    for row, (folder, score_name) in zip(rows, folders):
        metrics = read_metrics(os.path.join(run, folder, "metrics.csv"))
        expected = [m for m in metrics if m["lambda"] in (None, 0.1)]
        assert len(expected) == 1 and expected[0]["weights"] == row["weights"]
        assert float(row["image_auroc"]) == expected[0]["image_auroc"]
        assert float(row["balanced_accuracy"]) == expected[0]["balanced_accuracy"]
        diagnostics = json.loads(open(os.path.join(run, folder, "diagnostics.json")).read())
        assert float(row["baseline_auroc"]) == diagnostics["template_auroc"]
        assert diagnostics["template_image_score"] == score_name
        assert row["step"] == "12" and row["category"] == "widget"
    # the baseline needs no model: the same value for both weights of each aggregation
    for i in range(3):
        assert rows[i]["baseline_auroc"] == rows[i + 3]["baseline_auroc"]
    printed = capsys.readouterr().out
    assert printed.count("| widget-run | widget | 12 |") == 6 and "mean-image baseline AUROC" in printed

    # a second call reuses the six evaluations
    messages = []
    again = bench.compare([run], log=messages.append)
    assert messages == [] and [r["image_auroc"] for r in again] == pytest.approx(
        [float(r["image_auroc"]) for r in rows], abs=0)
