"""Train CBiGAN on one category: python train.py --category=carpet [--data_dir=DIR] [--steps=N]
or on plain folders: python train.py --normal_dir=DIR [--abnormal_dir=DIR] [--mask_dir=DIR] [--category=NAME]

Running the same command on an existing run folder (--run_dir) resumes it from its last checkpoint; so does
python train.py --run_dir=runs/x [--steps=N] (the other settings come from runs/x/config.json).
Ctrl-C / SIGTERM writes a checkpoint before exiting. See README.md.
"""
import sys

import cli  # noqa: F401  (sets TF log level before TensorFlow loads)
from absl import flags

from config import TrainConfig
from config_flags import config_fields, define_config_flags, grouped_help

FLAGS = flags.FLAGS
define_config_flags(FLAGS, module_name=sys.argv[0])  # a flag per TrainConfig field: its type, default, help, choices
CONFIG_FLAGS = [field.name for field in config_fields()]


def main(argv):
    if len(argv) > 1:
        from errors import ConfigError
        raise ConfigError(f"unexpected arguments {argv[1:]}; flags look like --category=bottle")
    from errors import ConfigError
    import os

    from run_folder import acquire_lock, is_run_folder
    if FLAGS.run_dir and os.path.isdir(FLAGS.run_dir):
        acquire_lock(FLAGS.run_dir)  # another train.py on this folder: one line naming its pid, exit 2 (at once)
    resuming = bool(FLAGS.run_dir) and is_run_folder(FLAGS.run_dir)
    if not FLAGS.category and not FLAGS.normal_dir and not resuming:
        raise ConfigError("--category is required (e.g. --category=bottle), unless --normal_dir names a folder of "
                          "good images or --run_dir names a run folder to resume")
    values = {name: FLAGS[name].value for name in CONFIG_FLAGS if name in FLAGS}
    if values.get("normal_dir"):  # folder inputs: absolute paths in config.json; the run named after the folder
        from data.sources import absolute_folders, folder_category_name
        values.update(absolute_folders(values))
        values["category"] = values["category"] or folder_category_name(values["normal_dir"])
    config = TrainConfig(**values)
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
    from data.sources import find_files
    from run_folder import check_folder, default_run_dir
    config.validate()
    spec_for(config)
    find_files(config)
    check_folder(config.run_dir or default_run_dir(config), "--run_dir")  # a file, a read-only folder


if __name__ == "__main__":
    cli.run_main(main, load_tensorflow=False, short_help=lambda: grouped_help(FLAGS, intro=__doc__))
