"""Evaluate trained runs: python evaluate.py --run runs/<run>   or   python evaluate.py --run runs/

One run folder: scores its category's test set and writes <run>/eval/ (scores.csv, metrics.csv,
per_defect.csv, roc.png, histogram.png, examples.png). A folder of run folders: evaluates each (reusing earlier
evaluations with the same settings unless --force) and writes results.csv / results.md beside them.
See docs/EVALUATION.md.
"""
import cli  # sets TF log level before TensorFlow loads; shared flags
from absl import flags

from models.options import FEATURE_LAYERS

FLAGS = flags.FLAGS
cli.define_scoring_flags()
flags.DEFINE_string("run", None, "A run folder (holds config.json) or a folder of run folders.")
flags.DEFINE_string("data_dir", None, "Dataset root holding the category folder (default: the run's "
                    "config.json; needed when the dataset moved since training; not for runs trained on --normal_dir folders).")
flags.DEFINE_string("lambdas", "", "Comma-separated lambdas of eq. 7 (default 0.1 plus 0.0, 0.1, ..., 1.0); the "
                    "run's score_lambda is always included.")
flags.DEFINE_enum("feature_layer", None, list(FEATURE_LAYERS), "Critic features for eq. 9 (default: the "
                  "run's config, first_conv unless trained otherwise).")
flags.DEFINE_integer("score_batch_size", 64, "Model inputs (objects or texture patches) per forward pass of the "
                     "scoring (does not change results).", lower_bound=1)
cli.define_renamed_integer("batch_size", "score_batch_size", lower_bound=1)
flags.DEFINE_string("output", None, "One run: its eval folder (default <run>/eval, <run>/eval_last for "
                    "--weights=last, ...). A folder of runs: where results.csv / results.md go (default the "
                    "folder itself).")
flags.DEFINE_integer("pixel_size", 0, "Side of maps and masks for the pixel metrics (0: the run's image size).")
flags.DEFINE_boolean("force", False, "Folder of runs: re-evaluate runs already evaluated with the same settings.")


def main(argv):
    import os

    from runtime_threads import configure_threads
    configure_threads()  # parallel scoring streams, a core each (docs/PERFORMANCE.md)
    from errors import ConfigError
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; flags look like --run=runs/bottle-...")
    if not FLAGS.run:
        raise ConfigError("--run is required: a run folder (e.g. --run=runs/bottle-alpha0.0001-...) or a folder "
                          "of run folders (e.g. --run=runs)")
    if not os.path.isdir(FLAGS.run):
        raise ConfigError(f"--run={FLAGS.run} is not a folder")
    from devices import print_devices
    print_devices()
    from evaluation.collect import evaluate_folder, is_folder_of_runs
    from evaluation.evaluate_run import EvalSettings, evaluate_run, format_summary, parse_lambdas
    from models.image_scores import parse_topk_percent
    settings = EvalSettings(weights=FLAGS.weights, checkpoint=FLAGS.checkpoint, data_dir=FLAGS.data_dir,
                            lambdas=parse_lambdas(FLAGS.lambdas), feature_layer=FLAGS.feature_layer,
                            batch_size=FLAGS.score_batch_size, smoothing_sigma=FLAGS.smoothing_sigma,
                            pixel_size=FLAGS.pixel_size, image_score=FLAGS.image_score,
                            topk_percent=parse_topk_percent(FLAGS.topk_percent)).validate()
    from run_folder import check_folder, is_run_folder
    if FLAGS.output:
        check_folder(FLAGS.output, "--output")  # a file, a read-only folder: said before the evaluation
    if is_run_folder(FLAGS.run):
        settings.output = FLAGS.output
        print(format_summary(evaluate_run(FLAGS.run, settings)))
    elif is_folder_of_runs(FLAGS.run):
        evaluate_folder(FLAGS.run, settings, force=FLAGS.force, results_dir=FLAGS.output)
    else:
        raise ConfigError(f"--run={FLAGS.run} is neither a run folder (no config.json) nor a folder of run "
                          "folders (no subfolder has config.json)")


if __name__ == "__main__":
    cli.run_main(main)
