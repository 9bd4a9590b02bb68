"""The training loop's hooks: one concern each, in the shape of Keras callbacks (keras.callbacks.Callback).

TrainingJob's loop (training/loop.py) does the update and nothing else; everything around it is a hook, called
in this order: the built-in hooks (NaNGuard, ProgressHook, TrainLogHook, CheckpointHook, then PreviewHook,
MonitorHook and ThresholdHook of training/scoring_hooks.py), the user's hooks (train(config, hooks=[...])), and
StopHook last. Each hook sees, through self.job, the TrainingJob: config, spec, files, model, run_dir, log,
manager (checkpoints/), strategy, elapsed and cpu_seconds (tf.Variables saved with the checkpoints), step (the
last completed step), and during the loop writer (TensorBoard), progress (the progress line) and interval (the
current logging interval).

    set_job(job)                 before anything else
    on_train_begin(logs)         once, before the first batch; logs: {"step": the step training starts from
                                 (0, or where it resumes), "steps": the step it trains to}
    on_batch_end(step, logs)     after each update (step: the updates done, counted from the run's first start);
                                 logs: {"kind": "critic" or "generator_encoder", "losses": {name: float} of this
                                 update, "means": {name: float} over the logging interval so far (what
                                 train_log.csv writes at the end of the interval), "images_per_s": over the
                                 interval, "batch": the batch of this update}
    close()                      once the loop is left, however (the last step, an error, a signal), in reverse
                                 order, for the hooks whose on_train_begin ran: what on_train_begin opened
    on_train_end(logs)           after close(), only when the last step is done (not after an error or a
                                 signal); logs: {"step": the last step, "steps": the same}

A run with nothing left to train (its --steps already reached) calls no hook: it only writes the hold-out
scores (TrainingJob.finish). The CPU seconds of a batch (next batch and update) are counted by the loop, before
any hook runs.
"""
import time

import tensorflow as tf

import run_folder
from errors import Interrupted, TrainingDiverged
from run_folder.train_log import IntervalMeans, TrainLog, first_non_finite
from training.interrupt import StopRequest

PROGRESS_LOSSES = ("critic_loss", "gradient_penalty", "adversarial_loss", "image_reconstruction")


class Hook:
    """The base of every hook: methods that do nothing (override the ones needed)."""
    job = None

    def set_job(self, job):
        self.job = job

    def on_train_begin(self, logs=None):
        pass

    def on_batch_end(self, step, logs=None):
        pass

    def close(self):
        pass

    def on_train_end(self, logs=None):
        pass


class LoggingInterval:
    """The losses' means and the images per second since the last train_log.csv row (the loop adds each update;
    TrainLogHook ends the interval once its row is written)."""

    def __init__(self, batch_size):
        self.batch_size = batch_size
        self.sums = IntervalMeans()
        self.start, self.steps = time.monotonic(), 0

    def add(self, losses):
        self.sums.add(losses)
        self.steps += 1

    def means(self):
        return self.sums.means()

    def images_per_s(self):
        rate = self.steps / max(time.monotonic() - self.start, 1e-9)
        return rate * self.batch_size

    def reset(self):
        self.sums.reset()
        self.start, self.steps = time.monotonic(), 0


def progress_losses(means):
    return {k: means[k] for k in PROGRESS_LOSSES if k in means}


class NaNGuard(Hook):
    """The first hook of a step: a NaN or infinite loss stops the run before anything of that step is written
    (no log row, no checkpoint); the last good checkpoint stays the newest."""

    def on_batch_end(self, step, logs=None):
        losses = logs["losses"]
        bad = first_non_finite(losses)
        if bad is not None:
            raise TrainingDiverged(
                f"{bad} became {losses[bad]} at step {step} ({logs['kind']} update); stopped without "
                f"saving. The last good checkpoint is in {self.job.manager.directory}. Try a lower --lr "
                "or a different --seed.")


class ProgressHook(Hook):
    """The progress line (training/progress.py) after every step; TrainLogHook forces one at each log row."""

    def on_batch_end(self, step, logs=None):
        self.job.progress.update(step, logs["images_per_s"], progress_losses(logs["means"]))

    def on_train_end(self, logs=None):
        self.job.progress.close()


class TrainLogHook(Hook):
    """train_log.csv: one row every --log_every steps and at the last step (rows after the restored step are
    dropped first, on resume), the same means as TensorBoard scalars train/<loss> and train/images_per_s, and
    the row's progress line (the only one when the output is not a terminal)."""

    def on_train_begin(self, logs=None):
        self.train_log = TrainLog(run_folder.path(self.job.run_dir, run_folder.TRAIN_LOG_FILE), logs["step"])

    def on_batch_end(self, step, logs=None):
        job = self.job
        if not (step % job.config.log_every == 0 or step == job.config.steps):
            return
        means, images_per_s = logs["means"], logs["images_per_s"]
        self.train_log.write(step, means, images_per_s, float(job.elapsed.numpy()), float(job.cpu_seconds.numpy()))
        with job.writer.as_default(step=step):
            for name, value in means.items():
                tf.summary.scalar(f"train/{name}", value)
            tf.summary.scalar("train/images_per_s", images_per_s)
        job.progress.update(step, images_per_s, progress_losses(means), force=True)
        job.interval.reset()

    def close(self):
        self.train_log.close()


class CheckpointHook(Hook):
    """checkpoints/ every --checkpoint_every steps, and at the end unless the last step was just saved (StopHook
    saves the interrupted step)."""

    def on_batch_end(self, step, logs=None):
        if step % self.job.config.checkpoint_every == 0:
            run_folder.save_checkpoint(self.job.manager, step)

    def on_train_end(self, logs=None):
        manager, step = self.job.manager, logs["step"]
        if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(f"-{step}"):
            run_folder.save_checkpoint(manager, step)


class StopHook(Hook):
    """SIGINT / SIGTERM (training/interrupt.py): caught from the first batch until the loop is left, and acted
    on last in a step, once every other hook has done that step's work: the checkpoint of that step (a second
    signal waits for it), then errors.Interrupted (exit 130 / 143) with the message to resume."""

    def on_train_begin(self, logs=None):
        start = logs["step"]
        # the first message names the last step completed by this process (none before its first one)
        self.request = StopRequest(announce=self.job.progress.message,
                                   current_step=lambda: self.job.step if self.job.step > start else None)
        self.request.__enter__()

    def on_batch_end(self, step, logs=None):
        request = self.request
        if not request.requested:
            return
        with request.saving():  # a second signal waits for the checkpoint to be complete
            run_folder.save_checkpoint(self.job.manager, step)
        self.job.progress.close()
        raise Interrupted(request.signal_name, f"{request.signal_name}: checkpoint written at step {step}; run "
                                               "the same command again to resume")

    def close(self):
        self.request.__exit__(None, None, None)
