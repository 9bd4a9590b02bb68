"""Export a trained run as a TensorFlow SavedModel: python export.py --run runs/x --output DIR

The SavedModel's serve(images) takes a uint8 batch [N, H, W, 3] (any H, W; one size per call) and returns
score, reconstruction_error, feature_error, anomaly_map and threshold; it loads with plain
tf.saved_model.load, without this repository. DIR/README.txt describes the signature; see docs/PREDICT.md.
"""
import cli  # noqa: F401  (sets TF log level before TensorFlow loads)
from absl import flags

from inference.threshold import DEFAULT_QUANTILE

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "Run folder written by train.py.")
flags.DEFINE_string("output", None, "Folder to write the SavedModel into (new or empty).")
flags.DEFINE_enum("weights", None, ["ema", "last"], "E and G weights: the EMA copies or the last trained ones "
                  "(default: the run's protocol: ema for fair, last for authors).")
flags.DEFINE_float("score_lambda", None, "lambda of the exported score (eq. 7); default: the run's score_lambda.")
flags.DEFINE_float("threshold", None, "Threshold stored with the model; default: --threshold_quantile of the "
                   "run's held-out good scores (none when the run has no holdout_scores.csv).")
flags.DEFINE_float("threshold_quantile", DEFAULT_QUANTILE, "Quantile of the held-out good training scores used "
                   "as the threshold.")
flags.DEFINE_enum("checkpoint", None, ["latest", "best_on_test"], "Checkpoint to load (default: the run's "
                  "protocol: latest for fair, best_on_test for authors).")
flags.DEFINE_boolean("overwrite", False, "Allow writing into a non-empty --output folder.")
flags.DEFINE_string("image_score", "paper", "Exported score: paper (eq. 7 at --score_lambda; default), map_max or "
                    "map_topk (max / mean of the top --topk_percent % of the smoothed anomaly map), as evaluate.py; "
                    "the threshold is computed with the same score.")
flags.DEFINE_string("topk_percent", "1", "map_topk: percent of the map's pixels averaged (in (0, 100]).")
flags.DEFINE_float("smoothing_sigma", 4.0, "map_max / map_topk: Gaussian sigma of the anomaly map in pixels at "
                   "256 px scale, as evaluate.py's (0: no smoothing).")


def main(argv):
    from absl import logging
    logging.set_verbosity(logging.WARNING)  # tf.saved_model.save logs every step at INFO
    from errors import ConfigError
    from evaluation.image_scores import parse_topk_percent, validate
    from inference.export_model import export_run
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; use --run=runs/x --output=DIR")
    if not FLAGS.run or not FLAGS.output:
        raise ConfigError("--run and --output are required (python export.py --run runs/x --output DIR)")
    validate(FLAGS.image_score, FLAGS.topk_percent)
    export_run(FLAGS.run, FLAGS.output, weights=FLAGS.weights, score_lambda=FLAGS.score_lambda,
               threshold=FLAGS.threshold, threshold_quantile=FLAGS.threshold_quantile,
               checkpoint=FLAGS.checkpoint, overwrite=FLAGS.overwrite, image_score=FLAGS.image_score,
               topk_percent=parse_topk_percent(FLAGS.topk_percent), smoothing_sigma=FLAGS.smoothing_sigma)


if __name__ == "__main__":
    cli.run_main(main)
