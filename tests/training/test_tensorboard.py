"""What a run writes to TensorBoard: monitoring scalars, the final preview, evaluate.py's metrics; and the plain
progress lines of a training whose output is not a terminal."""
import contextlib
import csv
import glob
import io
import os
import types
from collections import defaultdict

import pytest

from tests.helpers.config import tiny_config
from tests.helpers.images import make_category

STEPS = 8


def read_events(folder):
    """{tag: {step: value}} over every event file of folder (scalars as floats, images as their PNG bytes)."""
    import tensorflow as tf
    events = defaultdict(dict)
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                plugin = value.metadata.plugin_data.plugin_name
                events[value.tag][event.step] = float(array) if plugin == "scalars" else array
    return events


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run monitored every 4 steps, shorter than --preview_every; its progress output (not a terminal)."""
    from training.loop import train
    base = tmp_path_factory.mktemp("tensorboard")
    make_category(str(base / "data"), "bottle", train=6, test={"good": 2, "crack": 2}, sizes=((32, 32),),
                  variants=(("png", "RGB"),))
    config = tiny_config(category="bottle", data_dir=str(base / "data"), run_dir=str(base / "run"), image_size=32,
                         steps=STEPS, d_iter=2, log_every=4, checkpoint_every=100, preview_every=1000,
                         monitor_every=4, threshold_holdout=0)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        run_dir = train(config, log=lambda *a: None)
    return {"dir": run_dir, "config": config, "stderr": stderr.getvalue()}


def test_progress_is_one_plain_line_per_interval_when_not_a_terminal(run):
    assert "\r" not in run["stderr"]
    lines = run["stderr"].splitlines()
    assert [line.split(" | ")[0] for line in lines] == ["step 4/8", "step 8/8"]
    assert all("ETA" in line and "img/s" in line and "critic_loss" in line for line in lines)


def test_monitoring_is_in_tensorboard_with_the_values_of_metrics_csv(run):
    events = read_events(os.path.join(run["dir"], "tensorboard"))
    rows = read_csv(os.path.join(run["dir"], "metrics.csv"))
    score_lambda = float(run["config"].score_lambda)
    tags = {"monitor/test_auroc_ema": score_lambda, "monitor/test_auroc_ema_lambda0": 0.0,
            "monitor/test_auroc_ema_lambda1": 1.0}
    for tag, lam in tags.items():
        expected = {int(r["step"]): float(r["image_auroc"]) for r in rows if float(r["lambda"]) == lam}
        assert sorted(expected) == [4, 8]
        assert sorted(events[tag]) == [4, 8], tag
        for step, value in expected.items():
            assert events[tag][step] == pytest.approx(value, abs=1e-6), (tag, step)
    specificity = {int(r["step"]): float(r["reconstruction_specificity"]) for r in rows
                   if float(r["lambda"]) == score_lambda}
    assert events["monitor/reconstruction_specificity_ema"] == pytest.approx(specificity, abs=1e-6)
    assert not [tag for tag in events if tag.startswith("eval/")]  # nothing evaluated yet
    assert "train/critic_loss" in events  # the training scalars are still there


def test_the_final_preview_is_in_tensorboard_for_a_run_shorter_than_preview_every(run):
    from PIL import Image
    events = read_events(os.path.join(run["dir"], "tensorboard"))
    for name in ("train", "test", "samples"):
        assert sorted(events[f"previews/{name}"]) == [STEPS], name
        width, height, png = events[f"previews/{name}"][STEPS]  # tf.summary.image: width, height, encoded image
        with Image.open(io.BytesIO(png)) as image:
            assert image.size == (int(width), int(height))
        assert os.path.isfile(os.path.join(run["dir"], "previews", f"{name}_{STEPS:07d}.png"))


def test_evaluate_writes_its_metrics_to_the_runs_tensorboard(run):
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    summary = evaluate_run(run["dir"], EvalSettings(), log=lambda *a: None)
    events = read_events(os.path.join(run["dir"], "tensorboard"))
    rows = read_csv(os.path.join(summary.eval_dir, "metrics.csv"))
    row = [r for r in rows if float(r["lambda"]) == float(run["config"].score_lambda)][0]
    assert int(row["step"]) == STEPS
    for name in ("image_auroc", "balanced_accuracy", "pixel_auroc", "aupro"):  # the test set has masks
        assert row[name] != ""
        assert events[f"eval/ema/{name}"] == {STEPS: pytest.approx(float(row[name]), abs=1e-6)}, name
    assert sorted(tag for tag in events if tag.startswith("eval/")) == [
        "eval/ema/aupro", "eval/ema/balanced_accuracy", "eval/ema/image_auroc", "eval/ema/pixel_auroc"]


def test_evaluation_tags_name_what_was_evaluated():
    from evaluation import tensorboard_log
    row = {"lambda": 0.1, "image_auroc": 0.75, "balanced_accuracy": 0.5, "pixel_auroc": None, "aupro": None}
    summary = types.SimpleNamespace(weights="last", checkpoint="best_on_test", image_score="map_topk",
                                    topk_percent=5.0, at_default=lambda: row)
    assert tensorboard_log.scalars(summary) == {"eval/last_best_on_test_map_topk5/image_auroc": 0.75,
                                                "eval/last_best_on_test_map_topk5/balanced_accuracy": 0.5}
    default = types.SimpleNamespace(weights="ema", checkpoint="latest", image_score="paper", topk_percent=None,
                                    at_default=lambda: None)
    assert tensorboard_log.scalars(default) == {}  # no row at the default lambda: nothing to write
    assert tensorboard_log.variant(default) == "ema"
