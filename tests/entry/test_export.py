"""export.py / inference/export_model.py: the SavedModel, loaded in a fresh process without this repository on
sys.path (one such process loads the module's exports), gives predict.py's scores and the Scorer's anomaly maps
(object run, and a 64/32 texture run); the ONNX and TFLite files, run by onnxruntime / the LiteRT interpreter in a
fresh process, give predict.py's scores on real bottle images."""
import io
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO
from tests.helpers.images import pattern, save_image
from tests.helpers.runs import read_csv, reference_scores

# The child checks that this repository is neither on its path nor importable (`repo`: its folder).
REPO_NOT_IMPORTABLE = r"""assert all(os.path.abspath(p or ".") != repo for p in sys.path), sys.path
for name in ("inference", "training", "evaluation", "models", "data.patches"):
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    assert not found, name + " is importable"
"""

# Runs in a fresh interpreter with cwd = a temp folder and no PYTHONPATH: only TensorFlow and numpy. It imports
# TensorFlow once and then loads each export it is sent on stdin (one JSON line [export_dir, inputs.npz] per
# request, one answer line per request), so the module's exports share one TensorFlow start-up.
LOADER = r"""
import importlib.util, json, os, sys, traceback
repo = sys.argv[1]
""" + REPO_NOT_IMPORTABLE + r"""import numpy as np
import tensorflow as tf


def load_and_run(export_dir, inputs):
    model = tf.saved_model.load(export_dir)
    groups = np.load(inputs)
    result = {}
    for key in sorted(groups.files):
        out = model.serve(tf.constant(groups[key]))
        signature = model.signatures["serving_default"](images=tf.constant(groups[key]))
        np.testing.assert_allclose(signature["score"].numpy(), out["score"].numpy(), rtol=1e-6)
        for name, value in out.items():
            result[key + "/" + name] = value.numpy()
    result["meta/image_size"] = model.image_size.numpy()
    np.savez(inputs.replace(".npz", "_out.npz"), **result)
    return sorted(out)


print("loader-ready", flush=True)
for line in sys.stdin:
    try:
        print("loaded-ok " + json.dumps(load_and_run(*json.loads(line))), flush=True)
    except Exception:
        print("loader-failed " + json.dumps(traceback.format_exc()), flush=True)
"""


class FreshLoader:
    """The LOADER interpreter (cwd: a folder of its own, no PYTHONPATH, so neither this repository nor anything the
    tests imported is in it), started on first use and again if it died; load(export_dir, inputs) returns its
    answer line."""

    def __init__(self, work):
        self.work, self.proc = Path(work), None

    def _start(self):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.stderr = open(self.work / "stderr.txt", "w")
        self.proc = subprocess.Popen([sys.executable, "-c", LOADER, str(REPO)], cwd=str(self.work), env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.lines = queue.Queue()

        def read(stdout, lines):
            for line in stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)
        threading.Thread(target=read, args=(self.proc.stdout, self.lines), daemon=True).start()
        assert self._answer() == "loader-ready"

    def _answer(self, timeout=300):
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.close()
                raise AssertionError(f"the fresh loader gave no answer in {timeout} s")
            if line is None:
                self.proc.wait(timeout=60)
                self.stderr.flush()
                raise AssertionError((self.work / "stderr.txt").read_text()[-3000:])
            if line.startswith(("loader-", "loaded-ok")):
                return line

    def load(self, export_dir, inputs):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps([str(export_dir), str(inputs)]) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.stderr.close()


@pytest.fixture(scope="module")
def fresh_loader(tmp_path_factory):
    loader = FreshLoader(tmp_path_factory.mktemp("fresh_loader"))
    yield loader
    loader.close()


def run_loader(loader, export_dir, groups, tmp_path):
    """Feed uint8 batches {key: [N, H, W, 3]} to the export in the fresh process; {key/output: array}."""
    work = tmp_path / "fresh"
    work.mkdir()
    inputs = str(work / "inputs.npz")
    np.savez(inputs, **groups)
    answer = loader.load(export_dir, inputs)
    assert answer.startswith("loaded-ok"), json.loads(answer.split(" ", 1)[1])[-3000:]
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


def check_export_matches_predict(run_dir, export_dir, info, loader, tmp_path, sizes, formats=("saved_model",)):
    """The SavedModel in export_dir (exported from run_dir: info), in the fresh process, against predict.py and the
    Scorer; each other format in formats, in a fresh process (onnxruntime / LiteRT), against the SavedModel's
    outputs on the same batches."""
    from inference.predict_images import predict

    assert os.path.isfile(export_dir / "saved_model.pb")
    readme = (export_dir / "README.txt").read_text()
    assert "serve(images)" in readme and "uint8" in readme and "anomaly_map" in readme
    assert json.loads((export_dir / "export_info.json").read_text())["image_size"] == info["image_size"]
    # the resize is a plain ResizeBilinear (no antialiasing): no ScaleAndTranslate, which TFLite cannot convert
    ops = graph_op_types(export_dir)
    assert "ResizeBilinear" in ops and "ScaleAndTranslate" not in ops

    groups, paths = make_inputs(str(tmp_path / "inputs"), sizes)
    outputs = run_loader(loader, export_dir, groups, tmp_path)
    for fmt in formats[1:]:
        check_same_outputs(fmt, run_runtime(fmt, export_dir / info["files"][fmt], groups, tmp_path), outputs)
    summary = predict(run_dir, [str(tmp_path / "inputs")], output_dir=str(tmp_path / "pred"),
                      log=lambda *a: None, stderr=io.StringIO())
    rows = {r["path"]: r for r in read_csv(summary.predictions_csv)}
    s = info["image_size"]
    assert int(outputs["meta/image_size"]) == s
    # the Scorer's maps of every image in one call (each image is resized to s x s first), split by group below
    _, reference = reference_scores(run_dir, [p for files in paths.values() for p in files])
    first = 0
    for key, files in paths.items():
        for column in ("score", "reconstruction_error", "feature_error"):
            np.testing.assert_allclose(outputs[f"{key}/{column}"], [float(rows[p][column]) for p in files],
                                       rtol=1e-4, err_msg=f"{key} {column}")
        assert float(outputs[f"{key}/threshold"]) == pytest.approx(summary.threshold.value, rel=1e-6)
        maps, want = outputs[f"{key}/anomaly_map"], reference["anomaly_map"][first:first + len(files)]
        first += len(files)
        assert maps.shape == (len(files), s, s)
        np.testing.assert_allclose(maps, want, rtol=1e-4, atol=1e-4 * float(want.max()))


def test_export_object_run_in_fresh_process(object_export, fresh_loader, tmp_path):
    run_dir, export_dir, info = object_export
    check_export_matches_predict(run_dir, export_dir, info, fresh_loader, tmp_path, sizes=((32, 32), (50, 70)))
    assert info["type"] == "object" and info["patches_per_image"] == 1


@pytest.mark.slow  # trains a second tiny run (texture 64/32): about a minute on 2 busy cores
def test_export_texture_run_in_fresh_process(trained_run, fresh_loader, tmp_path):
    from inference.export_model import export_run

    run_dir, _ = trained_run("texture")
    # the patch grid (reshapes, transposes) through both converters too
    formats = formats_to_test()
    info = export_run(run_dir, str(tmp_path / "export"), log=lambda *a: None, formats=formats)
    check_export_matches_predict(run_dir, tmp_path / "export", info, fresh_loader, tmp_path,
                                 sizes=((64, 64), (70, 90)), formats=formats)
    assert info["type"] == "texture" and info["patches_per_image"] == 4


def test_export_without_holdout_has_no_threshold_and_refuses_non_empty_output(trained_run, tmp_path):
    import tensorflow as tf

    from errors import ConfigError
    from inference.export_model import export_run

    run_dir, _ = trained_run("object")
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
def test_export_map_image_score_matches_evaluate(trained_run, fresh_loader, tmp_path, image_score, topk):
    """An export with a map image score, run in a fresh process on the run's test images, gives evaluate.py's
    scores of the same aggregation (smoothing in the graph) and predict.py's threshold for it."""
    from data.images import read_image
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    from inference.export_model import export_run
    from inference.predict_images import Predictor

    run_dir, data_dir = trained_run("object")
    export_dir = tmp_path / "export"
    # map_topk: the smoothing product and top_k through both converters too
    formats = formats_to_test() if image_score == "map_topk" else ("saved_model",)
    info = export_run(run_dir, str(export_dir), image_score=image_score, topk_percent=topk, log=lambda *a: None,
                      formats=formats)
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
    outputs = run_loader(fresh_loader, export_dir, groups, tmp_path)
    for fmt in formats[1:]:
        check_same_outputs(fmt, run_runtime(fmt, export_dir / info["files"][fmt], groups, tmp_path), outputs)
    for i, paths in enumerate(by_size.values()):
        np.testing.assert_allclose(outputs[f"s{i}/score"], [expected[p] for p in paths], rtol=1e-4)
    threshold = Predictor(run_dir, image_score=image_score, topk_percent=topk).threshold()
    assert threshold.rescored and float(outputs["s0/threshold"]) == pytest.approx(threshold.value, rel=1e-6)


# ------------------------------------------------------------------- ONNX and TFLite (export.py --format=...)

# Runs in a fresh interpreter with cwd = a temp folder and no PYTHONPATH: onnxruntime or the LiteRT interpreter,
# numpy, and neither TensorFlow nor this repository.
RUNTIME = r"""
import importlib.util, os, sys
fmt, model_path, inputs, repo = sys.argv[1:5]
""" + REPO_NOT_IMPORTABLE + r"""import numpy as np
if fmt == "onnx":
    import onnxruntime as ort
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"], session.get_inputs()
    names = [o.name for o in session.get_outputs()]
    run = lambda images: dict(zip(names, session.run(None, {"images": images})))
else:
    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path=model_path).get_signature_runner()
    run = lambda images: runner(images=images)
groups = np.load(inputs)
result = {}
for key in sorted(groups.files):
    for name, value in run(groups[key]).items():
        result[key + "/" + name] = np.asarray(value)
assert "tensorflow" not in sys.modules, "the runtime imported TensorFlow"
np.savez(inputs.replace(".npz", "_out.npz"), **result)
print("ran-ok", fmt)
"""

SHARED_DATA = Path(os.environ.get("CBIGAN_SHARED_DATA") or REPO.parent / "shared" / "data")
BOTTLE_TEST = SHARED_DATA / "mvtec-ad" / "bottle" / "test"


def need_export_packages(fmt):
    """Skip when the converter / runtime of fmt is not installed (pip install -r requirements-export.txt); on CI
    (CI set, .ci/run installs them) fail instead, so the formats are always tested there."""
    from inference.export_formats import EXPORT_REQUIREMENTS, FORMAT_MODULES, _importable

    missing = [module for module in FORMAT_MODULES[fmt] if not _importable(module)]
    if missing:
        message = f"{fmt} needs {', '.join(missing)}: pip install -r {EXPORT_REQUIREMENTS}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def formats_to_test():
    """saved_model, plus onnx and tflite where their packages are installed (always on CI, see
    need_export_packages)."""
    from inference.export_formats import FORMAT_MODULES, _importable

    for fmt in ("onnx", "tflite"):
        if os.environ.get("CI"):
            need_export_packages(fmt)
    return ("saved_model",) + tuple(fmt for fmt in ("onnx", "tflite")
                                    if all(_importable(module) for module in FORMAT_MODULES[fmt]))


def run_runtime(fmt, model_path, groups, tmp_path):
    """Feed uint8 batches {key: [N, H, W, 3]} to an ONNX / TFLite file in a fresh process; {key/output: array}."""
    work = tmp_path / f"fresh_{fmt}"
    work.mkdir()
    inputs = str(work / "inputs.npz")
    np.savez(inputs, **groups)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", RUNTIME, fmt, str(model_path), inputs, str(REPO)],
                          cwd=str(work), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"ran-ok {fmt}" in proc.stdout
    with np.load(inputs.replace(".npz", "_out.npz")) as data:
        return {k: data[k] for k in data.files}


def check_same_outputs(fmt, got, saved):
    """{key/output: array} of an ONNX / TFLite run equal to the SavedModel's (same keys) to 1e-4 relative."""
    assert sorted(got) == sorted(k for k in saved if not k.startswith("meta/")), fmt
    for name, value in got.items():
        want = saved[name]
        np.testing.assert_allclose(value.reshape(want.shape), want, rtol=1e-4,
                                   atol=1e-4 * float(np.abs(want).max()), err_msg=f"{fmt} {name}")


@pytest.fixture(scope="module")
def object_export(tmp_path_factory, trained_run):
    """The tiny object run exported once (the default image score) as saved_model plus each format of
    formats_to_test() (on CI all three, asked for in another order than FORMATS'): (run_dir, export_dir, info).
    The fresh-process check uses its SavedModel, the ONNX / TFLite tests (all_formats) its other files."""
    from inference.export_model import export_run

    run_dir, _ = trained_run("object")
    export_dir = tmp_path_factory.mktemp("object_export") / "export"
    formats = formats_to_test()
    flag = "tflite, onnx,saved_model" if len(formats) == 3 else ",".join(reversed(formats))
    info = export_run(run_dir, str(export_dir), formats=flag, log=lambda *a: None)
    return run_dir, export_dir, info


@pytest.fixture(scope="module")
def all_formats(object_export):
    """object_export with all three formats (skipped without the converters, failed on CI):
    (run_dir, export_dir, info)."""
    for fmt in ("onnx", "tflite"):
        need_export_packages(fmt)
    return object_export


@pytest.fixture(scope="module")
def bottle_predictions(all_formats, tmp_path_factory):
    """Four real bottle test images (2 good, 2 defective), grouped by size, and predict.py's rows for them."""
    from data.images import read_image
    from inference.predict_images import predict

    if not BOTTLE_TEST.is_dir():
        pytest.skip(f"{BOTTLE_TEST} is not on this machine")
    files = [str(p) for kind in ("good", "broken_large", "contamination") for p in sorted(
        (BOTTLE_TEST / kind).glob("*.png"))[:2 if kind == "good" else 1]]
    assert len(files) == 4
    by_size = {}
    for path in files:
        by_size.setdefault(read_image(path).shape, []).append(path)
    groups = {f"s{i}": np.stack([read_image(p) for p in paths]) for i, paths in enumerate(by_size.values())}
    paths = {f"s{i}": paths for i, paths in enumerate(by_size.values())}
    summary = predict(all_formats[0], files, output_dir=str(tmp_path_factory.mktemp("bottle_pred")),
                      log=lambda *a: None, stderr=io.StringIO())
    rows = {r["path"]: r for r in read_csv(summary.predictions_csv)}
    assert len(rows) == 4
    return groups, paths, rows, summary.threshold.value


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_onnx_and_tflite_give_predict_scores_on_bottle_images(all_formats, bottle_predictions, tmp_path, fmt):
    """onnxruntime / the LiteRT interpreter, in a fresh process without TensorFlow or this repository, on real
    bottle images: predict.py's scores to 1e-4 relative, the run's threshold, and every output of the
    SavedModel (loaded from the same export folder) to 1e-4."""
    import tensorflow as tf

    run_dir, export_dir, info = all_formats
    groups, paths, rows, threshold = bottle_predictions
    outputs = run_runtime(fmt, export_dir / info["files"][fmt], groups, tmp_path)
    saved = tf.saved_model.load(str(export_dir))
    worst = 0.0
    for key, files in paths.items():
        for column in ("score", "reconstruction_error", "feature_error"):
            want = np.array([float(rows[p][column]) for p in files])
            got = outputs[f"{key}/{column}"]
            np.testing.assert_allclose(got, want, rtol=1e-4, err_msg=f"{fmt} {key} {column}")
            worst = max(worst, float(np.max(np.abs(got - want) / np.abs(want))))
        assert float(np.ravel(outputs[f"{key}/threshold"])[0]) == pytest.approx(threshold, rel=1e-6)
        reference = {name: value.numpy() for name, value in saved.serve(tf.constant(groups[key])).items()}
        assert sorted(name.split("/")[1] for name in outputs if name.startswith(key + "/")) == sorted(reference)
        for name, want in reference.items():
            got = outputs[f"{key}/{name}"].reshape(want.shape)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()),
                                       err_msg=f"{fmt} {key} {name}")
        assert outputs[f"{key}/anomaly_map"].shape == (len(files), info["image_size"], info["image_size"])
    print(f"{fmt}: largest relative difference to predict.py's scores {worst:.2e}")


def test_all_formats_folder_readme_and_info(all_formats):
    from inference.export_formats import CHECK_RTOL, ONNX_OPSET

    _, export_dir, info = all_formats
    assert info["formats"] == ["saved_model", "onnx", "tflite"]  # FORMATS order, whatever the flag's order
    assert info["files"] == {"saved_model": "saved_model.pb", "onnx": "model.onnx", "tflite": "model.tflite"}
    for name in info["files"].values():
        assert (export_dir / name).stat().st_size > 10_000
    assert info["onnx_opset"] == ONNX_OPSET
    assert set(info["conversion_check"]) == {"onnx", "tflite"}
    assert all(0 <= v <= CHECK_RTOL for v in info["conversion_check"].values())
    assert json.loads((export_dir / "export_info.json").read_text())["files"] == info["files"]
    readme = (export_dir / "README.txt").read_text()
    for text in ("Formats in this folder: saved_model, onnx, tflite", "tf.saved_model.load", "onnxruntime",
                 "model.onnx", f"opset {ONNX_OPSET}", "ai_edge_litert", "model.tflite", "builtin ops only",
                 "uint8", "anomaly_map", "Threshold: threshold", "bilinear without antialiasing"):
        assert text in readme, text
    # TFLite: builtin ops only (no Flex), the weights as constants (no resource variables left uninitialised)
    from ai_edge_litert.interpreter import Interpreter
    ops = {op["op_name"] for op in Interpreter(str(export_dir / "model.tflite"))._get_ops_details()}
    assert {"CONV_2D", "RESIZE_BILINEAR"} <= ops, ops
    assert not {"VAR_HANDLE", "READ_VARIABLE"} & ops and not any(op.startswith("Flex") for op in ops), ops


def test_only_onnx_writes_no_saved_model(trained_run, tmp_path):
    need_export_packages("onnx")
    from inference.export_model import export_run

    run_dir, _ = trained_run("object")
    info = export_run(run_dir, str(tmp_path / "export"), formats="onnx", log=lambda *a: None)
    assert sorted(os.listdir(tmp_path / "export")) == ["README.txt", "export_info.json", "model.onnx"]
    readme = (tmp_path / "export" / "README.txt").read_text()
    assert "Formats in this folder: onnx." in readme and "tf.saved_model.load" not in readme
    assert info["formats"] == ["onnx"]


def test_parse_formats_and_missing_converter_are_one_line_errors(tmp_path, monkeypatch):
    from errors import ConfigError
    from inference import export_formats as EF, export_model as EM

    assert EF.parse_formats("onnx, TFLITE,onnx") == ("onnx", "tflite")
    assert EF.parse_formats(["saved_model"]) == ("saved_model",)
    for bad in ("pt", "onnx,pt", "", ","):
        with pytest.raises(ConfigError, match="choose one or more of saved_model, onnx, tflite"):
            EF.parse_formats(bad)
    # a converter that is not installed: said before anything is read or written (the run does not even exist)
    monkeypatch.setattr(EF, "_importable", lambda module: module != "tf2onnx")
    with pytest.raises(ConfigError) as err:
        EM.export_run(str(tmp_path / "no_run"), str(tmp_path / "out"), formats="saved_model,onnx")
    assert str(err.value) == ("--format=onnx needs tf2onnx, not installed: pip install -r "
                              "requirements-export.txt")
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(EF, "_importable", lambda module: module != "ai_edge_litert")
    with pytest.raises(ConfigError, match=r"^--format=tflite needs ai_edge_litert, not installed: pip install -r "
                                          r"requirements-export.txt$"):
        EM.export_run(str(tmp_path / "no_run"), str(tmp_path / "out"), formats="tflite")
    EF.require_converters(("saved_model",))  # TensorFlow only


def test_export_cli_without_converter_is_one_line(tmp_path):
    """export.py --format=onnx where tf2onnx cannot be imported: exit 2, one line naming the requirements file."""
    shadow = tmp_path / "shadow" / "tf2onnx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('tf2onnx hidden by the test')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "shadow"))
    proc = subprocess.run([sys.executable, str(REPO / "export.py"), f"--run={tmp_path / 'run'}",
                           f"--output={tmp_path / 'out'}", "--format=onnx"], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: --format=onnx needs tf2onnx, not installed: pip install -r requirements-export.txt"]
    assert not (tmp_path / "out").exists()


def test_check_converted_refuses_a_model_that_disagrees():
    from inference.export_formats import ConversionError, check_converted

    want = {"score": np.array([100.0, 200.0], np.float32), "threshold": np.float32(150.0),
            "anomaly_map": np.linspace(0, 5, 2 * 16).reshape(2, 4, 4).astype(np.float32)}
    close = {k: np.asarray(v) * (1 + 1e-6) for k, v in want.items()}
    close["threshold"] = np.array([150.0], np.float32)  # TFLite's [1] for a scalar
    assert check_converted("tflite", want, close) < 2e-6
    for name, bad in (("score", np.array([100.0, 200.1])), ("score", np.array([np.nan, 200.0])),
                      ("anomaly_map", want["anomaly_map"] + 0.01)):
        with pytest.raises(ConversionError, match=f"does not reproduce the TensorFlow model \\({name}"):
            check_converted("onnx", want, dict(want, **{name: bad}))
    with pytest.raises(ConversionError, match="outputs"):
        check_converted("onnx", want, {"score": want["score"]})
