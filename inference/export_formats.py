"""The export formats besides the SavedModel: ONNX (tf2onnx, model.onnx) and TFLite / LiteRT
(tf.lite.TFLiteConverter, builtin ops only, model.tflite), converted from the `serve` function of
inference/export_model.py. Each converted model is run once on a fixed batch at export time (onnxruntime, the
LiteRT interpreter) and must give the TensorFlow function's outputs to CHECK_RTOL relative, or nothing of it is
written. Also the --format parsing and the check that a format's converter is installed, said before any work.
"""
import contextlib
import importlib
import os
import tempfile

import numpy as np
import tensorflow as tf

from errors import ConfigError
import run_folder

FORMATS = ("saved_model", "onnx", "tflite")
FORMAT_FILES = {"saved_model": "saved_model.pb", "onnx": "model.onnx", "tflite": "model.tflite"}
ONNX_OPSET = 17
EXPORT_REQUIREMENTS = "requirements-export.txt"
# Python modules each format needs beyond requirements.txt: the converter and the runtime that checks its output.
FORMAT_MODULES = {"saved_model": (), "onnx": ("tf2onnx", "onnxruntime"), "tflite": ("ai_edge_litert",)}
CHECK_RTOL = 1e-4  # converted model vs the TensorFlow function, at export time (relative; maps: of the map's max)


class ConversionError(ConfigError):
    """A converted model that does not reproduce the TensorFlow function (nothing of it is written)."""


def parse_formats(formats):
    """"saved_model,onnx" (or a sequence) -> the formats in FORMATS order, without repeats; ConfigError for an
    unknown or empty one."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [str(name).strip().lower() for name in names]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not any(names):
        raise ConfigError(f"--format={','.join(names)}: choose one or more of {', '.join(FORMATS)} (comma-separated)")
    return tuple(name for name in FORMATS if name in names)


def _importable(module):
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require_converters(formats):
    """ConfigError (one line) when a chosen format's converter or runtime is not installed; before any work."""
    for fmt in formats:
        missing = [module for module in FORMAT_MODULES[fmt] if not _importable(module)]
        if missing:
            raise ConfigError(f"--format={fmt} needs {' and '.join(missing)}, not installed: "
                              f"pip install -r {EXPORT_REQUIREMENTS}")


@contextlib.contextmanager
def _native_stderr_quiet():
    """The converters' C++ code logs every pass on file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says: held in
    a temporary file and shown only when the conversion fails."""
    import sys
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read()[-20000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_batch(image_size):
    """The fixed uint8 batch every converted model is checked on: 2 images of a size that needs the resize."""
    rng = np.random.default_rng(0)
    h, w = int(image_size) + 13, int(image_size) + 5
    smooth = np.linspace(0, 255, h * w * 3).reshape(h, w, 3)
    return np.stack([np.clip(smooth + rng.normal(0, 30, smooth.shape), 0, 255) for _ in range(2)]).astype(np.uint8)


def check_converted(fmt, expected, got):
    """Raise ConversionError unless got (converted model) has expected's outputs (the TensorFlow function) to
    CHECK_RTOL; returns the largest relative difference."""
    if sorted(got) != sorted(expected):
        raise ConversionError(f"the {fmt} model's outputs {sorted(got)} are not {sorted(expected)}: not written")
    worst = 0.0
    for name, want in expected.items():
        want = np.asarray(want, np.float64)
        have = np.asarray(got[name], np.float64).reshape(want.shape)
        scale = np.abs(want).max() if name == "anomaly_map" else np.abs(want)
        diff = np.abs(have - want) / np.maximum(scale, 1e-12)
        worst_here = float(np.max(diff)) if diff.size else 0.0
        if not np.all(np.isfinite(have)) or worst_here > CHECK_RTOL:
            raise ConversionError(f"the {fmt} conversion does not reproduce the TensorFlow model ({name}: relative "
                                  f"difference {worst_here:.3g} > {CHECK_RTOL:g}): not written")
        worst = max(worst, worst_here)
    return worst


def convert_onnx(module):
    """module.serve as ONNX bytes (tf2onnx, opset ONNX_OPSET; input "images", outputs named as serve's keys)."""
    import logging

    import tf2onnx
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    spec = [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]
    with _native_stderr_quiet():
        proto, _ = tf2onnx.convert.from_function(module.serve, input_signature=spec, opset=ONNX_OPSET)
    return proto.SerializeToString()


def run_onnx(model_bytes, images):
    import onnxruntime as ort
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"images": images})))


def convert_tflite(saved_model_dir):
    """The SavedModel's serving_default signature as TFLite bytes, builtin ops only. Converted from the reloaded
    signature with from_concrete_functions, which freezes the weights into constants: from_saved_model keeps them
    as resource variables (VAR_HANDLE / READ_VARIABLE) that the interpreter never initialises (NaN outputs), and
    from_concrete_functions on the in-memory Keras 3 model gave NaN outputs as well."""
    loaded = tf.saved_model.load(saved_model_dir)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([loaded.signatures["serving_default"]], loaded)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with _native_stderr_quiet():
        return converter.convert()


def run_tflite(model_bytes, images):
    from ai_edge_litert.interpreter import Interpreter
    with _native_stderr_quiet():
        runner = Interpreter(model_content=model_bytes).get_signature_runner()
        return runner(images=images)


def write_converted(fmt, module, saved_model_dir, path):
    """Convert (ONNX from module.serve, TFLite from the SavedModel in saved_model_dir), check on check_batch
    against module.serve, then write path atomically; the max relative difference."""
    model_bytes = convert_onnx(module) if fmt == "onnx" else convert_tflite(saved_model_dir)
    images = check_batch(module._image_size)
    expected = {name: value.numpy() for name, value in module.serve(tf.constant(images)).items()}
    got = (run_onnx if fmt == "onnx" else run_tflite)(model_bytes, images)
    worst = check_converted(fmt, expected, got)
    with run_folder.atomic_write(path, "wb") as handle:
        handle.write(model_bytes)
    return worst
