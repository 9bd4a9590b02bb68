"""The training job: data, model, checkpoints, logs, previews; resumable and interruptible.

Order of work per run: resolve the config (resume rules), load and validate the data, build the model,
restore the last checkpoint, stream batches through the d_iter/1 schedule, and at the end score the held-out
training images for the decision threshold that predict.py uses.
"""
import contextlib
import csv
import dataclasses
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from config import TrainConfig
from data.categories import spec_for
from data.sources import find_files
from data.images import check_category_files, non_square_note, to_model_range_numpy
from data.patches import to_patches_numpy
from data.streams import iter_test_chunks, load_train_images, train_dataset
from errors import ConfigError, TrainingDiverged
from models.scoring import DEFAULT_LAMBDAS, Scorer
from models import distributed
from models.cbigan import CBiGAN
import run_folder
from training import previews
from training.interrupt import Interrupted, StopRequest
from training.progress import Progress, format_duration
from training.resume import reconcile_with_saved
from run_folder.monitor_log import MonitorLog, monitor_lambdas, write_scalars as write_monitor_scalars
from run_folder.train_log import IntervalMeans, TrainLog, first_non_finite

from run_folder import BEST_ON_TEST_DIR, CHECKPOINT_DIR, CONFIG_FILE, HOLDOUT_SCORES_FILE  # noqa: F401
PREVIEW_SAMPLES = 8
PROGRESS_LOSSES = ("critic_loss", "gradient_penalty", "adversarial_loss", "image_reconstruction")


def split_holdout(train_paths, fraction):
    """Every k-th training image (k = round(1 / fraction)) is held out to choose the decision threshold."""
    if fraction <= 0:
        return list(train_paths), []
    k = max(2, int(round(1.0 / fraction)))
    holdout = [p for i, p in enumerate(train_paths) if i % k == k - 1]
    kept = [p for i, p in enumerate(train_paths) if i % k != k - 1]
    return kept, holdout


def resolve_config(config, explicit_flags=()):
    """Fill the run folder name; on an existing run folder, merge with its saved config (resume)."""
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



def worker_run_dir(run_dir, strategy):
    """Where a non-chief worker of a multi-worker cluster writes (its checkpoints are needed by the collective
    save; its logs and previews repeat the chief's): a local temporary folder, stable across restarts."""
    task_type, task_id = distributed.task(strategy)
    name = os.path.basename(os.path.normpath(run_dir))
    return os.path.join(tempfile.gettempdir(), "cbigan-workers", f"{name}-{task_type}{task_id}")


class TrainingJob:
    def __init__(self, config, explicit_flags=(), log=print, preset_settings=None):
        """preset_settings: {field: value} that --recipe and --protocol set (recorded in config.json as
        "preset_settings"; a resumed run keeps the record of its first start)."""
        self.log = log
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
        train_log = TrainLog(run_folder.path(self.run_dir, run_folder.TRAIN_LOG_FILE), start_step)
        if config.monitor_every:
            self.monitor_log = MonitorLog(run_folder.path(self.run_dir, run_folder.MONITOR_FILE), start_step,
                                          selects=config.keep_best_on_test)
        writer = tf.summary.create_file_writer(run_folder.path(self.run_dir, run_folder.TENSORBOARD_DIR))
        progress = Progress(config.steps, start_step)
        interval = IntervalMeans()
        interval_start, interval_steps = time.monotonic(), 0
        elapsed_at_start, wall_start = float(self.elapsed.numpy()), time.monotonic()
        step = start_step
        self.log(f"training {config.category} ({self.spec.type}, {len(self.train_paths)} images, model input "
                 f"{self.spec.patch_size}px) from step {step} to {config.steps}; run folder {self.run_dir}")
        try:
            with StopRequest(announce=progress.message) as stop:
                while step < config.steps:
                    cpu_before = time.process_time()
                    x = next(batches)
                    kind, results = model.train_batch(x)
                    values = {name: float(value) for name, value in results.items()}  # waits for the update
                    self.cpu_seconds.assign_add(time.process_time() - cpu_before)
                    bad = first_non_finite(values)
                    if bad is not None:
                        raise TrainingDiverged(
                            f"{bad} became {values[bad]} at step {step + 1} ({kind} update); stopped without "
                            f"saving. The last good checkpoint is in {self.manager.directory}. Try a lower --lr "
                            "or a different --seed.")
                    step += 1
                    stop.step = step
                    interval.add(values)
                    interval_steps += 1
                    self.elapsed.assign(elapsed_at_start + time.monotonic() - wall_start)
                    now = time.monotonic()
                    rate = interval_steps / max(now - interval_start, 1e-9)
                    means = interval.means()
                    progress.update(step, rate * config.batch_size,
                                    {k: means[k] for k in PROGRESS_LOSSES if k in means})
                    if step % config.log_every == 0 or step == config.steps:
                        self._log_row(train_log, writer, progress, step, means, rate * config.batch_size)
                        interval.reset()
                        interval_start, interval_steps = time.monotonic(), 0
                    if step % config.checkpoint_every == 0:
                        run_folder.save_checkpoint(self.manager, step)
                    if config.preview_every and step % config.preview_every == 0:
                        self.write_previews(step, distributed.local_batch(self.strategy, x), writer)
                    if config.monitor_every and step % config.monitor_every == 0:
                        self.monitor(step, writer)
                    if stop.requested:
                        with stop.saving():  # a second signal waits for the checkpoint to be complete
                            run_folder.save_checkpoint(self.manager, step)
                        progress.close()
                        raise Interrupted(stop.signal_name,
                                          f"{stop.signal_name}: checkpoint written at step {step}; run the same "
                                          "command again to resume")
        except BaseException:
            writer.close()
            raise
        finally:
            train_log.close()
        progress.close()
        if self.manager.latest_checkpoint is None or not self.manager.latest_checkpoint.endswith(f"-{step}"):
            run_folder.save_checkpoint(self.manager, step)
        # The final preview, in TensorBoard too (unless the loop just wrote this step's): a run shorter than
        # --preview_every has it as its only one.
        previewed = config.preview_every and step % config.preview_every == 0
        self.write_previews(step, distributed.local_batch(self.strategy, x), writer=None if previewed else writer)
        writer.close()
        self.finish()
        return self.run_dir

    def _log_row(self, train_log, writer, progress, step, means, images_per_s):
        train_log.write(step, means, images_per_s, float(self.elapsed.numpy()), float(self.cpu_seconds.numpy()))
        with writer.as_default(step=step):
            for name, value in means.items():
                tf.summary.scalar(f"train/{name}", value)
            tf.summary.scalar("train/images_per_s", images_per_s)
        progress.update(step, images_per_s, {k: means[k] for k in PROGRESS_LOSSES if k in means}, force=True)

    # ---- previews, monitoring, threshold ----

    def _scorer(self, weights="ema"):
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

    def _preview_test_samples(self):
        if not hasattr(self, "_preview_test"):
            good = [i for i in self.files.test_items if i.label == 0][:PREVIEW_SAMPLES // 2]
            bad = [i for i in self.files.test_items if i.label == 1][:PREVIEW_SAMPLES - len(good)]
            subset = dataclasses.replace(self.files, test_items=good + bad)
            chunks = list(iter_test_chunks(self.spec, subset, chunk_size=PREVIEW_SAMPLES))
            self._preview_test = chunks[0] if chunks else None
        return self._preview_test

    def write_previews(self, step, train_batch, writer):
        folder = run_folder.path(self.run_dir, run_folder.PREVIEWS_DIR)
        scorer = self._scorer()
        batch = np.asarray(train_batch[:PREVIEW_SAMPLES])
        out = scorer.score_inputs(batch, keep_reconstructions=True)
        unit = "patches" if self.spec.type == "texture" else "images"
        pictures = {"train": previews.reconstruction_grid(batch, out["reconstruction"], out["error_map"],
                                                          title=f"training {unit}, step {step}, EMA weights")}
        test = self._preview_test_samples()
        if test is not None:
            scored = scorer.score_images(test["image"], self.spec.image_size, lambdas=(),
                                         keep_reconstructions=True)
            inputs = to_model_range_numpy(test["image_uint8"])
            pictures["test"] = previews.reconstruction_grid(inputs, scored["reconstruction"],
                                                            scored["anomaly_map"],
                                                            title=f"test images, step {step}, EMA weights",
                                                            column_titles=list(test["defect_type"]))
        z = np.random.default_rng(self.config.seed).standard_normal((PREVIEW_SAMPLES, self.config.latent_size))
        samples = scorer.generator(tf.constant(z, tf.float32), training=False).numpy()
        pictures["samples"] = previews.samples_grid(samples, title=f"samples G(z), step {step}, EMA generator")
        for name, picture in pictures.items():
            previews.save_png(picture, os.path.join(folder, f"{name}_{step:07d}.png"))
        if writer is not None:
            with writer.as_default(step=step):
                for name, picture in pictures.items():
                    tf.summary.image(f"previews/{name}", picture[None], step=step)

    def monitor(self, step, writer=None):
        """Test-set monitoring (metrics.csv): labelled as monitoring; the default run never selects on it. One
        row per lambda of monitor_lambdas (the run's score_lambda first); --keep_best_on_test uses score_lambda.
        writer: also as TensorBoard scalars under monitor/ (run_folder.monitor_log.write_scalars)."""
        from evaluation.diagnostics import GoodReconstructions
        from evaluation.image_metrics import image_auroc
        from evaluation.metric_inputs import MetricUndefined
        scorer = self._scorer()
        lambdas = monitor_lambdas(self.config.score_lambda)
        labels, scores = [], {lam: [] for lam in lambdas}
        good = GoodReconstructions(self.spec.image_size)  # reconstruction specificity, as evaluate.py computes it
        for chunk in iter_test_chunks(self.spec, self.files):
            keep = good.wants_more
            out = scorer.score_images(chunk["image"], self.spec.image_size, lambdas=lambdas,
                                      keep_reconstructions=keep)
            if keep:
                good.add(chunk, out)
            labels.append(chunk["label"])
            for lam in lambdas:
                scores[lam].append(out["scores"][lam])
        labels = np.concatenate(labels)
        try:
            aurocs = {lam: image_auroc(labels, np.concatenate(scores[lam])) for lam in lambdas}
        except MetricUndefined as err:
            self.log(f"monitoring skipped: {err}")
            return
        best_so_far = self.monitor_log.best(self.config.score_lambda)
        specificity = good.specificity()
        self.monitor_log.append(step, "ema", aurocs, None if specificity is None else specificity["ratio"])
        if writer is not None:
            write_monitor_scalars(writer, step, self.config.score_lambda, aurocs,
                                  None if specificity is None else specificity["ratio"])
        auroc = round(aurocs[self.config.score_lambda], 6)  # as metrics.csv holds it: a tie keeps the earlier
        if self.best_on_test is not None and (best_so_far is None or auroc > best_so_far):
            run_folder.save_checkpoint(self.best_on_test, step)

    def holdout_inputs(self):
        files = dataclasses.replace(self.files, train_paths=self.holdout_paths)
        images = load_train_images(self.spec, files, verbose=False)
        patches = np.stack([to_patches_numpy(image, self.spec.patch_size) for image in images])
        return to_model_range_numpy(patches)

    def finish(self):
        """Score the held-out training images (EMA weights) for predict.py's threshold; print where things are."""
        if self.holdout_paths:
            scored = self._scorer().score_images(self.holdout_inputs(), self.spec.image_size,
                                                 lambdas=DEFAULT_LAMBDAS)
            # paths byte for byte (a file name that is not UTF-8 keeps its bytes), so predict.py can rescore them
            with run_folder.atomic_write(run_folder.path(self.run_dir, HOLDOUT_SCORES_FILE), newline="",
                                         errors="surrogateescape") as handle:
                writer = csv.writer(handle)
                lambdas = sorted(scored["scores"])
                writer.writerow(["path", "reconstruction_error", "feature_error"]
                                + [f"score_lambda_{lam:g}" for lam in lambdas])
                for i, path in enumerate(self.holdout_paths):
                    writer.writerow([path, f"{scored['reconstruction_error'][i]:.6g}",
                                     f"{scored['feature_error'][i]:.6g}"]
                                    + [f"{scored['scores'][lam][i]:.6g}" for lam in lambdas])
        elapsed = format_duration(float(self.elapsed.numpy()))
        self.log(f"done: step {int(self.model.step.numpy())} in {elapsed} of training.\n"
                 f"  run folder:  {self.run_dir} (config.json, train_log.csv, checkpoints/, previews/, "
                 "tensorboard/)\n"
                 f"  next:        python evaluate.py --run {self.run_dir}")


def train(config, explicit_flags=(), log=print, preset_settings=None):
    return TrainingJob(config, explicit_flags, log, preset_settings).run()
