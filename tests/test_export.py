"""export.py / inference/export_model.py: the SavedModel, loaded in a fresh process without this repository on
sys.path, gives predict.py's scores and the Scorer's anomaly maps (object run, and a 64/32 texture run)."""
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.fixtures_images import pattern, save_image
from tests.test_predict import read_csv, reference_scores, trained_run

# Runs in a fresh interpreter with cwd = a temp folder and no PYTHONPATH: only TensorFlow and numpy.
LOADER = r"""
import importlib.util, os, sys
repo = sys.argv[3]
assert all(os.path.abspath(p or ".") != repo for p in sys.path), sys.path
for name in ("inference", "training", "evaluation", "models", "data.patches"):
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    assert not found, name + " is importable"
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
groups = np.load(sys.argv[2])
result = {}
for key in sorted(groups.files):
    out = model.serve(tf.constant(groups[key]))
    signature = model.signatures["serving_default"](images=tf.constant(groups[key]))
    np.testing.assert_allclose(signature["score"].numpy(), out["score"].numpy(), rtol=1e-6)
    for name, value in out.items():
        result[key + "/" + name] = value.numpy()
result["meta/image_size"] = model.image_size.numpy()
np.savez(sys.argv[2].replace(".npz", "_out.npz"), **result)
print("loaded-ok", sorted(out))
"""


def run_loader(export_dir, groups, tmp_path):
    """Feed uint8 batches {key: [N, H, W, 3]} to the export in a fresh process; {key/output: array}."""
    work = tmp_path / "fresh"
    work.mkdir()
    inputs = str(work / "inputs.npz")
    np.savez(inputs, **groups)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", LOADER, str(export_dir), inputs, str(REPO)], cwd=str(work),
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loaded-ok" in proc.stdout
    with np.load(inputs.replace(".npz", "_out.npz")) as data:
        return {k: data[k] for k in data.files}


def make_inputs(root, sizes):
    """Two images of each (h, w) in sizes, RGB and 16-bit gray; returns ({key: uint8 batch}, {key: paths})."""
    from data.images import read_image

    groups, paths = {}, {}
    for g, (h, w) in enumerate(sizes):
        files = []
        for i, mode in enumerate(("RGB", "I;16")):
            path = os.path.join(root, f"g{g}", f"{i}.png")
            save_image(path, pattern(h, w, seed=200 + 10 * g + i), mode)
            files.append(path)
        key = f"g{g}"
        groups[key] = np.stack([read_image(p) for p in files])
        paths[key] = files
    return groups, paths


def graph_op_types(export_dir):
    """Every op type in the SavedModel's graph, including the bodies of its functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((export_dir / "saved_model.pb").read_bytes())
    types = set()
    for meta in saved.meta_graphs:
        types.update(node.op for node in meta.graph_def.node)
        for function in meta.graph_def.library.function:
            types.update(node.op for node in function.node_def)
    return types


def check_export_matches_predict(run_dir, tmp_path, sizes):
    from inference.export_model import export_run
    from inference.predict_images import predict

    export_dir = tmp_path / "export"
    info = export_run(run_dir, str(export_dir), log=lambda *a: None)
    assert os.path.isfile(export_dir / "saved_model.pb")
    readme = (export_dir / "README.txt").read_text()
    assert "serve(images)" in readme and "uint8" in readme and "anomaly_map" in readme
    assert json.loads((export_dir / "export_info.json").read_text())["image_size"] == info["image_size"]
    # the resize is a plain ResizeBilinear (no antialiasing): no ScaleAndTranslate, which TFLite cannot convert
    ops = graph_op_types(export_dir)
    assert "ResizeBilinear" in ops and "ScaleAndTranslate" not in ops

    groups, paths = make_inputs(str(tmp_path / "inputs"), sizes)
    outputs = run_loader(export_dir, groups, tmp_path)
    summary = predict(run_dir, [str(tmp_path / "inputs")], output_dir=str(tmp_path / "pred"),
                      log=lambda *a: None, stderr=io.StringIO())
    rows = {r["path"]: r for r in read_csv(summary.predictions_csv)}
    s = info["image_size"]
    assert int(outputs["meta/image_size"]) == s
    for key, files in paths.items():
        for column in ("score", "reconstruction_error", "feature_error"):
            np.testing.assert_allclose(outputs[f"{key}/{column}"], [float(rows[p][column]) for p in files],
                                       rtol=1e-4, err_msg=f"{key} {column}")
        assert float(outputs[f"{key}/threshold"]) == pytest.approx(summary.threshold.value, rel=1e-6)
        _, reference = reference_scores(run_dir, files)
        maps = outputs[f"{key}/anomaly_map"]
        assert maps.shape == (len(files), s, s)
        np.testing.assert_allclose(maps, reference["anomaly_map"], rtol=1e-4,
                                   atol=1e-4 * float(reference["anomaly_map"].max()))
    return info


def test_export_object_run_in_fresh_process(tmp_path_factory, tmp_path):
    run_dir, _ = trained_run(tmp_path_factory, "object")
    info = check_export_matches_predict(run_dir, tmp_path, sizes=((32, 32), (50, 70)))
    assert info["type"] == "object" and info["patches_per_image"] == 1


@pytest.mark.slow  # trains a second tiny run (texture 64/32): about a minute on 2 busy cores
def test_export_texture_run_in_fresh_process(tmp_path_factory, tmp_path):
    run_dir, _ = trained_run(tmp_path_factory, "texture")
    info = check_export_matches_predict(run_dir, tmp_path, sizes=((64, 64), (70, 90)))
    assert info["type"] == "texture" and info["patches_per_image"] == 4


def test_export_without_holdout_has_no_threshold_and_refuses_non_empty_output(tmp_path_factory, tmp_path):
    import tensorflow as tf

    from errors import ConfigError
    from inference.export_model import export_run

    run_dir, _ = trained_run(tmp_path_factory, "object")
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    os.remove(os.path.join(copy, "holdout_scores.csv"))
    messages = []
    info = export_run(copy, str(tmp_path / "export"), log=messages.append)
    assert info["threshold"] is None and any("without a threshold" in m for m in messages)
    model = tf.saved_model.load(str(tmp_path / "export"))
    out = model.serve(tf.zeros([1, 40, 30, 3], tf.uint8))
    assert "threshold" not in out and out["score"].shape == (1,)
    assert "Threshold: none" in (tmp_path / "export" / "README.txt").read_text()

    with pytest.raises(ConfigError, match="--overwrite"):
        export_run(copy, str(tmp_path / "export"), log=lambda *a: None)


def test_standardize_intensity_graph_equals_numpy():
    import tensorflow as tf

    from data.images import standardize_intensity
    from inference.export_model import standardize_intensity_graph
    rng = np.random.default_rng(3)
    batch = np.stack([np.clip(rng.normal(m, s, (24, 24, 3)), 0, 255).round().astype(np.uint8)
                      for m, s in ((40, 5), (128, 60), (220, 20))] + [np.full((24, 24, 3), 90, np.uint8)])
    graph = standardize_intensity_graph(tf.constant(batch, tf.float32)).numpy()
    expected = np.stack([standardize_intensity(image) for image in batch])
    # float32 statistics in the graph vs float64 in numpy; neither is rounded
    np.testing.assert_allclose(graph, expected, atol=1e-3)
    assert np.mean(graph != np.rint(graph)) > 0.5


@pytest.mark.parametrize("image_score, topk", [("map_max", 1.0), ("map_topk", 5.0)])
def test_export_map_image_score_matches_evaluate(tmp_path_factory, tmp_path, image_score, topk):
    """An export with a map image score, run in a fresh process on the run's test images, gives evaluate.py's
    scores of the same aggregation (smoothing in the graph) and predict.py's threshold for it."""
    from data.images import read_image
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    from inference.export_model import export_run
    from inference.predict_images import Predictor

    run_dir, data_dir = trained_run(tmp_path_factory, "object")
    export_dir = tmp_path / "export"
    info = export_run(run_dir, str(export_dir), image_score=image_score, topk_percent=topk, log=lambda *a: None)
    name = "map_max" if image_score == "map_max" else "map_topk5"
    assert (info["image_score"], info["image_score_name"]) == (image_score, name)
    assert info["smoothing_sigma_px"] == 4.0 * 32 / 256
    readme = (export_dir / "README.txt").read_text()
    assert ("map max of anomaly_map" if image_score == "map_max" else "map top-5% mean of anomaly_map") in readme
    assert "sigma 0.5 px" in readme and "eq. 7 at lambda" not in readme

    summary = evaluate_run(run_dir, EvalSettings(image_score=image_score, topk_percent=topk, lambdas=(0.1,),
                                                 output=str(tmp_path / "eval")), log=lambda *a: None)
    expected = {r["path"]: float(r[f"score_{name}"]) for r in read_csv(os.path.join(summary.eval_dir, "scores.csv"))}
    by_size = {}
    for path in expected:
        by_size.setdefault(read_image(path).shape, []).append(path)
    groups = {f"s{i}": np.stack([read_image(p) for p in paths]) for i, paths in enumerate(by_size.values())}
    outputs = run_loader(export_dir, groups, tmp_path)
    for i, paths in enumerate(by_size.values()):
        np.testing.assert_allclose(outputs[f"s{i}/score"], [expected[p] for p in paths], rtol=1e-4)
    threshold = Predictor(run_dir, image_score=image_score, topk_percent=topk).threshold()
    assert threshold.rescored and float(outputs["s0/threshold"]) == pytest.approx(threshold.value, rel=1e-6)
