"""Score new images with a trained run: python predict.py --run runs/x PATH... [--heatmaps] [--output DIR]

PATH: image files, folders (searched recursively for .png/.jpg/.jpeg/.bmp) or glob patterns (quote them).
Writes <output>/predictions.csv (path, score, normalized_score = score / threshold, verdict, threshold, lambda,
reconstruction_error, feature_error, image_score);
unreadable files are reported, skipped and listed in <output>/skipped.csv. The default threshold is a quantile
of the run's held-out good training scores (holdout_scores.csv); see docs/PREDICT.md.
"""
import cli  # sets TF log level before TensorFlow loads; shared flags
from absl import flags

from inference.threshold import DEFAULT_QUANTILE

FLAGS = flags.FLAGS
cli.define_scoring_flags()
flags.DEFINE_string("run", None, "Run folder written by train.py.")
flags.DEFINE_string("output", None, "Output folder (default <run>/predictions).")
flags.DEFINE_float("score_lambda", None, "lambda of the anomaly score (eq. 7); default: the run's score_lambda.")
flags.DEFINE_float("threshold", None, "Decision threshold on the score (score > threshold: anomalous); "
                   "default: --threshold_quantile of the run's held-out good scores.")
flags.DEFINE_float("threshold_quantile", DEFAULT_QUANTILE, "Quantile of the held-out good training scores used "
                   "as the threshold (higher: fewer false alarms, more missed subtle defects).")
flags.DEFINE_boolean("heatmaps", False, "Also write a PNG per image with the anomaly map over the input.")
flags.DEFINE_float("heatmap_vmax", 0.0, "Per-pixel error shown at full colour in heatmaps (0: each image's own "
                   "maximum; set a value to compare heatmaps across images).")
flags.DEFINE_integer("image_batch_size", 32, "Images read and scored at a time.", lower_bound=1)
cli.define_renamed_integer("batch_size", "image_batch_size", lower_bound=1)


def main(argv):
    from runtime_threads import configure_threads
    configure_threads()  # parallel scoring streams, a core each (docs/PERFORMANCE.md)
    from errors import ConfigError
    from models.image_scores import parse_topk_percent, validate
    from inference.predict_images import predict
    if not FLAGS.run:
        raise ConfigError("--run is required (a run folder written by train.py)")
    validate(FLAGS.image_score, FLAGS.topk_percent)
    if len(argv) < 2:
        raise ConfigError("no images given: python predict.py --run runs/x PATH... (files, folders, globs)")
    from devices import print_devices
    print_devices()
    predict(FLAGS.run, argv[1:], output_dir=FLAGS.output, weights=FLAGS.weights, score_lambda=FLAGS.score_lambda,
            threshold=FLAGS.threshold, threshold_quantile=FLAGS.threshold_quantile, heatmaps=FLAGS.heatmaps,
            heatmap_vmax=FLAGS.heatmap_vmax or None, batch_size=FLAGS.image_batch_size, checkpoint=FLAGS.checkpoint,
            image_score=FLAGS.image_score, topk_percent=parse_topk_percent(FLAGS.topk_percent),
            smoothing_sigma=FLAGS.smoothing_sigma)


if __name__ == "__main__":
    cli.run_main(main)
