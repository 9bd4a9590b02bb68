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
ONNX and TFLite by inference/export_formats.py (each checked against the TensorFlow function before it is
written); the folder's README.txt comes from inference/export_readme.py.
"""
import json
import os
import tempfile

import tensorflow as tf

from data.images import TARGET_MEAN, TARGET_STD
from data.patches import stitch_patches, to_patches
from errors import ConfigError
from models import image_scores as IS
from inference.export_formats import FORMAT_FILES, ONNX_OPSET, parse_formats, require_converters, write_converted
from inference.export_readme import readme_text
from inference.predict_images import Predictor
from inference.threshold import DEFAULT_QUANTILE
from models.scoring import score_graph
import run_folder

README_FILE = "README.txt"
INFO_FILE = "export_info.json"


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
    run_folder.write_text(os.path.join(output_dir, README_FILE), readme_text(info))
    score_text = (f"image score {IS.describe(predictor.image_score, predictor.topk_percent)}"
                  if IS.is_map_score(predictor.image_score) else f"lambda {predictor.score_lambda:g}")
    log(f"exported {run_dir} (step {restored.step}, {weights} weights, {score_text}, "
        f"{'no threshold' if chosen is None else chosen.describe()}) to {output_dir} as {', '.join(formats)}")
    return info
