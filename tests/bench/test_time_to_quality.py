"""evaluation/time_to_quality.py and bench/time_to_quality.py: the curves and the table are the runs' own numbers."""
import csv

import numpy as np
import pytest
from matplotlib.image import imread

from config import TrainConfig
from evaluation import time_to_quality as T


def _write_run(folder, recipe, seed, aurocs, specificities, category="widget"):
    """A run folder as training writes it: config.json, train_log.csv (cpu_s every 100 steps), metrics.csv
    (monitoring every 200 steps at lambda 0.1 and 0.0)."""
    folder.mkdir(parents=True)
    TrainConfig(category=category, recipe=recipe, seed=seed, steps=200 * len(aurocs)).save(folder)
    log = ["step,image_reconstruction,elapsed_s,cpu_s"]
    log += [f"{step},100,{step * 0.6:.1f},{step * 1.2:.1f}" for step in range(100, 200 * len(aurocs) + 1, 100)]
    (folder / "train_log.csv").write_text("\n".join(log) + "\n")
    rows = ["step,purpose,weights,lambda,image_auroc,reconstruction_specificity"]
    for i, (auroc, spec) in enumerate(zip(aurocs, specificities)):
        rows.append(f'{200 * (i + 1)},"monitoring (test set, not for model selection)",ema,0.1,{auroc},{spec}')
        rows.append(f'{200 * (i + 1)},"monitoring (test set, not for model selection)",ema,0.0,0.01,{spec}')
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    return folder


class _Summary:
    """What load_evaluation returns for an evaluated run (the fields read_run uses)."""

    def __init__(self, step, auroc, accuracy, specificity, baseline):
        self.step = step
        self.row = {"image_auroc": auroc, "balanced_accuracy": accuracy}
        self.diagnostics = {"template_auroc": baseline, "reconstruction_specificity": {"ratio": specificity}}

    def at_default(self):
        return self.row


@pytest.fixture
def runs(tmp_path, monkeypatch):
    finals = {}
    folders = []
    for recipe, seed, aurocs, final in (("paper", 1, [0.5, 0.55], (0.60, 0.61, 0.99, 0.70)),
                                        ("paper", 2, [0.52, 0.50], (0.56, 0.58, 0.98, 0.70)),
                                        ("fast", 1, [0.70, 0.80], (0.82, 0.75, 0.60, 0.70)),
                                        ("fast", 2, [0.71, 0.74], (0.74, 0.70, 0.75, 0.70)),
                                        ("fast", 3, [0.72, 0.78], (0.78, 0.72, 0.70, 0.70))):
        folder = _write_run(tmp_path / f"{recipe}-s{seed}", recipe, seed, aurocs, [0.9, 0.8])
        finals[str(folder)] = _Summary(400, *final)
        folders.append(folder)

    def load_evaluation(run_dir, settings):
        assert (settings.weights, settings.checkpoint, settings.image_score) == ("ema", "latest", "paper")
        return finals.get(str(run_dir))

    import evaluation.evaluate_run
    monkeypatch.setattr(evaluation.evaluate_run, "load_evaluation", load_evaluation)
    return folders


def test_read_run_joins_monitoring_with_cpu_time(runs):
    curve = T.read_run(runs[0])
    assert (curve.category, curve.recipe, curve.seed) == ("widget", "paper", 1)
    np.testing.assert_array_equal(curve.steps, [200, 400])
    np.testing.assert_allclose(curve.cpu_minutes, [200 * 1.2 / 60, 400 * 1.2 / 60])  # cpu_s at those steps
    np.testing.assert_array_equal(curve.auroc, [0.5, 0.55])   # the run's score_lambda (0.1), not lambda 0
    np.testing.assert_array_equal(curve.specificity, [0.9, 0.8])
    assert curve.final["image_auroc"] == 0.60 and curve.final["specificity"] == 0.99
    assert curve.final["cpu_minutes"] == pytest.approx(8.0) and curve.final["wall_minutes"] == pytest.approx(4.0)


def test_cpu_time_between_logged_rows_is_interpolated(tmp_path):
    folder = _write_run(tmp_path / "r", "paper", 1, [0.5], [0.9])
    (folder / "train_log.csv").write_text("step,cpu_s,elapsed_s\n100,60,30\n300,180,90\n")
    curve = T.read_run(folder)
    assert curve.cpu_minutes[0] == pytest.approx(2.0)  # step 200: halfway between 60 s and 180 s
    assert curve.final == {}                            # not evaluated


def test_summary_is_the_median_over_seeds(runs):
    summary = T.summarize([T.read_run(r) for r in runs])
    assert [(s["recipe"], s["seeds"]) for s in summary] == [("paper", [1, 2]), ("fast", [1, 2, 3])]
    fast = summary[1]
    assert fast["auroc_median"] == pytest.approx(np.median([0.82, 0.74, 0.78]))
    assert (fast["auroc_min"], fast["auroc_max"]) == (0.74, 0.82)
    assert fast["specificity_median"] == pytest.approx(0.70)
    assert fast["balanced_accuracy_median"] == pytest.approx(0.72)
    assert fast["seeds_above_baseline_by_0.05"] == 2  # 0.82 and 0.78 are >= 0.70 + 0.05, 0.74 is not
    assert summary[0]["seeds_above_baseline_by_0.05"] == 0
    table = T.markdown(summary)
    assert "| widget | fast | 1,2,3 | 400 | 0.780 (0.740-0.820) | 0.720 | 0.700 | 0.700 | 2/3 | 8.0 | 4.0 |" in table


def test_bench_script_writes_table_csv_and_figure(runs, tmp_path, capsys):
    from bench import time_to_quality as bench
    out = tmp_path / "out"
    bench.main([f"--run_glob={tmp_path}/*-s*", f"--out={out}"])
    with open(out / "time_to_quality.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10  # 5 runs x 2 monitored steps
    first = next(r for r in rows if r["run"].endswith("fast-s1") and r["step"] == "400")
    assert float(first["image_auroc"]) == 0.80 and float(first["cpu_minutes"]) == 8.0
    assert "0.780 (0.740-0.820)" in (out / "time_to_quality.md").read_text()
    assert imread(out / "time_to_quality.png").shape[:2] == (700, 450)  # one category: 4.5 x 7 inches, 100 dpi
    assert "wrote" in capsys.readouterr().out
