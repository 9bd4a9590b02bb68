"""evaluate.py end to end on tiny trained runs (c=1, 12 steps): scores.csv, metrics.csv, per_defect.csv and the
plots of an object and a texture run, the folder-of-runs tables, and the bad-input errors."""
import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.files import find_category
from errors import ConfigError, DatasetError
from evaluation import image_metrics as IM
from models import map_transforms as MT
from evaluation import pixel_metrics as PM
from evaluation.collect import evaluate_folder, method_label, method_labels
from evaluation.evaluate_run import (EvalSettings, NoCheckpoint, evaluate_run, format_summary, load_evaluation,
                                     parse_lambdas)
from evaluation.metric_inputs import MetricUndefined
from models.scoring import DEFAULT_LAMBDAS, combine
from tests.helpers import REPO
from tests.helpers.config import tiny_config
from tests.helpers.images import make_category

TRAIN = dict(steps=12, d_iter=2, log_every=4, checkpoint_every=6, preview_every=0)
PNG = (("png", "RGB"),)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset root with an object category ("bottle" at 32 px, so the paper's rows show up in the tables) and a
    custom texture category ("tinytex", 64 px images in 32 px patches), and a folder of runs: one per category
    (alpha 1e-4 and alpha 0), a run folder without checkpoint and a folder that is no run."""
    from training.loop import train
    base = tmp_path_factory.mktemp("evaluate")
    data = base / "data"
    make_category(str(data), "bottle", train=8, test={"good": 3, "crack": 2, "hole": 2}, sizes=((32, 32),),
                  variants=PNG)
    make_category(str(data), "tinytex", train=6, test={"good": 2, "crack": 2}, sizes=((64, 64),), variants=PNG)
    runs = base / "runs"
    obj = train(tiny_config(category="bottle", data_dir=str(data), run_dir=str(runs / "bottle-a"), image_size=32,
                            alpha=1e-4, **TRAIN), log=lambda *a: None)
    tex = train(tiny_config(category="tinytex", type="texture", data_dir=str(data), run_dir=str(runs / "tinytex-b"),
                            image_size=64, patch_size=32, alpha=0.0, **TRAIN), log=lambda *a: None)
    (runs / "nockpt").mkdir()
    shutil.copy(Path(obj) / "config.json", runs / "nockpt" / "config.json")
    (runs / "notes").mkdir()
    return {"base": base, "data": data, "runs": runs, "obj": obj, "tex": tex}


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def check_png(path, min_side=150):
    assert os.path.isfile(path), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        pixels = np.asarray(image.convert("RGB"))
    assert min(pixels.shape[:2]) >= min_side
    assert pixels.std() > 5  # not a blank canvas


def column(rows, name, kind=float):
    return np.asarray([kind(r[name]) for r in rows])


# ---------------------------------------------------------------------------------------------- one run


def test_object_run(trained):
    run = trained["obj"]
    summary = evaluate_run(run, EvalSettings(), log=lambda *a: None)
    eval_dir = os.path.join(run, "eval")
    assert summary.eval_dir == eval_dir and summary.step == 12 and summary.category == "bottle"

    # scores.csv: one row per test image in the stable test order, with labels and defect types
    rows = read_csv(os.path.join(eval_dir, "scores.csv"))
    items = find_category(str(trained["data"]), "bottle").test_items
    assert [r["path"] for r in rows] == [i.path for i in items]
    assert [r["defect_type"] for r in rows] == ["good"] * 3 + ["crack"] * 2 + ["hole"] * 2
    assert [int(r["label"]) for r in rows] == [0, 0, 0, 1, 1, 1, 1]
    lambdas = sorted(DEFAULT_LAMBDAS)
    assert list(rows[0])[5:] == [f"score_lambda_{lam:g}" for lam in lambdas]
    assert "score_lambda_0.1" in rows[0] and "score_lambda_1" in rows[0]
    labels = column(rows, "label", int)
    defects = column(rows, "defect_type", str)
    r, f = column(rows, "reconstruction_error"), column(rows, "feature_error")
    assert (r > 0).all() and (f > 0).all() and not np.allclose(r, f)
    scores = {lam: column(rows, f"score_lambda_{lam:g}") for lam in lambdas}
    for lam in lambdas:  # objects: exactly eq. 7 of the two columns
        np.testing.assert_allclose(scores[lam], combine(r, f, lam), rtol=1e-6)

    # metrics.csv: one row per lambda, equal to the metrics recomputed from scores.csv
    metrics = read_csv(os.path.join(eval_dir, "metrics.csv"))
    assert [float(m["lambda"]) for m in metrics] == lambdas
    for m in metrics:
        values = scores[float(m["lambda"])]
        assert float(m["image_auroc"]) == IM.image_auroc(labels, values)
        balanced, threshold = IM.max_balanced_accuracy(labels, values)
        assert float(m["balanced_accuracy"]) == balanced and float(m["threshold"]) == threshold
        assert (m["weights"], m["checkpoint"], m["step"], m["feature_layer"]) == ("ema", "latest", "12", "first_conv")
        assert (m["image_score"], m["topk_percent"]) == ("paper", "")
    assert len({m["image_auroc"] for m in metrics}) > 1  # lambda matters (else the columns could be mixed up)

    # pixel metrics: recomputed from the restored model, maps smoothed with sigma 4 * 32 / 256 = 0.5 px
    from data.streams import test_arrays
    from models.scoring import Scorer
    from inference.restore import restore_run
    restored = restore_run(run)
    test = test_arrays(restored.spec, find_category(str(trained["data"]), "bottle"))
    maps = Scorer(restored.model).score_images(test["image"], 32, lambdas=(0.1,))["anomaly_map"]
    maps = MT.smooth_maps(maps.astype(np.float32), 0.5)
    masks = test["mask"] > 0.5
    assert masks[3:].any(axis=(1, 2)).all() and not masks[:3].any()
    for m in metrics:
        assert float(m["pixel_auroc"]) == pytest.approx(PM.pixel_auroc(masks, maps), abs=1e-9)
        assert float(m["aupro"]) == pytest.approx(PM.aupro(masks, maps), abs=1e-9)
    unsmoothed = PM.pixel_auroc(masks, Scorer(restored.model).score_images(test["image"], 32, lambdas=(0.1,))[
        "anomaly_map"])
    assert unsmoothed != pytest.approx(float(metrics[0]["pixel_auroc"]), abs=1e-9)  # smoothing was applied

    # diagnostics.json: the mean-image baseline and the specificity, recomputed from the images and the model
    from data.images import prepare_image, read_image
    diagnostics = json.loads(Path(eval_dir, "diagnostics.json").read_text())
    files = find_category(str(trained["data"]), "bottle")
    mean = np.mean([prepare_image(read_image(p), 32, "none").astype(np.float64) for p in files.train_paths], 0)
    x = test["image"][:, 0]
    distances = np.abs(x - (mean / 127.5 - 1.0)).reshape(len(x), -1).sum(1)
    assert diagnostics["template_auroc"] == pytest.approx(IM.image_auroc(labels, distances), abs=1e-12)
    good = x[labels == 0]
    reconstructions = restored.model.ema_generator(restored.model.ema_encoder(good)).numpy()
    pairs = np.abs(good[:, None] - reconstructions[None]).reshape(len(good), len(good), -1).sum(-1)
    ratio = np.trace(pairs) / len(good) / (pairs.sum() - np.trace(pairs)) * (len(good) * (len(good) - 1))
    specificity = diagnostics["reconstruction_specificity"]
    assert specificity["images"] == 3 and specificity["ratio"] == pytest.approx(ratio, rel=1e-5)
    assert "mean-image baseline" in format_summary(summary) and "reconstruction specificity" in format_summary(summary)

    # per_defect.csv: each lambda x defect type, AUROC of good vs that type
    per_defect = read_csv(os.path.join(eval_dir, "per_defect.csv"))
    assert len(per_defect) == len(lambdas) * 2
    for row in per_defect:
        lam = float(row["lambda"])
        assert row["defect_type"] in ("crack", "hole") and int(row["n"]) == 2
        expected = IM.per_defect_auroc(labels, defects, scores[lam])[row["defect_type"]]
        assert float(row["auroc"]) == expected

    for name in ("roc.png", "histogram.png", "examples.png"):
        check_png(os.path.join(eval_dir, name))
    default = summary.at_default()
    assert default["lambda"] == 0.1 and default["image_auroc"] == IM.image_auroc(labels, scores[0.1])
    text = format_summary(summary)
    assert "lambda 0.1: image AUROC" in text and eval_dir in text and "pixel AUROC" in text


def test_texture_run_last_weights(trained):
    run = trained["tex"]
    summary = evaluate_run(run, EvalSettings(weights="last", lambdas=(0.0, 0.5, 1.0)), log=lambda *a: None)
    eval_dir = os.path.join(run, "eval_last")  # next to eval/, not over it
    assert summary.eval_dir == eval_dir
    rows = read_csv(os.path.join(eval_dir, "scores.csv"))
    assert [r["defect_type"] for r in rows] == ["good", "good", "crack", "crack"]
    assert list(rows[0])[5:] == ["score_lambda_0", "score_lambda_0.1", "score_lambda_0.5", "score_lambda_1"]
    r, f = column(rows, "reconstruction_error"), column(rows, "feature_error")
    # L_R / L_fD columns are the per-image maxima over patches; the score is the max over patches of eq. 7
    np.testing.assert_allclose(column(rows, "score_lambda_0"), r, rtol=1e-6)
    np.testing.assert_allclose(column(rows, "score_lambda_1"), f, rtol=1e-6)
    for lam in (0.1, 0.5):
        s = column(rows, f"score_lambda_{lam:g}")
        assert (s <= combine(r, f, lam) * (1 + 1e-6)).all()
        assert (s >= np.maximum((1 - lam) * r, lam * f) * (1 - 1e-6)).all()
    metrics = read_csv(os.path.join(eval_dir, "metrics.csv"))
    assert [float(m["lambda"]) for m in metrics] == [0.0, 0.1, 0.5, 1.0]  # the default 0.1 is always added
    assert {m["weights"] for m in metrics} == {"last"}
    labels = column(rows, "label", int)
    for m in metrics:
        assert float(m["image_auroc"]) == IM.image_auroc(labels, column(rows, f"score_lambda_{float(m['lambda']):g}"))
        assert m["pixel_auroc"] != "" and m["aupro"] != ""
    for name in ("roc.png", "histogram.png", "examples.png"):
        check_png(os.path.join(eval_dir, name))
    settings = json.loads(Path(eval_dir, "eval_settings.json").read_text())
    assert settings["weights"] == "last" and settings["smoothing_sigma_px"] == pytest.approx(4 * 64 / 256)


# ---------------------------------------------------------------------------------------------- map image scores


def hand_map_scores(maps, image_score, topk_percent, sigma):
    """Smoothed (the pixel metrics' smoothing) then max / mean of the top ceil(k % of the pixels), by sorting."""
    smoothed = MT.smooth_maps(np.asarray(maps, np.float32), sigma).reshape(len(maps), -1)
    ordered = -np.sort(-smoothed, axis=1)
    if image_score == "map_max":
        return ordered[:, 0]
    k = max(1, int(np.ceil(topk_percent / 100 * smoothed.shape[1] - 1e-9)))
    return ordered[:, :k].mean(axis=1)


@pytest.mark.parametrize("run_key, image_score, topk", [("obj", "map_max", 1.0), ("obj", "map_topk", 5.0),
                                                        ("tex", "map_topk", 1.0)])
def test_map_image_scores(trained, run_key, image_score, topk):
    """Map scores of the model and of the mean-image baseline, recomputed from the restored model and the images
    (textures: the whole stitched image map); their own eval folder; one metrics row without lambda."""
    from data.images import prepare_image, read_image
    from data.streams import test_arrays
    from models.scoring import Scorer
    from inference.restore import restore_run

    run = trained[run_key]
    settings = EvalSettings(image_score=image_score, topk_percent=topk, weights="last" if run_key == "tex" else "ema")
    summary = evaluate_run(run, settings, log=lambda *a: None)
    folder = {"map_max": "eval_map_max", "map_topk": "eval_map_topk5" if topk == 5 else "eval_map_topk"}[image_score]
    if run_key == "tex":
        folder = folder.replace("eval_", "eval_last_")
    assert summary.eval_dir == os.path.join(run, folder)  # the default eval/ is never overwritten

    restored = restore_run(run)
    spec = restored.spec
    files = find_category(str(trained["data"]), "bottle" if run_key == "obj" else "tinytex")
    test = test_arrays(spec, files)
    size = spec.image_size
    sigma = 4.0 * size / 256
    maps = Scorer(restored.model, weights=settings.weights).score_images(test["image"], size, lambdas=(0.1,))[
        "anomaly_map"]
    assert maps.shape == (len(maps), size, size)
    want = hand_map_scores(maps, image_score, topk, sigma)
    rows = read_csv(os.path.join(summary.eval_dir, "scores.csv"))
    column_name = "score_" + folder.split("_", 1 + (run_key == "tex"))[-1]  # score_map_max, score_map_topk5, ...
    assert list(rows[0])[-1] == column_name
    np.testing.assert_allclose(column(rows, column_name), want, rtol=1e-5)
    labels = column(rows, "label", int)

    metrics = read_csv(os.path.join(summary.eval_dir, "metrics.csv"))
    assert len(metrics) == 1 and metrics[0]["lambda"] == ""  # lambda does not enter a map score
    m = metrics[0]
    assert m["image_score"] == image_score
    assert m["topk_percent"] == ("" if image_score == "map_max" else repr(topk))
    assert float(m["image_auroc"]) == IM.image_auroc(labels, column(rows, column_name))
    assert float(m["image_auroc"]) == pytest.approx(IM.image_auroc(labels, want), abs=1e-12)
    balanced, threshold = IM.max_balanced_accuracy(labels, column(rows, column_name))
    assert float(m["balanced_accuracy"]) == balanced and float(m["threshold"]) == threshold
    per_defect = read_csv(os.path.join(summary.eval_dir, "per_defect.csv"))
    assert per_defect and {r["lambda"] for r in per_defect} == {""}
    assert summary.at_default()["image_auroc"] == float(m["image_auroc"])

    # the mean-image baseline with the same aggregation: its map is |x - mean training image| over the whole image
    mean = np.mean([prepare_image(read_image(p), size, "none").astype(np.float64) for p in files.train_paths], 0)
    images = np.stack([prepare_image(read_image(i.path), size, "none") for i in files.test_items])
    distance_maps = np.abs(images / 127.5 - 1.0 - (mean / 127.5 - 1.0)).sum(-1)
    baseline = IM.image_auroc(labels, hand_map_scores(distance_maps, image_score, topk, sigma))
    diagnostics = json.loads(Path(summary.eval_dir, "diagnostics.json").read_text())
    assert diagnostics["template_auroc"] == pytest.approx(baseline, abs=1e-12)
    assert diagnostics["template_image_score"] == ("map_topk5" if topk == 5 else image_score)

    text = format_summary(summary)
    words = "map max" if image_score == "map_max" else f"map top-{topk:g}% mean"
    assert f"image score {words} (smoothed anomaly map" in text and "best lambda" not in text
    assert f"no model; {words}): image AUROC" in text
    reused = load_evaluation(run, settings)
    assert reused is not None and reused.image_score == image_score and reused.at_default() == summary.at_default()
    assert load_evaluation(run, dataclasses.replace(settings, smoothing_sigma=2.0)) is None


def test_map_scores_in_the_tables(trained, tmp_path):
    runs = tmp_path / "runs"
    for name in ("bottle-a", "tinytex-b"):
        shutil.copytree(trained["runs"] / name, runs / name, ignore=shutil.ignore_patterns("eval*", "tensorboard"))
    result = evaluate_folder(str(runs), EvalSettings(image_score="map_max", lambdas=(0.1,)), log=lambda *a: None)
    assert result.methods == ["CBiGAN alpha=0.0001, map max", "EGBAD (alpha=0), map max"]
    table = {(row["metric"], row["method"]): row for row in read_csv(runs / "results.csv")}
    obj = read_csv(runs / "bottle-a" / "eval_map_max" / "metrics.csv")[0]
    assert float(table[("auroc", "CBiGAN alpha=0.0001, map max")]["bottle"]) == float(obj["image_auroc"])
    baseline = json.loads((runs / "bottle-a" / "eval_map_max" / "diagnostics.json").read_text())["template_auroc"]
    assert float(table[("auroc", "mean-image baseline, map max")]["bottle"]) == baseline
    assert float(table[("auroc", "CBiGAN (paper)")]["bottle"]) == 0.87  # the paper's rows, unlabelled: eq. 7
    markdown = (runs / "results.md").read_text()
    assert "| image score |" in markdown and "| map max |" in markdown
    assert "rows naming none use the paper's" in markdown
    assert not (runs / "bottle-a" / "eval").exists()


def test_image_score_flags_one_line_errors(trained):
    # (--topk_percent=0 and other values: test_bad_settings and tests/models/test_image_scores.py, without a process)
    for flag, words in (("--image_score=max", "--image_score must be one of paper, map_max, map_topk"),
                        ("--topk_percent=abc", "--topk_percent must be a number")):
        process = subprocess.run([sys.executable, "evaluate.py", f"--run={trained['obj']}", flag], cwd=REPO,
                                 capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
        assert process.returncode == 2, process.stderr
        lines = [line for line in process.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], process.stderr


# ---------------------------------------------------------------------------------------------- folder of runs


def test_method_labels():
    assert method_label(1e-4) == "CBiGAN alpha=0.0001" and method_label(0.0) == "EGBAD (alpha=0)"
    runs = [("runs/a/", "bottle", 1e-4), ("runs/b", "bottle", 1e-4), ("runs/c", "carpet", 1e-4),
            ("runs/d", "bottle", 0.0)]
    assert method_labels(runs) == ["CBiGAN alpha=0.0001 [a]", "CBiGAN alpha=0.0001 [b]", "CBiGAN alpha=0.0001",
                                   "EGBAD (alpha=0)"]


def test_folder_of_runs(trained):
    runs = trained["runs"]
    messages = []
    result = evaluate_folder(str(runs), EvalSettings(), log=messages.append)
    assert [os.path.basename(s.run_dir) for s in result.evaluated] == ["bottle-a", "tinytex-b"]
    assert result.methods == ["CBiGAN alpha=0.0001", "EGBAD (alpha=0)"]
    assert [os.path.basename(r) for r, _ in result.skipped] == ["nockpt"]
    assert any("skipping" in m and "nockpt" in m for m in messages)

    wide = read_csv(runs / "results.csv")
    table = {(row["metric"], row["method"]): row for row in wide}
    assert list(wide[0]) == ["metric", "method", "protocol", "tinytex", "texture_mean", "bottle", "object_mean",
                             "overall_mean"]
    assert {row["protocol"] for row in wide if "(paper)" not in row["method"]} == {"fair"}
    for metric, col in (("auroc", "image_auroc"), ("balanced_accuracy", "balanced_accuracy"),
                        ("pixel_auroc", "pixel_auroc"), ("aupro", "aupro")):
        obj = [m for m in read_csv(runs / "bottle-a" / "eval" / "metrics.csv") if float(m["lambda"]) == 0.1][0]
        tex = [m for m in read_csv(runs / "tinytex-b" / "eval" / "metrics.csv") if float(m["lambda"]) == 0.1][0]
        ours = table[(metric, "CBiGAN alpha=0.0001")]
        assert float(ours["bottle"]) == float(obj[col]) and ours["tinytex"] == ""
        egbad = table[(metric, "EGBAD (alpha=0)")]
        assert float(egbad["tinytex"]) == float(tex[col]) and egbad["bottle"] == ""
        assert float(egbad["texture_mean"]) == float(tex[col])  # the custom texture keeps its type
    # the model-free baseline: an auroc row with each category's diagnostics.json value, no other metric
    for run, category in (("bottle-a", "bottle"), ("tinytex-b", "tinytex")):
        baseline = json.loads((runs / run / "eval" / "diagnostics.json").read_text())["template_auroc"]
        assert float(table[("auroc", "mean-image baseline")][category]) == baseline
    assert ("balanced_accuracy", "mean-image baseline") not in table
    # the paper's rows for the metrics it reports, for its categories only (bottle 0.84 / 0.87 in Tables II / III)
    assert float(table[("balanced_accuracy", "CBiGAN (paper)")]["bottle"]) == 0.84
    assert float(table[("auroc", "CBiGAN (paper)")]["bottle"]) == 0.87
    assert ("auroc", "EGBAD (paper)") in table and table[("auroc", "EGBAD (paper)")]["tinytex"] == ""
    assert ("pixel_auroc", "CBiGAN (paper)") not in table
    markdown = (runs / "results.md").read_text()
    for text in ("CBiGAN alpha=0.0001", "EGBAD (alpha=0)", "CBiGAN (paper)", "EGBAD (paper)", "## Runs",
                 "tinytex-b", "reconstruction specificity"):
        assert text in markdown
    # training curves of both runs, read from their train logs
    assert result.curves_png == str(runs / "training_curves.png") and os.path.getsize(result.curves_png) > 10_000
    assert any("training curves" in m for m in messages)

    # a second pass reuses both evaluations; other settings do not match them
    again = evaluate_folder(str(runs), EvalSettings(), log=lambda *a: None)
    assert all(s.reused for s in again.evaluated)
    assert load_evaluation(trained["obj"], EvalSettings(lambdas=(0.3,))) is None
    assert load_evaluation(trained["obj"], EvalSettings(smoothing_sigma=2.0)) is None


# ---------------------------------------------------------------------------------------------- bad input


def test_run_without_checkpoint(trained):
    folder = str(trained["runs"] / "nockpt")
    with pytest.raises(NoCheckpoint, match="nockpt has no checkpoint"):
        evaluate_run(folder, log=lambda *a: None)
    process = subprocess.run([sys.executable, "evaluate.py", f"--run={folder}"], cwd=REPO, capture_output=True,
                             text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert process.returncode == 2
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nockpt" in errors[0] and "checkpoint" in errors[0]
    assert "Traceback" not in process.stderr


def test_moved_dataset(trained, tmp_path):
    run = tmp_path / "moved-run"
    shutil.copytree(trained["obj"], run, ignore=shutil.ignore_patterns("eval*", "tensorboard", "previews"))
    payload = json.loads((run / "config.json").read_text())
    payload["config"]["data_dir"] = str(tmp_path / "gone")
    payload["dataset"]["root"] = str(tmp_path / "gone" / "bottle")
    (run / "config.json").write_text(json.dumps(payload))
    with pytest.raises(DatasetError) as info:
        evaluate_run(str(run), log=lambda *a: None)
    message = str(info.value)
    assert "--data_dir" in message and "gone" in message and "\n" not in message
    summary = evaluate_run(str(run), EvalSettings(data_dir=str(trained["data"]), lambdas=(0.1,)),
                           log=lambda *a: None)
    assert summary.n_images == 7 and len(read_csv(run / "eval" / "scores.csv")) == 7
    with pytest.raises(DatasetError, match="--data_dir"):
        evaluate_run(str(run), EvalSettings(data_dir=str(tmp_path / "nowhere")), log=lambda *a: None)


def test_category_without_anomalous_images(trained, tmp_path):
    data = tmp_path / "data"
    make_category(str(data), "bottle", train=2, test={"good": 3}, masks=False, sizes=((32, 32),), variants=PNG)
    output = tmp_path / "eval"
    output.mkdir()
    (output / "metrics.csv").write_text("stale\n")
    with pytest.raises(MetricUndefined) as info:
        evaluate_run(trained["obj"], EvalSettings(data_dir=str(data), output=str(output), lambdas=(0.1,)),
                     log=lambda *a: None)
    message = str(info.value)
    assert "no anomalous images" in message and "scores.csv" in message and "\n" not in message
    rows = read_csv(output / "scores.csv")
    assert [r["label"] for r in rows] == ["0", "0", "0"] and {r["defect_type"] for r in rows} == {"good"}
    assert not (output / "metrics.csv").exists()  # no stale metrics next to the new scores


def test_bad_settings():
    assert parse_lambdas("") == DEFAULT_LAMBDAS
    assert parse_lambdas("0.5, 0.1") == (0.5, 0.1)
    for text in ("0.5,abc", "1.5", ","):
        with pytest.raises(ConfigError, match="--lambdas"):
            parse_lambdas(text)
    with pytest.raises(ConfigError, match="--weights"):
        EvalSettings(weights="best").validate()
    with pytest.raises(ConfigError, match="--feature_layer"):
        EvalSettings(feature_layer="last_conv").validate()
    with pytest.raises(ConfigError, match="--image_score"):
        EvalSettings(image_score="sum").validate()
    with pytest.raises(ConfigError, match="--topk_percent"):
        EvalSettings(image_score="map_topk", topk_percent=150).validate()
