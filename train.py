"""Train CBiGAN on one category: python train.py --category=carpet [--data_dir=data/mvtec-ad] [--steps=N]

Running the same command on an existing run folder (--run_dir) resumes it from its last checkpoint; so does
python train.py --run_dir=runs/x [--steps=N] (the other settings come from runs/x/config.json).
Ctrl-C / SIGTERM writes a checkpoint before exiting. See README.md.
"""
import cli  # noqa: F401  (sets TF log level before TensorFlow loads)
from absl import flags

from config import TrainConfig
from data.images import INTENSITY_MODES

DEFAULTS = TrainConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("category", None, "Category folder name under --data_dir (e.g. bottle, carpet, or your own).")
flags.DEFINE_string("data_dir", DEFAULTS.data_dir, "Dataset root in MVTec AD layout.")
flags.DEFINE_string("run_dir", "", "Run folder; default runs/<category>-alpha<alpha>-<timestamp>. An existing "
                    "run folder is resumed.")
flags.DEFINE_integer("steps", DEFAULTS.steps, "Batches to consume in total (critic and G/E updates alike; "
                     "the authors used 1,200,000).")
flags.DEFINE_integer("batch_size", DEFAULTS.batch_size, "Batch size.")
flags.DEFINE_float("alpha", DEFAULTS.alpha, "Consistency weight of eq. 13; 0 trains the EGBAD baseline.")
flags.DEFINE_float("alpha_start", None, "Consistency weight for the first --alpha_warmup_steps batches, then "
                   "--alpha (e.g. 1: start as an autoencoder). Default: --alpha throughout, as the paper.")
flags.DEFINE_integer("alpha_warmup_steps", DEFAULTS.alpha_warmup_steps, "Batches trained with --alpha_start.")
flags.DEFINE_float("gp_weight", DEFAULTS.gp_weight, "Gradient-penalty weight.")
flags.DEFINE_enum("gp_pairing", DEFAULTS.gp_pairing, ["paper", "authors"],
                  "Gradient-penalty interpolation: paper = (x, E(x)) vs (G(z), z); authors = (x, z) vs (G(z), E(x)).")
flags.DEFINE_integer("d_iter", DEFAULTS.d_iter, "Critic updates per generator/encoder update; 0: critic and "
                     "generator/encoder updated together on every batch (as the authors' --d-iter 0).")
flags.DEFINE_boolean("skip_critic", DEFAULTS.skip_critic, "Train the generator/encoder only (no critic update); "
                     "with --alpha=1 a plain autoencoder of the same networks (a diagnostic, not CBiGAN).")
flags.DEFINE_float("lr", DEFAULTS.lr, "Adam learning rate (of every network unless --critic_lr is given).")
flags.DEFINE_float("critic_lr", None, "Adam learning rate of the critic (default: --lr).")
flags.DEFINE_float("ge_beta1", DEFAULTS.ge_beta1, "Adam beta1 of the generator/encoder (the authors': 0).")
flags.DEFINE_float("ge_beta2", DEFAULTS.ge_beta2, "Adam beta2 of the generator/encoder (the authors': 0.1).")
flags.DEFINE_float("d_beta1", DEFAULTS.d_beta1, "Adam beta1 of the critic (the authors': 0).")
flags.DEFINE_float("d_beta2", DEFAULTS.d_beta2, "Adam beta2 of the critic (the authors': 0.9).")
flags.DEFINE_float("ema_decay", DEFAULTS.ema_decay, "Decay of the EMA copies of E and G used for evaluation.")
flags.DEFINE_boolean("ema_warmup", DEFAULTS.ema_warmup, "EMA decay min(decay, (1+n)/(10+n)) so early "
                     "averages do not carry the random initialisation.")
flags.DEFINE_integer("ema_every", DEFAULTS.ema_every, "0: update the EMA after each generator/encoder update; N: "
                     "after every N-th batch, the first time a copy (the authors' schedule: 10, no warm-up).")
flags.DEFINE_enum("recipe", DEFAULTS.recipe, ["paper", "fast"],
                  "Training recipe. paper: the paper's settings. fast: a CPU-budget recipe (same networks, losses "
                  "and score): d_iter 1, batch 16, G/E Adam lr 1e-3 betas (0.5, 0.999), critic lr 1e-4, alpha 1 for "
                  "the first 1,000 batches then 0.1, EMA decay 0.99 (docs/RESULTS.md). Flags given explicitly "
                  "override the recipe's values; config.json records what it set.")
flags.DEFINE_enum("protocol", DEFAULTS.protocol, ["fair", "authors"],
                  "How results are measured. fair: final checkpoint, EMA weights, no test-set selection. authors: "
                  "as the authors' code produced the paper's tables: EMA every 10 batches without warm-up, test "
                  "AUROC of the EMA weights every 1,000 batches (--monitor_every), the best-on-test checkpoint "
                  "kept and its last-trained weights scored by evaluate.py/predict.py (test-set selection: "
                  "optimistic). Flags given explicitly override the protocol's values.")
flags.DEFINE_integer("channels", DEFAULTS.channels, "Channel multiplier c of the networks.")
flags.DEFINE_integer("latent_size", DEFAULTS.latent_size, "Latent size.")
flags.DEFINE_enum("normalization", DEFAULTS.normalization, ["none", "batch", "layer", "instance"], "Normalization.")
flags.DEFINE_enum("encoder_normalization", None, ["none", "batch", "layer", "instance"], "Normalization of "
                  "the encoder only (default: --normalization); e.g. instance keeps the between-image spread of E(x) "
                  "that the un-normalised encoder loses at initialisation (docs/RESULTS.md).")
flags.DEFINE_enum("activation", DEFAULTS.activation, ["lrelu", "relu"], "Activation.")
flags.DEFINE_enum("upsampling", DEFAULTS.upsampling, ["bilinear", "transpose"], "Generator upsampling.")
flags.DEFINE_boolean("use_bias", DEFAULTS.use_bias, "Bias in the layers the authors' code left without.")
flags.DEFINE_float("score_lambda", DEFAULTS.score_lambda, "lambda of the anomaly score (eq. 7).")
flags.DEFINE_enum("feature_layer", DEFAULTS.feature_layer, ["first_conv", "joint"], "Critic features for eq. 9.")
flags.DEFINE_integer("checkpoint_every", DEFAULTS.checkpoint_every, "Steps between checkpoints.")
flags.DEFINE_integer("log_every", DEFAULTS.log_every, "Steps between train_log.csv rows.")
flags.DEFINE_integer("preview_every", DEFAULTS.preview_every, "Steps between preview images (0: only at the end).")
flags.DEFINE_integer("keep_checkpoints", DEFAULTS.keep_checkpoints, "Checkpoints kept.")
flags.DEFINE_integer("monitor_every", DEFAULTS.monitor_every, "Steps between test-set monitoring rows in "
                     "metrics.csv (0: off). Monitoring only, never used to pick a model unless "
                     "--keep_best_on_test.")
flags.DEFINE_boolean("keep_best_on_test", DEFAULTS.keep_best_on_test, "The authors' oracle protocol: also keep "
                     "the checkpoint with the best monitored test AUROC (needs --monitor_every). Not a fair "
                     "protocol: it selects on the test set.")
flags.DEFINE_float("threshold_holdout", DEFAULTS.threshold_holdout, "Fraction of train/good held out of "
                   "training to choose predict.py's decision threshold (0: none).")
flags.DEFINE_integer("seed", DEFAULTS.seed, "Random seed.")
flags.DEFINE_enum("type", None, ["object", "texture"], "Category type for custom categories (default object).")
flags.DEFINE_integer("image_size", None, "Side images are resized to (default 128 objects, 512 textures).")
flags.DEFINE_integer("patch_size", None, "Model input side for textures (default 64).")
flags.DEFINE_boolean("rotate", None, "Random rotation augmentation (default: from the category).")
flags.DEFINE_enum("rotation_interpolation", DEFAULTS.rotation_interpolation, ["NEAREST", "BILINEAR"],
                  "Interpolation of the training rotation.")
flags.DEFINE_enum("rotation_fill", DEFAULTS.rotation_fill, ["NEAREST", "REFLECT", "WRAP", "CONSTANT"],
                  "How the corners uncovered by the training rotation are filled (objects).")
flags.DEFINE_enum("intensity", DEFAULTS.intensity, list(INTENSITY_MODES),
                  "per_image: standardize each resized image to one mean and standard deviation before "
                  "augmentation, in training, evaluation and prediction alike; for images under uneven lighting "
                  "(not in the paper; see docs/REPRODUCTION.md).")
flags.DEFINE_enum("strategy", DEFAULTS.strategy, ["default", "mirrored", "multiworker"],
                  "tf.distribute strategy: default = one device; mirrored = every GPU of this host (data parallel, "
                  "--batch_size is the global batch); multiworker = several hosts described by TF_CONFIG "
                  "(docs/SCALING.md).")
flags.DEFINE_enum("precision", DEFAULTS.precision, ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Compute precision: mixed_float16 (NVIDIA GPUs, with loss scaling) or mixed_bfloat16 (TPUs, "
                  "Ampere+ GPUs, CPUs with AVX512-BF16/AMX); weights, losses and the gradient penalty stay float32.")

CONFIG_FLAGS = [f.name for f in __import__("dataclasses").fields(TrainConfig)]


def main(argv):
    if len(argv) > 1:
        from errors import ConfigError
        raise ConfigError(f"unexpected arguments {argv[1:]}; flags look like --category=bottle")
    from errors import ConfigError
    import os

    from training.run_folder import acquire_lock, is_run_folder
    if FLAGS.run_dir and os.path.isdir(FLAGS.run_dir):
        acquire_lock(FLAGS.run_dir)  # another train.py on this folder: one line naming its pid, exit 2 (at once)
    resuming = bool(FLAGS.run_dir) and is_run_folder(FLAGS.run_dir)
    if not FLAGS.category and not resuming:
        raise ConfigError("--category is required (e.g. --category=bottle), unless --run_dir names a run folder "
                          "to resume")
    config = TrainConfig(**{name: FLAGS[name].value for name in CONFIG_FLAGS if name in FLAGS})
    explicit = [name for name in CONFIG_FLAGS if name in FLAGS and FLAGS[name].present]
    config, preset_settings = config.with_presets(explicit)
    if config.keep_best_on_test and not config.monitor_every:
        raise ConfigError("--keep_best_on_test needs --monitor_every=N (test-set monitoring)")
    if not resuming:
        check_inputs_before_loading_tensorflow(config)
    cli.import_tensorflow_quietly()
    from devices import print_devices
    print_devices(config.strategy, precision_of(config, resuming, explicit))
    from training.loop import train
    train(config, explicit, preset_settings=preset_settings)


def precision_of(config, resuming, explicit):
    """The precision the run trains in: a resumed run keeps its config.json's unless --precision is given."""
    from errors import ConfigError
    if resuming and "precision" not in explicit:
        try:
            return TrainConfig.load(config.run_dir)[0].precision
        except (ConfigError, OSError):  # an unreadable config.json is reported by the training job itself
            return config.precision
    return config.precision


def check_inputs_before_loading_tensorflow(config):
    """Flag values and the dataset folder of a new run are checked first, so mistakes are reported in a second
    (a resumed run's settings come from its config.json)."""
    from data.categories import spec_for
    from data.files import find_category
    from training.run_folder import check_folder, default_run_dir
    config.validate()
    spec_for(config)
    find_category(config.data_dir, config.category)
    check_folder(config.run_dir or default_run_dir(config), "--run_dir")  # a file, a read-only folder


if __name__ == "__main__":
    cli.run_main(main, load_tensorflow=False)
