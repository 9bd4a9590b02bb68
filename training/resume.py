"""The resume rules: on an existing run folder the saved config.json wins over the command line, except for the
settings that do not change what is being trained (RESUMABLE_CHANGES)."""
import dataclasses
import os

import run_folder
from config import TrainConfig
from errors import ConfigError
from run_folder import CONFIG_FILE

# Settings that may differ when resuming (they do not change what is being trained).
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "log_every", "preview_every", "keep_checkpoints",
                     "monitor_every", "data_dir", "run_dir"}


def resolve_config(config, explicit_flags=()):
    """Fill the run folder name; on an existing run folder, merge with its saved config (resume).
    Returns (config, resuming)."""
    if not config.run_dir:
        config = dataclasses.replace(config, run_dir=run_folder.default_run_dir(config))
    if run_folder.is_run_folder(config.run_dir):
        # The strategy only decides which devices compute the same updates: it comes from the command line
        # (a run started on one GPU may resume on four, the global batch being the same).
        explicit_flags = [name for name in explicit_flags if name != "strategy"]
        resolved = reconcile_with_saved(config, explicit_flags)
        return dataclasses.replace(resolved, strategy=config.strategy).validate(), True
    if os.path.isdir(config.run_dir) and not run_folder.holds_only_the_lock(config.run_dir):
        raise ConfigError(f"--run_dir={config.run_dir} exists, is not empty and holds no {CONFIG_FILE}; "
                          "choose another folder")
    return config.validate(), False


def reconcile_with_saved(config, explicit_flags):
    """On resume: the saved config wins; a flag given explicitly with a different value is an error, except
    for the settings in RESUMABLE_CHANGES (e.g. --steps to extend a run)."""
    saved, _ = TrainConfig.load(config.run_dir)
    merged = saved.to_dict()
    for name in explicit_flags:
        if name not in merged:
            continue
        new, old = getattr(config, name), merged[name]
        if name in RESUMABLE_CHANGES:
            merged[name] = new
        elif new != old:
            raise ConfigError(f"--{name}={new} conflicts with {old!r} saved in {config.run_dir}/{CONFIG_FILE}; "
                              "drop the flag to resume, or choose a new --run_dir")
    merged["run_dir"] = config.run_dir
    return TrainConfig.from_dict(merged)
