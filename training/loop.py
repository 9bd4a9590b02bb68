"""The training job: set-up (config, data checks, model, checkpoint restore) and the loop over batches.

Order of work per run: resolve the config (resume rules, training/resume.py), load and validate the data, write
config.json, build the model, restore the last checkpoint; then the loop: stream batches through the d_iter/1
schedule, one update per batch, and after each update the hooks (training/hooks.py, training/scoring_hooks.py):
NaN check, progress, train_log.csv row, checkpoint, previews, test-set monitoring, the user's hooks
(train(config, hooks=[...])), the stop request (SIGINT / SIGTERM) last; at the end the last checkpoint and
preview, and the hold-out scores of the decision threshold that predict.py uses.
"""
import contextlib
import csv  # noqa: F401  (the hold-out scores' writer, training/scoring_hooks.py; tests patch loop.csv.writer)
import dataclasses
import os
import tempfile
import time

import tensorflow as tf

from config import TrainConfig
from data.categories import spec_for
from data.sources import find_files
from data.images import check_category_files, non_square_note
from data.streams import load_train_images, train_dataset
from errors import ConfigError
from models.scoring import Scorer
from models import distributed
from models.cbigan import CBiGAN
import run_folder
from training.hooks import (CheckpointHook, LoggingInterval, NaNGuard, ProgressHook, StopHook,
                            TrainLogHook)
from training.progress import Progress, format_duration
from training.resume import resolve_config
from training.scoring_hooks import MonitorHook, PreviewHook, ThresholdHook, write_holdout_scores

from run_folder import BEST_ON_TEST_DIR, CHECKPOINT_DIR, CONFIG_FILE, HOLDOUT_SCORES_FILE  # noqa: F401


def split_holdout(train_paths, fraction):
    """Every k-th training image (k = round(1 / fraction)) is held out to choose the decision threshold."""
    if fraction <= 0:
        return list(train_paths), []
    k = max(2, int(round(1.0 / fraction)))
    holdout = [p for i, p in enumerate(train_paths) if i % k == k - 1]
    kept = [p for i, p in enumerate(train_paths) if i % k != k - 1]
    return kept, holdout


def worker_run_dir(run_dir, strategy):
    """Where a non-chief worker of a multi-worker cluster writes (its checkpoints are needed by the collective
    save; its logs and previews repeat the chief's): a local temporary folder, stable across restarts."""
    task_type, task_id = distributed.task(strategy)
    name = os.path.basename(os.path.normpath(run_dir))
    return os.path.join(tempfile.gettempdir(), "cbigan-workers", f"{name}-{task_type}{task_id}")


class TrainingJob:
    def __init__(self, config, explicit_flags=(), log=print, preset_settings=None, hooks=()):
        """preset_settings: {field: value} that --recipe and --protocol set (recorded in config.json as
        "preset_settings"; a resumed run keeps the record of its first start). hooks: the user's
        (training.hooks.Hook), called after the built-in ones in each step."""
        self.log = log
        self.extra_hooks = list(hooks)
        # First: MultiWorkerMirroredStrategy must be created before TensorFlow runs anything.
        self.strategy = distributed.make_strategy(config.strategy)
        replicas = distributed.replicas(self.strategy)
        if config.batch_size % replicas:
            raise ConfigError(f"--batch_size={config.batch_size} (the global batch) must be a multiple of the "
                              f"{replicas} replicas of --strategy={config.strategy}")
        self.chief_run_dir = config.run_dir
        if not distributed.is_chief(self.strategy):
            if not config.run_dir:
                raise ConfigError("--strategy=multiworker needs --run_dir, the same on every worker")
            config = dataclasses.replace(config, run_dir=worker_run_dir(config.run_dir, self.strategy))
        if not config.run_dir:
            config = dataclasses.replace(config, run_dir=run_folder.default_run_dir(config))
        self.created = not os.path.isdir(config.run_dir)
        self.new_run = False  # True once the folder is known to hold nothing but what this job writes
        run_folder.acquire_lock(config.run_dir)  # a second train.py on this folder stops here (ConfigError)
        try:
            self.config, self.resuming = resolve_config(config, explicit_flags)
            self.new_run = not self.resuming
            self._set_up(self.config, log, preset_settings, replicas)
        except BaseException:  # nothing trained: a new run leaves nothing behind (no config.json to conflict with)
            self._discard_if_new(config.run_dir)
            raise

    def _discard_if_new(self, run_dir):
        """Before a new run's first step (its checks failed, or it was interrupted): remove what it wrote, its
        lock, and the folder when this job created it, so that the corrected command starts afresh. A resumed
        run (or a folder that resolve_config refused) keeps its files; only the lock is released."""
        if self.new_run:
            run_folder.discard_new_run(run_dir)
        run_folder.release_lock(run_dir)
        if self.created:
            with contextlib.suppress(OSError):
                os.rmdir(run_dir)  # only when empty

    def _set_up(self, config, log, preset_settings, replicas):
        """Check the data (every image header, masks against their images) before anything is written, then
        write config.json, build the model and restore the newest readable checkpoint."""
        self.spec = spec_for(config)
        self.files = find_files(config)
        for warning in self.files.warnings:
            log(f"warning: {warning}")
        note = non_square_note(check_category_files(self.files), self.spec.image_size)
        if note:
            log(note)
        self.train_paths, self.holdout_paths = split_holdout(self.files.train_paths, config.threshold_holdout)
        if not self.train_paths:
            raise ConfigError(f"--threshold_holdout={config.threshold_holdout} leaves no training images")
        self.run_dir = config.run_dir
        os.makedirs(self.run_dir, exist_ok=True)
        # The newest checkpoint that can be read (ckpt-N.index files, not only the state file); never step 0
        # while ckpt files exist (none readable: a ConfigError naming the folder).
        latest = run_folder.find_checkpoint(self.run_dir, log=log)
        if latest:
            run_folder.repair_checkpoint_state(latest)
        saved = config
        if self.resuming:
            saved_config, payload = TrainConfig.load(self.run_dir)
            preset_settings = payload.get("preset_settings", {})
            done = int(latest.rsplit("-", 1)[1]) if latest else 0
            if config.steps < done:  # --steps below the steps done: nothing to train, and the run keeps its steps
                saved = dataclasses.replace(config, steps=saved_config.steps)
        record = run_folder.provenance(self.spec, self.files, len(self.train_paths), len(self.holdout_paths))
        record["preset_settings"] = dict(preset_settings or {})
        saved.save(self.run_dir, record)
        self.model = CBiGAN(config, self.spec.patch_size, strategy=self.strategy, precision=config.precision)
        if replicas > 1:
            log(f"--strategy={config.strategy}: {replicas} replicas of {config.batch_size // replicas} images")
        self.elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.checkpoint = self.model.checkpoint()
        self.checkpoint.elapsed = self.elapsed
        # CPU seconds of this process spent on training batches (input pipeline threads included; monitoring,
        # previews and checkpoints excluded), summed over resumes: the time-to-quality axis, which stays
        # meaningful when other jobs share the CPU (wall time does not).
        self.cpu_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.checkpoint.cpu_seconds = self.cpu_seconds
        self.manager = tf.train.CheckpointManager(self.checkpoint, run_folder.checkpoint_folder(self.run_dir),
                                                  max_to_keep=config.keep_checkpoints)
        if self.chief_run_dir and self.chief_run_dir != self.run_dir:  # a worker: the chief's, when shared
            latest = run_folder.find_checkpoint(self.chief_run_dir, log=log) or latest
        if latest:
            run_folder.restore(self.checkpoint, latest, self.run_dir)
            log(f"resuming {self.run_dir} from step {int(self.model.step.numpy())}")
        self.best_on_test = None
        if config.keep_best_on_test:
            self.best_on_test = tf.train.CheckpointManager(
                self.checkpoint, run_folder.checkpoint_folder(self.run_dir, "best_on_test"), max_to_keep=1)

    # ---- the loop ----

    def hooks(self):
        """The built-in hooks in their order within a step, then the user's, then the stop request (last)."""
        return ([NaNGuard(), ProgressHook(), TrainLogHook(), CheckpointHook(), PreviewHook(), MonitorHook(),
                 ThresholdHook()] + self.extra_hooks + [StopHook()])

    def run(self):
        try:
            return self._run()
        except BaseException:
            if int(self.model.step.numpy()) == 0:  # failed before its first step (e.g. a training image that
                self._discard_if_new(self.run_dir)  # does not decode): a new run leaves nothing behind
            raise
        finally:
            run_folder.release_lock(self.run_dir)

    def _run(self):
        config, model = self.config, self.model
        start_step = int(model.step.numpy())
        if start_step >= config.steps:
            self.log(f"{self.run_dir} already reached step {start_step} of {config.steps}; nothing to train "
                     "(pass a larger --steps to continue)")
            self.finish()
            return self.run_dir
        images = load_train_images(self.spec, dataclasses.replace(self.files, train_paths=self.train_paths))
        # A resumed run draws a fresh stream (seed + step) instead of replaying the first batches.
        dataset = train_dataset(self.spec, images, config.batch_size, seed=config.seed + start_step,
                                interpolation=config.rotation_interpolation, fill_mode=config.rotation_fill)
        if self.strategy is not None:  # each replica gets its consecutive slice of every global batch
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            dataset = self.strategy.experimental_distribute_dataset(dataset.with_options(options))
        batches = iter(dataset)
        hooks = self.hooks()
        self.writer = tf.summary.create_file_writer(run_folder.path(self.run_dir, run_folder.TENSORBOARD_DIR))
        self.progress = Progress(config.steps, start_step)
        self.step = step = start_step
        try:
            with contextlib.ExitStack() as running:  # each hook begun is closed when the loop is left, however
                for hook in hooks:
                    hook.set_job(self)
                    hook.on_train_begin({"step": start_step, "steps": config.steps})
                    running.callback(hook.close)
                self.interval = LoggingInterval(config.batch_size)
                elapsed_at_start, wall_start = float(self.elapsed.numpy()), time.monotonic()
                self.log(f"training {config.category} ({self.spec.type}, {len(self.train_paths)} images, model "
                         f"input {self.spec.patch_size}px) from step {step} to {config.steps}; run folder "
                         f"{self.run_dir}")
                while step < config.steps:
                    cpu_before = time.process_time()
                    x = next(batches)
                    kind, results = model.train_batch(x)
                    losses = {name: float(value) for name, value in results.items()}  # waits for the update
                    self.cpu_seconds.assign_add(time.process_time() - cpu_before)
                    self.step = step = step + 1
                    self.elapsed.assign(elapsed_at_start + time.monotonic() - wall_start)
                    self.interval.add(losses)
                    logs = {"kind": kind, "losses": losses, "means": self.interval.means(),
                            "images_per_s": self.interval.images_per_s(), "batch": x}
                    for hook in hooks:  # NaN check, progress, log row, checkpoint, preview, monitoring, the
                        hook.on_batch_end(step, logs)  # user's hooks, and the stop request last
            for hook in hooks:  # the last checkpoint and preview, the hold-out scores, the user's hooks
                hook.on_train_end({"step": step, "steps": config.steps})
        finally:
            self.writer.close()
        self._say_done()
        return self.run_dir

    # ---- scoring (previews, monitoring, threshold) ----

    def scorer(self, weights="ema"):
        """One Scorer per weight set for the whole job, so its tf.function is traced once (previews,
        monitoring and the threshold scores all reuse it; the networks it holds are updated in place)."""
        model = self._scoring_model()
        scorers = self.__dict__.setdefault("_scorers", {})
        if weights not in scorers:
            scorers[weights] = Scorer(model, weights=weights, feature_layer=self.config.feature_layer)
        return scorers[weights]

    def _scoring_model(self):
        """The model to score with. Under mixed precision: a float32 copy holding the current weights, so the
        threshold scores (and previews, monitoring) are computed as evaluate.py and predict.py compute them."""
        if self.config.precision == "float32":
            return self.model
        if not hasattr(self, "_float32_model"):
            self._float32_model = CBiGAN(self.config, self.spec.patch_size, precision="float32")
        for name in ("encoder", "generator", "critic", "ema_encoder", "ema_generator"):
            getattr(self._float32_model, name).set_weights(getattr(self.model, name).get_weights())
        return self._float32_model

    def finish(self):
        """A run with nothing left to train: the hold-out scores of the threshold (ThresholdHook's), and where
        things are."""
        write_holdout_scores(self)
        self._say_done()

    def _say_done(self):
        elapsed = format_duration(float(self.elapsed.numpy()))
        self.log(f"done: step {int(self.model.step.numpy())} in {elapsed} of training.\n"
                 f"  run folder:  {self.run_dir} (config.json, train_log.csv, checkpoints/, previews/, "
                 "tensorboard/)\n"
                 f"  next:        python evaluate.py --run {self.run_dir}")


def train(config, explicit_flags=(), log=print, preset_settings=None, hooks=()):
    """Train (or resume) the run of config; hooks: the user's, run after the built-in ones (training/hooks.py).
    Returns the run folder."""
    return TrainingJob(config, explicit_flags, log, preset_settings, hooks).run()
