"""The hooks that score the model while it trains (training/hooks.py describes hooks): previews, test-set
monitoring, and the hold-out scores of the decision threshold at the end. All score with the EMA weights through
the job's one Scorer (TrainingJob.scorer), as evaluate.py and predict.py do."""
import csv
import dataclasses
import os

import numpy as np
import tensorflow as tf

import run_folder
from data.images import to_model_range_numpy
from data.patches import to_patches_numpy
from data.streams import iter_test_chunks, load_train_images
from models import distributed
from models.scoring import DEFAULT_LAMBDAS
from run_folder.monitor_log import MonitorLog, monitor_lambdas, write_scalars as write_monitor_scalars
from training import previews
from training.hooks import Hook

PREVIEW_SAMPLES = 8


class PreviewHook(Hook):
    """previews/ (train, test and samples pictures, also as TensorBoard images) every --preview_every steps, and
    at the end (in TensorBoard too, unless that step's were just written: a run shorter than --preview_every
    has it as its only one)."""

    def on_batch_end(self, step, logs=None):
        self.batch = logs["batch"]  # the final preview shows the last one
        every = self.job.config.preview_every
        if every and step % every == 0:
            self.write_previews(step, self.job.writer)

    def on_train_end(self, logs=None):
        step, every = logs["step"], self.job.config.preview_every
        previewed = every and step % every == 0
        self.write_previews(step, writer=None if previewed else self.job.writer)

    def _test_samples(self):
        """Up to PREVIEW_SAMPLES test images, half of them good (the same ones at every preview)."""
        if not hasattr(self, "_test"):
            files, spec = self.job.files, self.job.spec
            good = [i for i in files.test_items if i.label == 0][:PREVIEW_SAMPLES // 2]
            bad = [i for i in files.test_items if i.label == 1][:PREVIEW_SAMPLES - len(good)]
            subset = dataclasses.replace(files, test_items=good + bad)
            chunks = list(iter_test_chunks(spec, subset, chunk_size=PREVIEW_SAMPLES))
            self._test = chunks[0] if chunks else None
        return self._test

    def write_previews(self, step, writer):
        job = self.job
        folder = run_folder.path(job.run_dir, run_folder.PREVIEWS_DIR)
        scorer = job.scorer()
        batch = np.asarray(distributed.local_batch(job.strategy, self.batch)[:PREVIEW_SAMPLES])
        out = scorer.score_inputs(batch, keep_reconstructions=True)
        unit = "patches" if job.spec.type == "texture" else "images"
        pictures = {"train": previews.reconstruction_grid(batch, out["reconstruction"], out["error_map"],
                                                          title=f"training {unit}, step {step}, EMA weights")}
        test = self._test_samples()
        if test is not None:
            scored = scorer.score_images(test["image"], job.spec.image_size, lambdas=(), keep_reconstructions=True)
            inputs = to_model_range_numpy(test["image_uint8"])
            pictures["test"] = previews.reconstruction_grid(inputs, scored["reconstruction"],
                                                            scored["anomaly_map"],
                                                            title=f"test images, step {step}, EMA weights",
                                                            column_titles=list(test["defect_type"]))
        z = np.random.default_rng(job.config.seed).standard_normal((PREVIEW_SAMPLES, job.config.latent_size))
        samples = scorer.generator(tf.constant(z, tf.float32), training=False).numpy()
        pictures["samples"] = previews.samples_grid(samples, title=f"samples G(z), step {step}, EMA generator")
        for name, picture in pictures.items():
            previews.save_png(picture, os.path.join(folder, f"{name}_{step:07d}.png"))
        if writer is not None:
            with writer.as_default(step=step):
                for name, picture in pictures.items():
                    tf.summary.image(f"previews/{name}", picture[None], step=step)


class MonitorHook(Hook):
    """Test-set monitoring every --monitor_every steps (metrics.csv): labelled as monitoring; the default run never
    selects on it. One row per lambda of monitor_lambdas (the run's score_lambda first), also as TensorBoard
    scalars under monitor/ (run_folder.monitor_log.write_scalars); --keep_best_on_test keeps the checkpoint of
    the highest AUROC at score_lambda in checkpoints_best_on_test/ (a tie keeps the earlier)."""

    def on_train_begin(self, logs=None):
        config = self.job.config
        if config.monitor_every:  # rows after the restored step are dropped (on resume)
            self.monitor_log = MonitorLog(run_folder.path(self.job.run_dir, run_folder.MONITOR_FILE), logs["step"],
                                          selects=config.keep_best_on_test)

    def on_batch_end(self, step, logs=None):
        every = self.job.config.monitor_every
        if every and step % every == 0:
            self.monitor(step)

    def monitor(self, step):
        from evaluation.diagnostics import GoodReconstructions
        from evaluation.image_metrics import image_auroc
        from evaluation.metric_inputs import MetricUndefined
        job, score_lambda = self.job, self.job.config.score_lambda
        scorer = job.scorer()
        lambdas = monitor_lambdas(score_lambda)
        labels, scores = [], {lam: [] for lam in lambdas}
        good = GoodReconstructions(job.spec.image_size)  # reconstruction specificity, as evaluate.py computes it
        for chunk in iter_test_chunks(job.spec, job.files):
            keep = good.wants_more
            out = scorer.score_images(chunk["image"], job.spec.image_size, lambdas=lambdas,
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
            job.log(f"monitoring skipped: {err}")
            return
        best_so_far = self.monitor_log.best(score_lambda)
        specificity = good.specificity()
        ratio = None if specificity is None else specificity["ratio"]
        self.monitor_log.append(step, "ema", aurocs, ratio)
        write_monitor_scalars(job.writer, step, score_lambda, aurocs, ratio)
        auroc = round(aurocs[score_lambda], 6)  # as metrics.csv holds it: a tie keeps the earlier
        if job.best_on_test is not None and (best_so_far is None or auroc > best_so_far):
            run_folder.save_checkpoint(job.best_on_test, step)


class ThresholdHook(Hook):
    """At the end: the hold-out scores (holdout_scores.csv) from which predict.py and export.py choose the
    decision threshold."""

    def on_train_end(self, logs=None):
        write_holdout_scores(self.job)


def holdout_inputs(job):
    """The held-out training images (split_holdout) as model inputs: patches in [-1, 1]."""
    files = dataclasses.replace(job.files, train_paths=job.holdout_paths)
    images = load_train_images(job.spec, files, verbose=False)
    patches = np.stack([to_patches_numpy(image, job.spec.patch_size) for image in images])
    return to_model_range_numpy(patches)


def write_holdout_scores(job):
    """Score the held-out training images (EMA weights) for predict.py's threshold (nothing when none is held
    out); the file is replaced atomically, so a failed write keeps the previous one."""
    if not job.holdout_paths:
        return
    scored = job.scorer().score_images(holdout_inputs(job), job.spec.image_size, lambdas=DEFAULT_LAMBDAS)
    # paths byte for byte (a file name that is not UTF-8 keeps its bytes), so predict.py can rescore them
    with run_folder.atomic_write(run_folder.path(job.run_dir, run_folder.HOLDOUT_SCORES_FILE), newline="",
                                 errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        lambdas = sorted(scored["scores"])
        writer.writerow(["path", "reconstruction_error", "feature_error"]
                        + [f"score_lambda_{lam:g}" for lam in lambdas])
        for i, path in enumerate(job.holdout_paths):
            writer.writerow([path, f"{scored['reconstruction_error'][i]:.6g}", f"{scored['feature_error'][i]:.6g}"]
                            + [f"{scored['scores'][lam][i]:.6g}" for lam in lambdas])
