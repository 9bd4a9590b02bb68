"""TrainConfig: every setting of a training run, in one place.

Defaults follow the paper (section V-B) and the authors' code where the paper is silent; the differences are
listed in docs/REPRODUCTION.md. The resolved config is written to <run_dir>/config.json and read back on
resume and by evaluate.py, predict.py and export.py.
"""
import dataclasses
import json
from pathlib import Path
from typing import Optional

from data.categories import CATEGORY_TYPES
from data.images import INTENSITY_MODES
from errors import ConfigError
from models.distributed import PRECISIONS, STRATEGIES
from models.options import ACTIVATIONS, FEATURE_LAYERS, NORMALIZATIONS, UPSAMPLINGS
from run_folder import CONFIG_FILE, write_text  # the run folder's owner (file names, atomic writes)

GP_PAIRINGS = ("paper", "authors")

# --protocol: how the reported numbers are measured. "fair" (default): the final checkpoint, EMA weights, no
# test-set selection. "authors": what the authors' code does to produce the paper's tables: EMA every 10 batches
# without warm-up (the shadow copy taken at batch 10), test AUROC of the EMA weights every 1,000 batches, the
# checkpoint with the best such AUROC kept, and its live (last-trained) weights scored (test-set selection:
# optimistic); training on all of train/good, as they did (no held-out images for predict.py's threshold). Each
# value below is set unless the flag is given explicitly; config.json records what was set.
PROTOCOL_SETTINGS = {
    "fair": {},
    "authors": {"ema_every": 10, "ema_warmup": False, "ema_decay": 0.999, "monitor_every": 1000,
                "keep_best_on_test": True, "threshold_holdout": 0.0},
}
PROTOCOLS = tuple(PROTOCOL_SETTINGS)

# --recipe: how the model is trained. "paper" (default): the paper's settings (the defaults of the fields
# below). "fast": a CPU-budget recipe (docs/RESULTS.md, "Time to quality"): the same networks, losses and score,
# with more G/E updates per CPU-second, a conventional Adam for G/E, an autoencoder warm start and a shorter EMA.
# Like the protocol, each value is set unless its flag is given; where both set a field, the protocol wins.
RECIPE_SETTINGS = {
    "paper": {},
    "fast": {"d_iter": 1, "batch_size": 16, "lr": 1e-3, "critic_lr": 1e-4, "ge_beta1": 0.5, "ge_beta2": 0.999,
             "alpha_start": 1.0, "alpha_warmup_steps": 1000, "alpha": 0.1, "ema_decay": 0.99},
}
RECIPES = tuple(RECIPE_SETTINGS)
# What evaluate.py, predict.py and export.py score (--weights, --checkpoint), and by default for a run of each
# protocol: (checkpoint, weights).
WEIGHTS = ("ema", "last")                   # the EMA copies of E and G, or the last trained ones
CHECKPOINTS = ("latest", "best_on_test")    # best_on_test: kept by --keep_best_on_test (test-set selection)
PROTOCOL_SCORING = {"fair": ("latest", "ema"), "authors": ("best_on_test", "last")}


def scoring_defaults(config, checkpoint=None, weights=None):
    """(checkpoint, weights) to score a run with: the given ones, else those of the run's protocol."""
    default_checkpoint, default_weights = PROTOCOL_SCORING[config.protocol]
    return checkpoint or default_checkpoint, weights or default_weights


def evaluation_protocol(checkpoint):
    """The protocol column of an evaluation: "authors" when the checkpoint was selected on the test set."""
    return "authors" if checkpoint == "best_on_test" else "fair"


# train.py's flags are generated from the fields below (config_flags.py): each field's metadata holds the flag's
# help text, its topic in `train.py --help` (FLAG_GROUPS, in the order shown) and, for a choice, the allowed values.
FLAG_GROUPS = {"data": "Data", "model": "Model", "training": "Training", "scoring": "Scoring and test-set monitoring",
               "run": "Run folder and bookkeeping", "scale_out": "Scale-out (docs/SCALING.md)"}
ROTATION_INTERPOLATIONS = ("NEAREST", "BILINEAR")             # data/augment.py (ImageProjectiveTransformV3)
ROTATION_FILLS = ("NEAREST", "REFLECT", "WRAP", "CONSTANT")   # data/augment.py (ImageProjectiveTransformV3)


def setting(default, group, help, choices=None):
    """A TrainConfig field and its train.py flag: help text, FLAG_GROUPS topic and (a choice) the allowed values.
    A None default means "from the category, the recipe or another flag", as the help says."""
    if group not in FLAG_GROUPS:
        raise ValueError(f"group {group!r} is not one of {tuple(FLAG_GROUPS)}")
    return dataclasses.field(default=default, metadata={"help": help, "group": group, "choices": choices})


@dataclasses.dataclass
class TrainConfig:
    category: str = setting("", "data", "Category folder name under --data_dir (e.g. bottle, carpet, or your own).")
    data_dir: str = setting("data/mvtec-ad", "data", "Dataset root in MVTec AD layout.")
    # plain folders instead of the MVTec layout (data/folders.py); --normal_dir switches to them
    normal_dir: str = setting("", "data", "Folder of defect-free images to train on, instead of --data_dir/--category "
                              "(MVTec layout). Without --normal_test_dir a seeded --normal_test_fraction of it is kept "
                              "for testing. --category then only names the run (default: the folder's parent's name).")
    abnormal_dir: str = setting("", "data", "With --normal_dir: folder of anomalous test images, directly inside "
                                "and/or in one subfolder per defect type.")
    normal_test_dir: str = setting("", "data", "With --normal_dir: folder of defect-free test images (default: split "
                                   "off --normal_dir).")
    mask_dir: str = setting("", "data", "With --abnormal_dir: folder of defect masks (<image stem>_mask.png or "
                            "<image stem>.png, per defect-type subfolder or directly inside).")
    normal_test_fraction: float = setting(0.2, "data", "With --normal_dir and no --normal_test_dir: fraction of the "
                                          "normal images kept out of training for testing.")
    normal_split_seed: int = setting(0, "data", "Seed of that split (independent of --seed, so runs with different "
                                     "seeds are tested on the same images).")
    run_dir: str = setting("", "run", "Run folder; default runs/<category>-alpha<alpha>-<timestamp>. An existing run "
                           "folder is resumed.")
    # data geometry (None: from the category: objects 128, textures 512 cut into 64x64 patches)
    type: Optional[str] = setting(None, "data", "Category type for custom categories (default object).",
                                  CATEGORY_TYPES)
    image_size: Optional[int] = setting(None, "data", "Side images are resized to (default 128 objects, 512 "
                                        "textures).")
    patch_size: Optional[int] = setting(None, "data", "Model input side for textures (default 64).")
    rotate: Optional[bool] = setting(None, "data", "Random rotation augmentation (default: from the category).")
    rotation_interpolation: str = setting("BILINEAR", "data", "Interpolation of the training rotation.",
                                          ROTATION_INTERPOLATIONS)  # BILINEAR avoids jagged edges
    rotation_fill: str = setting("NEAREST", "data", "How the corners uncovered by the training rotation are filled "
                                 "(objects).", ROTATION_FILLS)  # NEAREST repeats the border, REFLECT mirrors it
    intensity: str = setting("none", "data", "per_image: standardize each resized image to one mean and standard "
                             "deviation before augmentation, in training, evaluation and prediction alike; for "
                             "images under uneven lighting (not in the paper; see docs/REPRODUCTION.md).",
                             INTENSITY_MODES)
    # optimisation; steps count batches consumed by critic and G/E updates alike (the authors' n_batches)
    steps: int = setting(20000, "training", "Batches to consume in total (critic and G/E updates alike; the authors "
                         "used 1,200,000).")
    batch_size: int = setting(32, "training", "Batch size.")
    alpha: float = setting(1e-4, "training", "Consistency weight of eq. 13; 0 trains the EGBAD baseline.")
    alpha_start: Optional[float] = setting(None, "training", "Consistency weight for the first --alpha_warmup_steps "
                                           "batches, then --alpha (e.g. 1: start as an autoencoder). Default: "
                                           "--alpha throughout, as the paper.")
    alpha_warmup_steps: int = setting(0, "training", "Batches trained with --alpha_start.")
    gp_weight: float = setting(10.0, "training", "Gradient-penalty weight.")
    gp_pairing: str = setting("paper", "training", "Gradient-penalty interpolation: paper = (x, E(x)) vs (G(z), z); "
                              "authors = (x, z) vs (G(z), E(x)).", GP_PAIRINGS)
    d_iter: int = setting(5, "training", "Critic updates per generator/encoder update; 0: critic and "
                          "generator/encoder updated together on every batch (as the authors' --d-iter 0).")
    skip_critic: bool = setting(False, "training", "Train the generator/encoder only (no critic update); with "
                                "--alpha=1 a plain autoencoder of the same networks (a diagnostic, not CBiGAN).")
    lr: float = setting(1e-4, "training", "Adam learning rate (of every network unless --critic_lr is given).")
    critic_lr: Optional[float] = setting(None, "training", "Adam learning rate of the critic (default: --lr).")
    ge_beta1: float = setting(0.0, "training", "Adam beta1 of the generator/encoder (the authors': 0).")
    ge_beta2: float = setting(0.1, "training", "Adam beta2 of the generator/encoder (the authors': 0.1).")
    d_beta1: float = setting(0.0, "training", "Adam beta1 of the critic (the authors': 0).")
    d_beta2: float = setting(0.9, "training", "Adam beta2 of the critic (the authors': 0.9).")
    ema_decay: float = setting(0.999, "training", "Decay of the EMA copies of E and G used for evaluation.")
    ema_warmup: bool = setting(True, "training", "EMA decay min(decay, (1+n)/(10+n)) so early averages do not carry "
                               "the random initialisation.")  # as tf.train.ExponentialMovingAverage
    ema_every: int = setting(0, "training", "0: update the EMA after each generator/encoder update; N: after every "
                             "N-th batch, the first time a copy (the authors' schedule: 10, no warm-up).")
    # architecture
    channels: int = setting(3, "model", "Channel multiplier c of the networks.")
    latent_size: int = setting(64, "model", "Latent size.")
    normalization: str = setting("none", "model", "Normalization.", NORMALIZATIONS)
    encoder_normalization: Optional[str] = setting(None, "model", "Normalization of the encoder only (default: "
                                                   "--normalization); e.g. instance keeps the between-image spread "
                                                   "of E(x) that the un-normalised encoder loses at initialisation "
                                                   "(docs/RESULTS.md).", NORMALIZATIONS)
    activation: str = setting("lrelu", "model", "Activation.", ACTIVATIONS)
    upsampling: str = setting("bilinear", "model", "Generator upsampling.", UPSAMPLINGS)
    use_bias: bool = setting(False, "model", "Bias in the layers the authors' code left without.")
    # scoring (eq. 7, 9)
    score_lambda: float = setting(0.1, "scoring", "lambda of the anomaly score (eq. 7).")
    feature_layer: str = setting("first_conv", "scoring", "Critic features for eq. 9.", FEATURE_LAYERS)
    # how the model is trained (RECIPE_SETTINGS) and how results are measured (PROTOCOL_SETTINGS)
    recipe: str = setting("paper", "training", "Training recipe. paper: the paper's settings. fast: a CPU-budget "
                          "recipe (same networks, losses and score): d_iter 1, batch 16, G/E Adam lr 1e-3 betas "
                          "(0.5, 0.999), critic lr 1e-4, alpha 1 for the first 1,000 batches then 0.1, EMA decay 0.99 "
                          "(docs/RESULTS.md). Flags given explicitly override the recipe's values; config.json "
                          "records what it set.", RECIPES)
    protocol: str = setting("fair", "scoring", "How results are measured. fair: final checkpoint, EMA weights, no "
                            "test-set selection. authors: as the authors' code produced the paper's tables: EMA every "
                            "10 batches without warm-up, test AUROC of the EMA weights every 1,000 batches "
                            "(--monitor_every), the best-on-test checkpoint kept and its last-trained weights scored "
                            "by evaluate.py/predict.py (test-set selection: optimistic). Flags given explicitly "
                            "override the protocol's values.", PROTOCOLS)
    # bookkeeping
    seed: int = setting(42, "training", "Random seed.")
    checkpoint_every: int = setting(1000, "run", "Steps between checkpoints.")
    log_every: int = setting(100, "run", "Steps between train_log.csv rows.")
    preview_every: int = setting(2000, "run", "Steps between preview images (0: only at the end).")
    keep_checkpoints: int = setting(3, "run", "Checkpoints kept.")
    monitor_every: int = setting(0, "scoring", "Steps between test-set monitoring rows in metrics.csv (0: off). "
                                 "Monitoring only, never used to pick a model unless --keep_best_on_test.")
    keep_best_on_test: bool = setting(False, "scoring", "The authors' oracle protocol: also keep the checkpoint "
                                      "with the best monitored test AUROC (needs --monitor_every). Not a fair "
                                      "protocol: it selects on the test set.")
    threshold_holdout: float = setting(0.1, "scoring", "Fraction of train/good held out of training to choose "
                                       "predict.py's decision threshold (0: none).")
    # scale-out (docs/SCALING.md)
    strategy: str = setting("default", "scale_out", "tf.distribute strategy: default = one device; mirrored = every "
                            "GPU of this host (data parallel, --batch_size is the global batch); multiworker = "
                            "several hosts described by TF_CONFIG (docs/SCALING.md).", STRATEGIES)
    precision: str = setting("float32", "scale_out", "Compute precision: mixed_float16 (NVIDIA GPUs, with loss "
                             "scaling) or mixed_bfloat16 (TPUs, Ampere+ GPUs, CPUs with AVX512-BF16/AMX); weights, "
                             "losses and the gradient penalty stay float32.", PRECISIONS)

    def validate(self):
        def need(cond, flag, msg):
            if not cond:
                raise ConfigError(f"--{flag}: {msg}")
        need(bool(self.category), "category", "is required (e.g. --category=bottle)")
        need(0.0 <= self.normal_test_fraction < 1.0, "normal_test_fraction",
             f"must be in [0, 1), got {self.normal_test_fraction}")
        for name in ("abnormal_dir", "normal_test_dir", "mask_dir"):
            need(not getattr(self, name) or self.normal_dir, name, "needs --normal_dir (folder inputs)")
        need(self.steps > 0, "steps", f"must be positive, got {self.steps}")
        need(self.batch_size > 0, "batch_size", f"must be positive, got {self.batch_size}")
        need(0.0 <= self.alpha <= 1.0, "alpha", f"must be in [0, 1], got {self.alpha}")
        need(self.alpha_start is None or 0.0 <= self.alpha_start <= 1.0, "alpha_start",
             f"must be in [0, 1], got {self.alpha_start}")
        need(self.alpha_warmup_steps >= 0, "alpha_warmup_steps", f"must be >= 0, got {self.alpha_warmup_steps}")
        need((self.alpha_start is None) == (self.alpha_warmup_steps == 0), "alpha_warmup_steps",
             "--alpha_start and --alpha_warmup_steps go together (both set or neither)")
        for name in ("ge_beta1", "ge_beta2", "d_beta1", "d_beta2"):
            need(0.0 <= getattr(self, name) < 1.0, name, f"must be in [0, 1), got {getattr(self, name)}")
        need(self.gp_weight >= 0, "gp_weight", f"must be >= 0, got {self.gp_weight}")
        need(self.gp_pairing in GP_PAIRINGS, "gp_pairing", f"must be one of {GP_PAIRINGS}")
        need(self.d_iter >= 0, "d_iter", f"must be >= 0 (0: critic and G/E updated on every batch), got "
             f"{self.d_iter}; to train without the critic use --skip_critic")
        need(self.ema_every >= 0, "ema_every", f"must be >= 0, got {self.ema_every}")
        need(self.recipe in RECIPES, "recipe", f"must be one of {RECIPES}, got {self.recipe!r}")
        need(self.protocol in PROTOCOLS, "protocol", f"must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.protocol == "authors":
            need(self.keep_best_on_test and self.monitor_every > 0, "protocol",
                 "authors selects the best-on-test checkpoint: it needs --monitor_every > 0 and --keep_best_on_test")
        need(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        need(self.critic_lr is None or self.critic_lr > 0, "critic_lr", f"must be positive, got {self.critic_lr}")
        need(0.0 <= self.ema_decay < 1.0, "ema_decay", f"must be in [0, 1), got {self.ema_decay}")
        need(self.channels > 0, "channels", f"must be positive, got {self.channels}")
        need(self.latent_size > 0, "latent_size", f"must be positive, got {self.latent_size}")
        need(self.normalization in NORMALIZATIONS, "normalization", f"must be one of {NORMALIZATIONS}")
        need(self.encoder_normalization in (None,) + tuple(NORMALIZATIONS), "encoder_normalization",
             f"must be one of {NORMALIZATIONS}")
        need(self.activation in ACTIVATIONS, "activation", f"must be one of {ACTIVATIONS}")
        need(self.upsampling in UPSAMPLINGS, "upsampling", f"must be one of {UPSAMPLINGS}")
        need(0.0 <= self.score_lambda <= 1.0, "score_lambda", "must be in [0, 1]")
        need(self.feature_layer in FEATURE_LAYERS, "feature_layer", f"must be one of {FEATURE_LAYERS}")
        need(self.checkpoint_every > 0, "checkpoint_every", "must be positive")
        need(self.log_every > 0, "log_every", f"must be positive, got {self.log_every}")
        need(self.keep_checkpoints > 0, "keep_checkpoints", f"must be positive (checkpoints kept), got "
             f"{self.keep_checkpoints}")
        need(self.preview_every >= 0, "preview_every", f"must be >= 0 (0: only at the end), got {self.preview_every}")
        need(self.monitor_every >= 0, "monitor_every", f"must be >= 0 (0: off), got {self.monitor_every}")
        need(self.type in (None,) + CATEGORY_TYPES, "type", f"must be one of {CATEGORY_TYPES}")
        need(self.rotation_interpolation in ROTATION_INTERPOLATIONS, "rotation_interpolation",
             f"must be one of {ROTATION_INTERPOLATIONS}")
        need(self.rotation_fill in ROTATION_FILLS, "rotation_fill", f"must be one of {ROTATION_FILLS}")
        need(0.0 <= self.threshold_holdout < 0.5, "threshold_holdout", "must be in [0, 0.5)")
        need(self.strategy in STRATEGIES, "strategy", f"must be one of {STRATEGIES}, got {self.strategy!r}")
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        return self

    def alpha_at(self, step):
        """The consistency weight of eq. 13 for the batch with 0-based index `step` (alpha_start first)."""
        if self.alpha_start is not None and step < self.alpha_warmup_steps:
            return float(self.alpha_start)
        return float(self.alpha)

    def with_presets(self, explicit_flags=()):
        """(config, applied): the settings of the recipe (RECIPE_SETTINGS) and then of the protocol
        (PROTOCOL_SETTINGS) applied to every field whose flag was not given explicitly; applied = {field: value}
        of what they set (recorded in config.json)."""
        applied = {name: value for name, value in RECIPE_SETTINGS[self.recipe].items()
                   if name not in explicit_flags}
        applied.update({name: value for name, value in PROTOCOL_SETTINGS[self.protocol].items()
                        if name not in explicit_flags})
        return dataclasses.replace(self, **applied), applied

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def save(self, run_dir, extra=None):
        payload = {"config": self.to_dict()}
        payload.update(extra or {})
        write_text(Path(run_dir, CONFIG_FILE), json.dumps(payload, indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, run_dir):
        """(config, payload) of run_dir/config.json. A file that is empty, not JSON, without its "config"
        section or category, with a value of the wrong type or an invalid one (edited by hand, damaged): a
        ConfigError naming the file. Settings missing from an older file take their defaults."""
        path = Path(run_dir, CONFIG_FILE)
        if not path.is_file():
            raise ConfigError(f"{path} not found: is {run_dir} a run folder written by train.py?")
        fix = "restore it from a backup, or start a new --run_dir"
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not text (damaged); {fix}") from None
        except OSError as err:
            raise ConfigError(f"cannot read {path} ({err.strerror or err})") from None
        if not text.strip():
            raise ConfigError(f"{path} is empty (a write was interrupted); {fix}")
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON ({err}); {fix}") from None
        values = payload.get("config") if isinstance(payload, dict) else None
        if not isinstance(values, dict) or not values.get("category"):
            raise ConfigError(f"{path} has no \"config\" section with a \"category\" (not written by train.py, or "
                              f"edited); {fix}")
        return cls._checked(values, path), payload

    @classmethod
    def _checked(cls, values, path):
        """from_dict with every known value's type checked and the result validated; errors name the file."""
        import typing
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            if name not in hints or value is None and type(None) in typing.get_args(hints[name]):
                continue
            kind = next((t for t in typing.get_args(hints[name]) if t is not type(None)), hints[name])
            ok = (isinstance(value, bool) if kind is bool else
                  isinstance(value, int) and not isinstance(value, bool) if kind is int else
                  isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
                  isinstance(value, kind))
            if not ok:
                raise ConfigError(f"{path}: \"{name}\" is {value!r}, not a{'n' if kind is int else ''} "
                                  f"{kind.__name__} (edited by hand?); fix the value or start a new --run_dir")
        try:
            return cls.from_dict(values).validate()
        except ConfigError as err:
            raise ConfigError(f"{path} holds an invalid setting ({str(err).lstrip('-')}); fix the value or start "
                              "a new --run_dir") from None
