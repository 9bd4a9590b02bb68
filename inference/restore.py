"""Load a trained run for evaluation, prediction or export: its config, category spec and restored model."""
import dataclasses

from config import TrainConfig
from errors import ConfigError
from models.cbigan import CBiGAN
from data.categories import spec_for
import run_folder


@dataclasses.dataclass
class RestoredRun:
    run_dir: str
    config: TrainConfig
    spec: object          # data.categories.CategorySpec
    model: CBiGAN
    checkpoint_path: str
    step: int
    checkpoint: object = None  # kept referenced: a collected Checkpoint can drop deferred restorations


def restore_run(run_dir, checkpoint="latest", log=print):
    """checkpoint: "latest" (default) or "best_on_test" (the authors' oracle protocol, if it was kept). The
    newest checkpoint that can be read (run_folder.find_checkpoint: a corrupt newer one is skipped, said in one
    line)."""
    config, _ = TrainConfig.load(run_dir)
    path = run_folder.find_checkpoint(run_dir, checkpoint, log=log)
    if path is None:
        raise ConfigError(f"{run_dir} has no checkpoint in {run_folder.checkpoint_folder(run_dir, checkpoint)}: "
                          f"train it first (python train.py --run_dir={run_dir} --category={config.category})")
    spec = spec_for(config)
    model = CBiGAN(config, spec.patch_size)
    checkpoint = model.checkpoint()
    run_folder.restore(checkpoint, path, run_dir, partial=True)

    return RestoredRun(run_dir, config, spec, model, path, int(model.step.numpy()), checkpoint)
