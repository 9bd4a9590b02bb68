"""What an evaluation reads, checked before any work: the run's config.json, its checkpoint (NoCheckpoint, a
ConfigError naming the folder, if there is none), the dataset (--data_dir, else the run's config.data_dir, else
the absolute category folder recorded in config.json's provenance; if none exists: a one-line DatasetError
telling to pass --data_dir; a run trained on plain folders is read from its saved absolute folders), its test
files, the eval folder to write, and the restored model."""
import dataclasses
import os
from typing import Optional

from config import TrainConfig
from data.categories import CategorySpec, spec_for
from data.files import CategoryFiles
from data.sources import find_files, uses_folders
from errors import ConfigError, DatasetError
from evaluation.settings import EvalSettings, default_output_dir, resolve_lambdas
from models import image_scores as IS
import run_folder


class NoCheckpoint(ConfigError):
    """The run folder has no checkpoint of the requested kind (the folder-of-runs mode skips such runs)."""


def find_checkpoint(run_dir, checkpoint="latest", log=print):
    """The checkpoint path restore_run will use (the newest that can be read: run_folder.find_checkpoint), or
    NoCheckpoint naming the run folder."""
    folder = run_folder.checkpoint_folder(run_dir, checkpoint)
    path = run_folder.find_checkpoint(run_dir, checkpoint, log=log)
    if path is None:
        if checkpoint == "best_on_test":
            raise NoCheckpoint(f"run {run_dir} has no best-on-test checkpoint in {folder} (it was trained without "
                               "--keep_best_on_test); use --checkpoint=latest")
        raise NoCheckpoint(f"run {run_dir} has no checkpoint in {folder}: train it first "
                           f"(python train.py --run_dir={run_dir}) or remove the folder")
    return path


def resolve_data_dir(run_dir, config, payload, override=None):
    """The dataset root holding <category>/: override, else config.data_dir, else the recorded absolute root.
    None for a run trained on plain folders (--normal_dir, saved as absolute paths), which --data_dir cannot move."""
    category = config.category
    if uses_folders(config):
        if override:
            raise ConfigError(f"--data_dir does not apply to {run_dir}: it was trained on folders (--normal_dir="
                              f"{config.normal_dir}); evaluate it without --data_dir")
        return None
    if override:
        if not os.path.isdir(override):
            raise DatasetError(f"--data_dir={override} does not exist or is not a folder")
        return override
    if os.path.isdir(os.path.join(config.data_dir, category)):
        return config.data_dir
    recorded = (payload.get("dataset") or {}).get("root")
    if recorded and os.path.isdir(recorded):
        return os.path.dirname(os.path.normpath(recorded))
    raise DatasetError(f"the dataset of run {run_dir} is no longer where it was trained "
                       f"({os.path.join(config.data_dir, category)} does not exist): pass --data_dir=<the folder "
                       f"that now holds the {category} folder>")


@dataclasses.dataclass
class RunInputs:
    """One run to evaluate with its settings; the properties are what the settings mean for this run."""
    run_dir: str
    config: TrainConfig
    settings: EvalSettings          # weights and checkpoint filled in (EvalSettings.for_run)
    checkpoint_path: str
    data_dir: Optional[str]         # None: the run's plain folders
    spec: CategorySpec
    files: CategoryFiles            # the test items in their stable order (data/files.py)
    eval_dir: str                   # where the evaluation ends up (written through a staging folder)

    @property
    def feature_layer(self):
        return self.settings.feature_layer or self.config.feature_layer

    @property
    def default_lambda(self):
        """The run's lambda of eq. 7 (config.score_lambda, 0.1 as in the paper)."""
        return float(self.config.score_lambda)

    @property
    def lambdas(self):
        return resolve_lambdas(self.settings.lambdas, self.default_lambda)

    @property
    def image_score(self):
        return self.settings.image_score

    @property
    def topk(self):
        """map_topk's percentage, None for the other image scores."""
        return IS.effective_topk(self.settings.image_score, self.settings.topk_percent)

    @property
    def map_score(self):
        return IS.is_map_score(self.image_score)

    @property
    def sigma(self):
        """The Gaussian sigma of the anomaly maps in pixels at the run's image size."""
        return IS.sigma_pixels(self.settings.smoothing_sigma, self.spec.image_size)

    @property
    def batch_size(self):
        return int(self.settings.batch_size)

    @property
    def metric_keys(self):
        """The keys of the metrics rows: each lambda of eq. 7, or None alone for a map image score (lambda does not
        enter it)."""
        return (None,) if self.map_score else self.lambdas

    @property
    def default_key(self):
        return None if self.map_score else self.default_lambda

    def describe_score(self):
        """The image score in words, e.g. 'paper (eq. 7)' or 'map top-1% mean'."""
        return IS.describe(self.image_score, self.topk)


def read_run_inputs(run_dir, settings, log=print):
    """The RunInputs of run_dir for validated settings; the errors above, and one when the test set is empty."""
    run_dir = os.fspath(run_dir)
    config, payload = TrainConfig.load(run_dir)
    settings = settings.for_run(config)
    checkpoint_path = find_checkpoint(run_dir, settings.checkpoint, log=log)
    data_dir = resolve_data_dir(run_dir, config, payload, settings.data_dir)
    spec = spec_for(config)
    files = find_files(config, data_dir)
    for warning in files.warnings:
        log(f"warning: {warning}")
    if not files.test_items:
        where = ("(--normal_test_dir, or --normal_test_fraction above 0, and --abnormal_dir)" if uses_folders(config)
                 else "(test/good, test/<defect>)")
        raise DatasetError(f"{files.root} has no test images {where}: nothing to evaluate")
    eval_dir = settings.output or default_output_dir(run_dir, settings, config)
    run_folder.check_eval_output(run_dir, eval_dir)
    return RunInputs(run_dir, config, settings, checkpoint_path, data_dir, spec, files, eval_dir)


def restore_model(run, restored=None):
    """The run's inference.restore.restore_run of the checkpoint found, or restored (one restored beforehand, to
    reuse across evaluations: bench/image_scores.py) after checking it holds that checkpoint."""
    from inference.restore import restore_run

    if restored is None:
        return restore_run(run.run_dir, run.settings.checkpoint, log=lambda *a: None)  # find_checkpoint said it
    if restored.checkpoint_path != run.checkpoint_path:
        raise ValueError(f"restored holds {restored.checkpoint_path}, not the {run.settings.checkpoint} checkpoint "
                         f"{run.checkpoint_path} of {run.run_dir}")
    return restored
