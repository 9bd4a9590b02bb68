"""predict.py and inference/: inputs, preprocessing, scores, threshold, verdicts, skipped files, heatmaps.

The tiny object run (32x32, c=1, 12 steps) is conftest.py's session fixture `object_run`, shared with the
detector, export, operating-point and bench tests.
"""
import csv
import io
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO
from tests.helpers.images import pattern, save_image
from tests.helpers.runs import read_csv, reference_scores


def hand_quantile(values, q):
    values = sorted(values)
    pos = q * (len(values) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (pos - lo) * (values[hi] - values[lo])


def holdout_column(run_dir, column):
    return [float(row[column]) for row in read_csv(os.path.join(run_dir, "holdout_scores.csv"))]


@pytest.fixture(scope="module")
def inputs_tree(tmp_path_factory):
    """a/ (2 images + a corrupt .png + a .txt), b/000.png (same name as in a/), c/gray16.png (16-bit, 50x70)."""
    root = tmp_path_factory.mktemp("inputs")
    save_image(str(root / "a" / "000.png"), pattern(32, 32, seed=101))
    save_image(str(root / "a" / "sub" / "001.jpg"), pattern(45, 60, seed=102))
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "a" / "broken.png").write_bytes(np.random.default_rng(0).integers(0, 256, 600, np.uint8).tobytes())
    save_image(str(root / "b" / "000.png"), pattern(36, 30, seed=103), "RGBA")
    save_image(str(root / "c" / "gray16.png"), pattern(50, 70, seed=104), "I;16")
    return root


def test_expand_inputs_folders_globs_files(tmp_path):
    from inference.predict_images import expand_inputs

    for rel in ("x/1.png", "x/deep/2.JPG", "x/.hidden.png", "x/skip.txt", "y/3.bmp", "y/4.jpeg", "z/odd.dat"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    paths, problems = expand_inputs([tmp_path / "x", str(tmp_path / "y" / "*"), str(tmp_path / "z" / "odd.dat"),
                                     str(tmp_path / "x" / "1.png"), str(tmp_path / "missing.png"),
                                     str(tmp_path / "z" / "*.png")])
    rel = [os.path.relpath(p, tmp_path) for p in paths]
    assert rel == ["x/1.png", "x/deep/2.JPG", "y/3.bmp", "y/4.jpeg", "z/odd.dat"]  # explicit file kept, no dups
    assert [os.path.relpath(item, tmp_path) for item, _ in problems] == ["missing.png", "z/*.png"]


def test_heatmap_names_do_not_collide(tmp_path):
    from inference.predict_images import heatmap_names

    names = heatmap_names(["/d/a/000.png", "/d/b/000.png", "/d/b/000.jpg"], str(tmp_path))
    assert len(set(names.values())) == 3
    assert names["/d/a/000.png"] == os.path.join(str(tmp_path), "a", "000.png.heatmap.png")


def test_predict_folder_glob_corrupt_and_16bit(object_run, inputs_tree, tmp_path, monkeypatch):
    from data.images import read_image
    from inference import predict_images
    from inference.predict_images import predict

    run_dir, _ = object_run
    root = inputs_tree
    err = io.StringIO()
    drawn = []  # what each heatmap figure was drawn from (the real save_heatmap still writes it)

    def recording_save_heatmap(target, image, anomaly_map, score, threshold, verdict, *args, **kwargs):
        drawn.append(dict(image_shape=image.shape, score=score, threshold=threshold, verdict=verdict,
                          name=kwargs.get("name"), score_text=kwargs.get("score_text")))
        return real_save_heatmap(target, image, anomaly_map, score, threshold, verdict, *args, **kwargs)

    real_save_heatmap = predict_images.save_heatmap
    monkeypatch.setattr(predict_images, "save_heatmap", recording_save_heatmap)
    summary = predict(run_dir, [root / "a", str(root / "b" / "*.png"), str(root / "c" / "gray16.png")],
                      output_dir=str(tmp_path / "out"), heatmaps=True, stderr=err, log=lambda *a: None)
    rows = read_csv(tmp_path / "out" / "predictions.csv")
    expected = [str(root / "a" / "000.png"), str(root / "a" / "sub" / "001.jpg"), str(root / "b" / "000.png"),
                str(root / "c" / "gray16.png")]
    assert [r["path"] for r in rows] == expected
    assert list(rows[0]) == ["path", "score", "normalized_score", "verdict", "threshold", "lambda",
                             "reconstruction_error", "feature_error", "image_score"]
    assert {r["image_score"] for r in rows} == {"paper"}
    # the corrupt file: reported on stderr, listed in skipped.csv, not a row
    broken = str(root / "a" / "broken.png")
    assert broken in err.getvalue()
    assert [r["path"] for r in read_csv(tmp_path / "out" / "skipped.csv")] == [broken]
    assert summary.n_scored == 4 and len(summary.skipped) == 1

    # scores = the Scorer's on the same preprocessing, at the run's lambda (0.1)
    want, out = reference_scores(run_dir, expected)
    np.testing.assert_allclose([float(r["score"]) for r in rows], want, rtol=1e-6)
    np.testing.assert_allclose([float(r["reconstruction_error"]) for r in rows], out["reconstruction_error"],
                               rtol=1e-6)
    np.testing.assert_allclose([float(r["feature_error"]) for r in rows], out["feature_error"], rtol=1e-6)
    assert {r["lambda"] for r in rows} == {"0.1"}

    # threshold: the 0.99 quantile of the held-out scores; verdicts follow it
    threshold = hand_quantile(holdout_column(run_dir, "score_lambda_0.1"), 0.99)
    for row in rows:
        assert float(row["threshold"]) == pytest.approx(threshold, rel=1e-7)
        assert row["verdict"] == ("anomalous" if float(row["score"]) > float(row["threshold"]) else "good")
    assert summary.n_anomalous == sum(r["verdict"] == "anomalous" for r in rows)

    # heatmaps: one PNG per scored image, distinct for the two 000.png, each a figure of the input at its own
    # size titled with that image's row of predictions.csv (tests/training/test_figures.py checks the figure's labels)
    assert len(set(summary.heatmaps)) == 4 and len(drawn) == 4
    for path, heatmap, row, figure in zip(expected, summary.heatmaps, rows, drawn):
        assert heatmap.startswith(str(tmp_path / "out" / "heatmaps"))
        assert os.path.basename(heatmap) == os.path.basename(path) + ".heatmap.png"
        with Image.open(heatmap) as img:
            img.load()
            assert img.mode == "RGB"
            assert img.size[0] > 2 * 256  # input and overlay side by side, each at least 256 px wide
        assert figure["image_shape"][:2] == read_image(path).shape[:2]
        assert figure["score"] == pytest.approx(float(row["score"]), rel=1e-7)
        assert figure["threshold"] == pytest.approx(float(row["threshold"]), rel=1e-7)
        assert figure["verdict"] == row["verdict"] and figure["name"] == row["path"]
        assert figure["score_text"] == "lambda 0.1"


def test_overlay_heatmap_shows_the_map():
    from inference.predict_images import overlay_heatmap

    image = np.full((20, 30, 3), 128, np.uint8)
    anomaly_map = np.zeros((8, 8), np.float32)
    anomaly_map[:4, :4] = 1.0  # top-left quarter hot
    out = overlay_heatmap(image, anomaly_map)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    hot, cold = out[:3, :5].astype(int), out[-3:, -5:].astype(int)
    assert np.abs(hot - 128).sum() > np.abs(cold - 128).sum() * 2  # the hot region is tinted much more


def test_threshold_quantile_by_hand(object_run, tmp_path):
    from errors import ConfigError
    from inference.threshold import HOLDOUT_SCORES_FILE, choose_threshold
    from training.loop import HOLDOUT_SCORES_FILE as WRITTEN_BY_TRAINING

    assert HOLDOUT_SCORES_FILE == WRITTEN_BY_TRAINING
    run_dir, _ = object_run
    for column, lam in (("score_lambda_0.1", 0.1), ("score_lambda_0.5", 0.5), ("score_lambda_1", 1.0)):
        values = holdout_column(run_dir, column)
        assert len(values) == 3  # every 3rd of 10 images
        for q in (0.99, 0.5, 0.0, 1.0):
            chosen = choose_threshold(run_dir, lam, quantile=q)
            assert chosen.value == pytest.approx(hand_quantile(values, q), rel=1e-12)
            assert chosen.n_holdout == 3 and chosen.source == "holdout quantile"
    assert choose_threshold(run_dir, 0.1, explicit=12.5).value == 12.5
    with pytest.raises(ConfigError, match="--threshold"):
        choose_threshold(str(tmp_path), 0.1)  # no holdout_scores.csv
    with pytest.raises(ConfigError, match="no column for lambda 0.25"):
        choose_threshold(run_dir, 0.25)  # without a rescoring function


def test_threshold_for_other_lambda_rescoring_holdout(object_run, tmp_path):
    from inference.predict_images import Predictor

    run_dir, _ = object_run
    predictor = Predictor(run_dir, score_lambda=0.25)
    chosen = predictor.threshold()
    # objects have one patch, so eq. 7 recombines from the stored L_R and L_fD (rounded to 6 digits)
    recombined = [0.75 * r + 0.25 * f for r, f in zip(holdout_column(run_dir, "reconstruction_error"),
                                                       holdout_column(run_dir, "feature_error"))]
    assert chosen.value == pytest.approx(hand_quantile(recombined, 0.99), rel=1e-5)


def test_restored_run_reproduces_holdout_scores(object_run):
    """End to end: the scores written at the end of training (in-memory model) equal those of the restored
    checkpoint on the same images (guards against checkpoints that miss weights, e.g. the EMA copies)."""
    run_dir, _ = object_run
    rows = read_csv(os.path.join(run_dir, "holdout_scores.csv"))
    want, out = reference_scores(run_dir, [r["path"] for r in rows])
    # (the CSV keeps 6 significant digits; a checkpoint missing weights gives differences of ~1e-3)
    np.testing.assert_allclose([float(r["score_lambda_0.1"]) for r in rows], want, rtol=1e-5)
    np.testing.assert_allclose([float(r["feature_error"]) for r in rows], out["feature_error"], rtol=1e-5)


def test_stale_holdout_scores_are_rescored_when_possible(object_run, tmp_path, capsys):
    from inference.predict_images import Predictor

    run_dir, _ = object_run
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    csv_path = os.path.join(copy, "holdout_scores.csv")
    stored = hand_quantile(holdout_column(copy, "score_lambda_0.1"), 0.99)
    assert not Predictor(copy).threshold().rescored  # fresh: the stored scores are used
    predictor = Predictor(copy)
    later = os.path.getmtime(csv_path) + 60
    os.utime(predictor.restored.checkpoint_path + ".index", (later, later))  # a checkpoint newer than the CSV
    chosen = predictor.threshold()
    assert chosen.rescored and chosen.value == pytest.approx(stored, rel=1e-5)
    rows = read_csv(csv_path)
    with open(csv_path, "w", newline="") as handle:  # the held-out images are gone: warn, use stored scores
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([dict(r, path=str(tmp_path / "gone" / f"{i}.png")) for i, r in enumerate(rows)])
    later = os.path.getmtime(csv_path) + 60
    os.utime(predictor.restored.checkpoint_path + ".index", (later, later))
    chosen = predictor.threshold()
    assert not chosen.rescored and chosen.value == pytest.approx(stored, rel=1e-12)
    assert "using the stored scores" in capsys.readouterr().err


def test_explicit_threshold_and_run_without_holdout(object_run, inputs_tree, tmp_path):
    from errors import ConfigError
    from inference.predict_images import predict

    run_dir, _ = object_run
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    os.remove(os.path.join(copy, "holdout_scores.csv"))
    images = [str(inputs_tree / "a")]
    with pytest.raises(ConfigError, match="--threshold"):
        predict(copy, images, output_dir=str(tmp_path / "o1"), log=lambda *a: None, stderr=io.StringIO())
    scores = [float(r["score"]) for r in read_csv(
        predict(run_dir, images, output_dir=str(tmp_path / "o0"), log=lambda *a: None,
                stderr=io.StringIO()).predictions_csv)]
    middle = float(np.mean(scores))
    summary = predict(copy, images, output_dir=str(tmp_path / "o2"), threshold=middle, log=lambda *a: None,
                      stderr=io.StringIO())
    rows = read_csv(summary.predictions_csv)
    assert [float(r["threshold"]) for r in rows] == pytest.approx([middle] * len(rows))
    assert [r["verdict"] for r in rows] == ["anomalous" if s > middle else "good" for s in scores]
    assert {r["verdict"] for r in rows} == {"anomalous", "good"}
    assert not os.path.exists(tmp_path / "o2" / "heatmaps")


def test_predict_cli(object_run, inputs_tree, tmp_path):
    run_dir, _ = object_run
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, str(REPO / "predict.py"), f"--run={run_dir}", f"--output={out}",
                           "--score_lambda=0.5", str(inputs_tree / "b"), str(inputs_tree / "a" / "broken.png")],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"device: CPU ({len(os.sched_getaffinity(0))} threads)"  # devices.py
    assert "scored 1 image(s)" in proc.stdout and "1 skipped" in proc.stdout
    assert "broken.png" in proc.stderr
    rows = read_csv(out / "predictions.csv")
    assert [r["lambda"] for r in rows] == ["0.5"]
    want, _ = reference_scores(run_dir, [str(inputs_tree / "b" / "000.png")], score_lambda=0.5)
    assert float(rows[0]["score"]) == pytest.approx(float(want[0]), rel=1e-6)

    bad = subprocess.run([sys.executable, str(REPO / "predict.py"), f"--run={run_dir}"], cwd=str(tmp_path),
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "error: no images given" in bad.stderr
    bad = subprocess.run([sys.executable, str(REPO / "predict.py"), f"--run={run_dir}", "--image_score=map_mean",
                          str(inputs_tree / "b")], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=300)
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1, bad.stderr
    assert lines[0].startswith("error: --image_score must be one of paper, map_max, map_topk")


def test_preprocess_applies_the_runs_intensity_mode():
    from data.categories import category_spec
    from data.images import resize_image, standardize_intensity
    from inference.predict_images import preprocess
    image = pattern(50, 40, seed=9)
    for intensity, expected in (("none", resize_image(image, 64)),
                                ("per_image", standardize_intensity(resize_image(image, 64)))):
        spec = category_spec("widget", type="texture", image_size=64, patch_size=32, intensity=intensity)
        inputs = preprocess(image, spec)
        assert inputs.shape == (4, 32, 32, 3)
        np.testing.assert_allclose(inputs[0], expected[:32, :32] / 127.5 - 1.0, atol=1e-6)
        np.testing.assert_allclose(inputs[3], expected[32:, 32:] / 127.5 - 1.0, atol=1e-6)


def hand_map_scores(maps, image_score, topk_percent, sigma):
    """The smoothed map (scipy's Gaussian, as the pixel metrics), then its max or the mean of its top
    ceil(k % of the pixels), by sorting."""
    from models.map_transforms import smooth_maps
    ordered = -np.sort(-smooth_maps(np.asarray(maps, np.float32), sigma).reshape(len(maps), -1), axis=1)
    k = 1 if image_score == "map_max" else max(1, int(np.ceil(topk_percent / 100 * ordered.shape[1] - 1e-9)))
    return ordered[:, :k].mean(axis=1)


@pytest.mark.parametrize("image_score, topk", [("paper", 1.0), ("map_max", 1.0), ("map_topk", 5.0)])
def test_predict_agrees_with_evaluate_for_each_image_score(object_run, tmp_path, image_score, topk):
    """predict.py on the test images gives evaluate.py's scores of the same aggregation; a map score's threshold
    is the quantile of the held-out images' map scores (rescored: holdout_scores.csv holds eq. 7 only)."""
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    from inference.predict_images import predict

    run_dir, data_dir = object_run
    evaluation = evaluate_run(run_dir, EvalSettings(image_score=image_score, topk_percent=topk, lambdas=(0.1,),
                                                    output=str(tmp_path / "eval")), log=lambda *a: None)
    column = {"paper": "score_lambda_0.1", "map_max": "score_map_max", "map_topk": "score_map_topk5"}[image_score]
    expected = {os.path.realpath(r["path"]): float(r[column])
                for r in read_csv(os.path.join(evaluation.eval_dir, "scores.csv"))}
    summary = predict(run_dir, [os.path.join(data_dir, "widget", "test")], output_dir=str(tmp_path / "pred"),
                      image_score=image_score, topk_percent=topk, log=lambda *a: None, stderr=io.StringIO())
    rows = read_csv(summary.predictions_csv)
    assert sorted(os.path.realpath(r["path"]) for r in rows) == sorted(expected)
    np.testing.assert_allclose([float(r["score"]) for r in rows],
                               [expected[os.path.realpath(r["path"])] for r in rows], rtol=1e-5)
    name = {"paper": "paper", "map_max": "map_max", "map_topk": "map_topk5"}[image_score]
    assert {r["image_score"] for r in rows} == {name}
    assert {r["lambda"] for r in rows} == ({"0.1"} if image_score == "paper" else {""})

    holdout = [r["path"] for r in read_csv(os.path.join(run_dir, "holdout_scores.csv"))]
    if image_score == "paper":
        want = holdout_column(run_dir, "score_lambda_0.1")
        assert not summary.threshold.rescored
    else:
        _, out = reference_scores(run_dir, holdout)
        want = hand_map_scores(out["anomaly_map"], image_score, topk, 4.0 * 32 / 256)
        assert summary.threshold.rescored and "image score map " in summary.line()
    assert summary.threshold.value == pytest.approx(hand_quantile(list(want), 0.99), rel=1e-5)
