"""Export a trained run: python export.py --run runs/x --output DIR [--format=saved_model,onnx,tflite]

--format (comma-separated; default saved_model): a TensorFlow SavedModel in DIR, model.onnx (tf2onnx), model.tflite
(TFLite / LiteRT); ONNX and TFLite need `pip install -r requirements-export.txt`. Every format has the same input
and outputs. The SavedModel's serve(images) takes a uint8 batch [N, H, W, 3] (any H, W; one size per call) and returns
score, reconstruction_error, feature_error, anomaly_map and threshold; it loads with plain
tf.saved_model.load, without this repository. DIR/README.txt describes the signature; see docs/PREDICT.md.
"""
import cli  # sets TF log level before TensorFlow loads; shared flags
from absl import flags

from inference.threshold import DEFAULT_QUANTILE

FLAGS = flags.FLAGS
cli.define_scoring_flags()
flags.DEFINE_string("run", None, "Run folder written by train.py.")
flags.DEFINE_string("output", None, "Folder to write the SavedModel into (new or empty).")
flags.DEFINE_float("score_lambda", None, "lambda of the exported score (eq. 7); default: the run's score_lambda.")
flags.DEFINE_float("threshold", None, "Threshold stored with the model; default: --threshold_quantile of the "
                   "run's held-out good scores (none when the run has no holdout_scores.csv).")
flags.DEFINE_float("threshold_quantile", DEFAULT_QUANTILE, "Quantile of the held-out good training scores used "
                   "as the threshold.")
flags.DEFINE_string("format", "saved_model", "Formats to write, comma-separated: saved_model (DIR itself), onnx "
                    "(DIR/model.onnx) and tflite (DIR/model.tflite); onnx and tflite need "
                    "`pip install -r requirements-export.txt`.")
flags.DEFINE_boolean("overwrite", False, "Allow writing into a non-empty --output folder.")


def main(argv):
    from absl import logging
    logging.set_verbosity(logging.WARNING)  # tf.saved_model.save logs every step at INFO
    from errors import ConfigError
    from models.image_scores import parse_topk_percent, validate
    from inference.export_model import export_run, parse_formats, require_converters
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; use --run=runs/x --output=DIR")
    if not FLAGS.run or not FLAGS.output:
        raise ConfigError("--run and --output are required (python export.py --run runs/x --output DIR)")
    validate(FLAGS.image_score, FLAGS.topk_percent)
    formats = parse_formats(FLAGS.format)
    require_converters(formats)
    export_run(FLAGS.run, FLAGS.output, weights=FLAGS.weights, score_lambda=FLAGS.score_lambda,
               threshold=FLAGS.threshold, threshold_quantile=FLAGS.threshold_quantile,
               checkpoint=FLAGS.checkpoint, overwrite=FLAGS.overwrite, image_score=FLAGS.image_score,
               topk_percent=parse_topk_percent(FLAGS.topk_percent), smoothing_sigma=FLAGS.smoothing_sigma,
               formats=formats)


if __name__ == "__main__":
    cli.run_main(main)
