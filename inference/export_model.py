"""Export a trained run as a self-contained TensorFlow SavedModel: the library behind export.py.

The SavedModel holds the encoder, generator and critic weights of the run and one tf.function,
`serve(images)`, that does the whole test-time pipeline of predict.py in TensorFlow ops:
  resize to image_size (tf.image.resize bilinear, antialias=False, float32, not rounded: data/images.resize_image;
  one ResizeBilinear op, no ScaleAndTranslate, which TFLite cannot convert), the run's intensity mode
  (data/images.prepare_image),
  x / 127.5 - 1, the non-overlapping patch grid (data/patches.to_patches; one patch for objects), E, G,
  the critic features (config.feature_layer), eq. 7-9 per patch, max over patches, stitched per-pixel L1 maps.
  With a map image score (image_score map_max / map_topk, models/image_scores.py) `score` is the max / top-k %
  mean of the stitched map after evaluate.py's Gaussian smoothing (written as a matrix product, exact).
Loading needs only TensorFlow (tf.saved_model.load); none of this repository's code.

Formats (export_run(formats=...), export.py --format): the SavedModel, and the same `serve` function converted to
ONNX (tf2onnx, model.onnx) and to TFLite / LiteRT (tf.lite.TFLiteConverter, builtin ops only, model.tflite). Each
converted model is run once on a fixed batch at export time (onnxruntime, the LiteRT interpreter) and must give the
TensorFlow function's outputs to 1e-4 relative, or nothing of it is written.
"""
import contextlib
import importlib
import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from data.images import TARGET_MEAN, TARGET_STD
from data.patches import stitch_patches, to_patches
from errors import ConfigError
from models import image_scores as IS
from inference.predict_images import Predictor
from inference.threshold import DEFAULT_QUANTILE
from models.scoring import score_graph
import run_folder

README_FILE = "README.txt"
INFO_FILE = "export_info.json"

# ------------------------------------------------------------------------------ formats: SavedModel, ONNX, TFLite

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


def standardize_intensity_graph(images):
    """data/images.standardize_intensity of a batch (N, H, W, C) of float32 values in [0, 255], as graph ops
    (clipped to [0, 255], not rounded)."""
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    std = tf.math.reduce_std(images, axis=[1, 2, 3], keepdims=True)
    scale = tf.where(std > 1e-3, TARGET_STD / tf.maximum(std, 1e-3), 0.0)
    return tf.clip_by_value((images - mean) * scale + TARGET_MEAN, 0.0, 255.0)


class AnomalyModel(tf.Module):
    """E, G and the critic of a run with the `serve` function (see the module docstring)."""

    def __init__(self, encoder, generator, critic, image_size, patch_size, score_lambda, feature_layer,
                 threshold=None, intensity="none", image_score=IS.DEFAULT_IMAGE_SCORE,
                 topk_percent=IS.DEFAULT_TOPK_PERCENT, sigma_px=0.0):
        super().__init__(name="cbigan_anomaly_model")
        self._image_score, self._topk_percent, self._sigma_px = image_score, float(topk_percent), float(sigma_px)
        self.encoder, self.generator, self.critic = encoder, generator, critic
        self._image_size, self._patch_size = int(image_size), int(patch_size)
        self._score_lambda = float(score_lambda)
        self._feature_layer = feature_layer
        self._intensity = intensity
        self._threshold = None if threshold is None else float(threshold)
        # Metadata readable from the loaded object (loaded.image_size.numpy() ...).
        self.image_size = tf.Variable(self._image_size, trainable=False, name="image_size")
        self.patch_size = tf.Variable(self._patch_size, trainable=False, name="patch_size")
        self.score_lambda = tf.Variable(self._score_lambda, trainable=False, name="score_lambda")
        if self._threshold is not None:
            self.threshold = tf.Variable(self._threshold, trainable=False, name="threshold")
        self.image_score = tf.Variable(IS.name(image_score, topk_percent), trainable=False, name="image_score")
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])

    def _serve(self, images):
        s, p, lam = self._image_size, self._patch_size, self._score_lambda
        n_patches = (s // p) ** 2
        x = tf.image.resize(tf.cast(images, tf.float32), (s, s), method="bilinear", antialias=False)  # resize_image
        if self._intensity == "per_image":
            x = standardize_intensity_graph(x)
        x = x / 127.5 - 1.0                                                             # [-1, 1]
        batch = tf.shape(x)[0]
        inputs = tf.reshape(to_patches(x, p), [-1, p, p, 3])                          # (N * P, p, p, 3)
        scored = score_graph(self.encoder, self.generator, self.critic, inputs, self._feature_layer)
        per_patch_r = tf.reshape(scored["reconstruction_error"], [batch, n_patches])
        per_patch_f = tf.reshape(scored["feature_error"], [batch, n_patches])
        error_map = tf.reshape(scored["error_map"], [batch, n_patches, p, p, 1])
        out = {
            "score": tf.reduce_max((1.0 - lam) * per_patch_r + lam * per_patch_f, axis=1),   # eq. 7
            "reconstruction_error": tf.reduce_max(per_patch_r, axis=1),
            "feature_error": tf.reduce_max(per_patch_f, axis=1),
            "anomaly_map": stitch_patches(error_map, s)[..., 0],
        }
        if IS.is_map_score(self._image_score):  # the smoothed map's max / top-k mean instead of eq. 7
            out["score"] = IS.map_scores_graph(out["anomaly_map"], self._image_score, self._topk_percent,
                                               self._sigma_px, s)
        if self._threshold is not None:
            out["threshold"] = tf.constant(self._threshold, tf.float32)
            out["normalized_score"] = out["score"] / out["threshold"]  # above 1 = anomalous (predictions.csv)
        return out


def _load_sections(info):
    """README.txt's "how to run it" part: one paragraph per exported format."""
    folder = os.path.basename(os.path.normpath(info["output_dir"]))
    formats = info.get("formats", ["saved_model"])
    sections = [f"Formats in this folder: {', '.join(formats)}. Every format takes the same input and gives the same "
                "outputs (below); no code of the training repository is needed."]
    if "saved_model" in formats:
        sections.append(f"""SavedModel (saved_model.pb, variables/), with TensorFlow:

    import tensorflow as tf
    model = tf.saved_model.load("{folder}")
    out = model.serve(images)        # or model.signatures["serving_default"](images=images)""")
    if "onnx" in formats:
        sections.append(f"""ONNX ({FORMAT_FILES['onnx']}, opset {info['onnx_opset']}), with onnxruntime (no TensorFlow):

    import onnxruntime as ort
    session = ort.InferenceSession("{folder}/{FORMAT_FILES['onnx']}")
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {{"images": images}})))      # images: numpy uint8""")
    if "tflite" in formats:
        sections.append(f"""TFLite / LiteRT ({FORMAT_FILES['tflite']}, builtin ops only), with the LiteRT interpreter
(pip install ai-edge-litert; no TensorFlow):

    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path="{folder}/{FORMAT_FILES['tflite']}").get_signature_runner()
    out = runner(images=images)      # images: numpy uint8; a new H, W or N resizes the inputs by itself
    (here "threshold" has shape [1], not [])""")
    checks = info.get("conversion_check") or {}
    if checks:
        sections.append("Checked at export on a fixed 2-image batch against the TensorFlow function: largest relative "
                        "difference " + ", ".join(f"{fmt} {value:.1e}" for fmt, value in checks.items()) + ".")
    return "\n\n".join(sections) + "\n"


def _readme(info):
    threshold = (info["threshold_source"] if info["threshold"] is not None
                 else "none (the run has no held-out scores and no --threshold was given); the output has no "
                      "\"threshold\" key")
    if IS.is_map_score(info["image_score"]):
        score = (f"{IS.describe(info['image_score'], info['topk_percent'])} of anomaly_map smoothed by a Gaussian of "
                 f"sigma {info['smoothing_sigma_px']:g} px\n                                     (image score "
                 f"{info['image_score_name']}; lambda does not enter it)")
    else:
        score = f"anomaly score of eq. 7 at lambda {info['score_lambda']:g} (textures: max over patches)"
    return f"""CBiGAN anomaly detector exported from {info['run_dir']} (step {info['step']}, {info['weights']} weights)
Category {info['category']} ({info['type']}): images are resized to {info['image_size']}x{info['image_size']}; the model
sees {info['patch_size']}x{info['patch_size']} inputs ({info['patches_per_image']} patch(es) per image).

{_load_sections(info)}
Input  images: uint8 tensor [N, H, W, 3] (RGB; repeat gray images to 3 channels). Any H and W, the same for
       all images of one call (call once per size, or resize/pad yourself). The model resizes to
       {info['image_size']}x{info['image_size']} (bilinear without antialiasing, float, not rounded), scales to [-1, 1] and cuts
       the patch grid itself. Large N uses proportionally more memory: pass batches.
Output dict of tensors:
  score                 float32 [N]  {score};
                                     higher = more anomalous
  reconstruction_error  float32 [N]  L_R of eq. 8 (max over patches)
  feature_error         float32 [N]  L_fD of eq. 9 (max over patches, critic features "{info['feature_layer']}")
  anomaly_map           float32 [N, {info['image_size']}, {info['image_size']}]  per-pixel L1 error |x - G(E(x))| summed over
                                     channels, on the resized image (patches stitched); resize it to H x W to overlay
  threshold             float32 []   decision threshold: anomalous when score > threshold
  normalized_score      float32 [N]  score / threshold: above 1 = anomalous (with a threshold only)
Threshold: {threshold}
SavedModel variables: model.image_size, model.patch_size, model.score_lambda, model.image_score (and model.threshold when
present).
"""


def export_run(run_dir, output_dir, weights=None, score_lambda=None, threshold=None,
               threshold_quantile=DEFAULT_QUANTILE, checkpoint=None, overwrite=False, log=print,
               image_score=IS.DEFAULT_IMAGE_SCORE, topk_percent=IS.DEFAULT_TOPK_PERCENT,
               smoothing_sigma=IS.DEFAULT_SMOOTHING_SIGMA, formats=("saved_model",)):
    """Write run_dir's model into output_dir in each of formats (FORMATS; a list or "saved_model,onnx"), with
    README.txt and export_info.json. Returns the info dict. The threshold is optional here: a run without
    holdout_scores.csv exports without one (a warning)."""
    formats = parse_formats(formats)
    require_converters(formats)
    run_folder.check_folder(output_dir, "--output")  # a file, a read-only folder: said before the work
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise ConfigError(f"--output={output_dir} exists and is not empty: choose another folder or pass "
                          "--overwrite")
    predictor = Predictor(run_dir, weights, score_lambda, checkpoint, image_score, topk_percent, smoothing_sigma)
    weights = predictor.weights  # None: the run's protocol's
    try:
        chosen = predictor.threshold(threshold, threshold_quantile)
    except ConfigError as err:
        log(f"warning: exporting without a threshold: {err}")
        chosen = None
    restored, spec, config = predictor.restored, predictor.spec, predictor.config
    encoder, generator = restored.model.networks(weights)
    module = AnomalyModel(encoder, generator, restored.model.critic, spec.image_size, spec.patch_size,
                          predictor.score_lambda, config.feature_layer, None if chosen is None else chosen.value,
                          intensity=spec.intensity, image_score=predictor.image_score,
                          topk_percent=predictor.topk_percent, sigma_px=predictor.sigma_px)
    concrete = module.serve.get_concrete_function()
    run_folder.make_folder(output_dir, "--output")
    with tempfile.TemporaryDirectory(prefix="saved_model-") as scratch:  # TFLite's source without saved_model
        saved_model_dir = output_dir if "saved_model" in formats else scratch
        if "saved_model" in formats or "tflite" in formats:
            tf.saved_model.save(module, saved_model_dir, signatures={"serving_default": concrete})
        conversion_check = {fmt: write_converted(fmt, module, saved_model_dir,
                                                 os.path.join(output_dir, FORMAT_FILES[fmt]))
                            for fmt in formats if fmt != "saved_model"}
    info = {
        "run_dir": os.path.abspath(run_dir), "output_dir": os.path.abspath(output_dir),
        "checkpoint": restored.checkpoint_path, "step": restored.step, "weights": weights,
        "category": config.category, "type": spec.type, "image_size": spec.image_size,
        "patch_size": spec.patch_size, "patches_per_image": spec.patches_per_image, "intensity": spec.intensity,
        "score_lambda": predictor.score_lambda, "feature_layer": config.feature_layer,
        "threshold": None if chosen is None else chosen.value,
        "threshold_source": None if chosen is None else chosen.describe(),
        "image_score": predictor.image_score, "image_score_name": predictor.image_score_name,
        "topk_percent": IS.effective_topk(predictor.image_score, predictor.topk_percent),
        "smoothing_sigma_px": predictor.sigma_px if IS.is_map_score(predictor.image_score) else None,
        "input": "uint8 [N, H, W, 3]", "outputs": sorted(concrete.structured_outputs),
        "formats": list(formats), "files": {fmt: FORMAT_FILES[fmt] for fmt in formats},
        "onnx_opset": ONNX_OPSET if "onnx" in formats else None, "conversion_check": conversion_check,
    }
    run_folder.write_text(os.path.join(output_dir, INFO_FILE), json.dumps(info, indent=2) + "\n")
    run_folder.write_text(os.path.join(output_dir, README_FILE), _readme(info))
    score_text = (f"image score {IS.describe(predictor.image_score, predictor.topk_percent)}"
                  if IS.is_map_score(predictor.image_score) else f"lambda {predictor.score_lambda:g}")
    log(f"exported {run_dir} (step {restored.step}, {weights} weights, {score_text}, "
        f"{'no threshold' if chosen is None else chosen.describe()}) to {output_dir} as {', '.join(formats)}")
    return info
