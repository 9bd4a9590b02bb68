"""What an evaluation is asked for: EvalSettings (evaluate.py's flags) and the checks of their values, the
lambdas to score, and the eval folder that a run's settings name (<run>/eval, eval_last, eval_map_max, ...)."""
import dataclasses
import math
from typing import Optional

from config import scoring_defaults
from errors import ConfigError
from models import image_scores as IS
from models.scoring import DEFAULT_LAMBDAS
import run_folder

WEIGHTS = ("ema", "last")
CHECKPOINTS = ("latest", "best_on_test")


@dataclasses.dataclass
class EvalSettings:
    weights: Optional[str] = None        # "ema" (the EMA copies of E and G) or "last" (the trained weights)
    checkpoint: Optional[str] = None     # "latest" or "best_on_test" (kept by --keep_best_on_test)
    # None: what the run's --protocol scores (config.PROTOCOL_SCORING): fair -> latest/ema,
    # authors -> best_on_test/last; for_run() fills them in per run
    data_dir: Optional[str] = None       # dataset root; None: the run's config (or its recorded provenance)
    lambdas: tuple = DEFAULT_LAMBDAS     # eq. 7 weights; the run's score_lambda is always added
    feature_layer: Optional[str] = None  # None: the run's config.feature_layer
    batch_size: int = 64                 # model inputs (objects or texture patches) per forward pass
    output: Optional[str] = None         # None: default_output_dir(...)
    smoothing_sigma: float = IS.DEFAULT_SMOOTHING_SIGMA  # Gaussian sigma of the pixel maps, px at 256 px scale
    pixel_size: int = 0                  # side of the maps/masks for pixel metrics; 0: the run's image size
    image_score: str = IS.DEFAULT_IMAGE_SCORE  # "paper" (eq. 7), "map_max", "map_topk" (models/image_scores.py)
    topk_percent: float = IS.DEFAULT_TOPK_PERCENT  # map_topk: the mean of the top k % of the smoothed map

    def validate(self):
        from models.critic import FEATURE_LAYERS
        if self.weights is not None and self.weights not in WEIGHTS:
            raise ConfigError(f"--weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.checkpoint is not None and self.checkpoint not in CHECKPOINTS:
            raise ConfigError(f"--checkpoint must be one of {CHECKPOINTS}, got {self.checkpoint!r}")
        if self.feature_layer is not None and self.feature_layer not in FEATURE_LAYERS:
            raise ConfigError(f"--feature_layer must be one of {FEATURE_LAYERS}, got {self.feature_layer!r}")
        if int(self.batch_size) < 1:
            raise ConfigError(f"--batch_size must be >= 1, got {self.batch_size}")
        if not (self.smoothing_sigma >= 0 and math.isfinite(self.smoothing_sigma)):
            raise ConfigError(f"--smoothing_sigma must be >= 0, got {self.smoothing_sigma}")
        IS.validate(self.image_score, self.topk_percent)
        if int(self.pixel_size) < 0:
            raise ConfigError(f"--pixel_size must be >= 0 (0: the run's image size), got {self.pixel_size}")
        if not self.lambdas:
            raise ConfigError("--lambdas is empty: give at least one value in [0, 1]")
        for lam in self.lambdas:
            if not (0.0 <= float(lam) <= 1.0):
                raise ConfigError(f"--lambdas: every lambda must be in [0, 1], got {lam}")
        return self

    def for_run(self, config):
        """These settings with weights and checkpoint filled in from the run's protocol where not given."""
        checkpoint, weights = scoring_defaults(config, self.checkpoint, self.weights)
        return dataclasses.replace(self, checkpoint=checkpoint, weights=weights)


def parse_lambdas(text):
    """'0.1,0.5' -> (0.1, 0.5); '' -> DEFAULT_LAMBDAS. ConfigError naming --lambdas on bad values."""
    if text is None or not str(text).strip():
        return DEFAULT_LAMBDAS
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--lambdas: {part!r} is not a number (give e.g. --lambdas=0.1,0.5)") from None
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"--lambdas: every lambda must be in [0, 1], got {part}")
        values.append(value)
    if not values:
        raise ConfigError("--lambdas is empty: give at least one value in [0, 1]")
    return tuple(values)


def resolve_lambdas(lambdas, default_lambda):
    """Distinct lambdas in ascending order, always including the run's default lambda."""
    values = sorted({float(lam) for lam in lambdas} | {float(default_lambda)})
    return tuple(values)


def default_output_dir(run_dir, settings, config):
    """<run>/eval for the weights and checkpoint of the run's protocol (fair: EMA weights of the latest
    checkpoint; authors: last weights of the best-on-test checkpoint) with the run's feature layer and the paper's
    image score; other settings get a suffix so that their evaluations coexist: eval_last, eval_best_on_test,
    eval_joint, eval_last_joint, eval_map_max, eval_last_map_topk, eval_map_topk5 (top 5 %), ... (an authors run:
    eval_ema, eval_latest, ...)."""
    default_checkpoint, default_weights = scoring_defaults(config)
    checkpoint, weights = scoring_defaults(config, settings.checkpoint, settings.weights)
    name = run_folder.EVAL_DIR
    if weights != default_weights:
        name += f"_{weights}"
    if checkpoint != default_checkpoint:
        name += f"_{checkpoint}"
    layer = settings.feature_layer or config.feature_layer
    if layer != config.feature_layer:
        name += f"_{layer}"
    if settings.image_score != IS.DEFAULT_IMAGE_SCORE:
        name += f"_{IS.name(settings.image_score, settings.topk_percent)}"
    return run_folder.path(run_dir, name)
