"""evaluate.py's headline metrics as TensorBoard scalars in the run's tensorboard/ folder, at the checkpoint's step.

From the metrics.csv row at the run's default lambda (EvalSummary.at_default): image AUROC, balanced accuracy,
and pixel AUROC / AUPRO when the test set has masks. Tags: eval/<variant>/<metric>, where the variant names what
was evaluated: the weights (ema, last), then the checkpoint and the image score when they are not the defaults,
e.g. eval/ema/image_auroc, eval/last_best_on_test/image_auroc, eval/ema_map_max/image_auroc. Evaluating the same
variant of the same step again adds a point at the same step (TensorBoard shows the latest).
"""
import os

import run_folder

METRICS = ("image_auroc", "balanced_accuracy", "pixel_auroc", "aupro")


def variant(summary):
    """The tag segment naming what was evaluated (weights, non-default checkpoint, non-default image score)."""
    from models import image_scores as IS
    parts = [summary.weights]
    if summary.checkpoint != "latest":
        parts.append(summary.checkpoint)
    if summary.image_score != IS.DEFAULT_IMAGE_SCORE:
        parts.append(IS.name(summary.image_score, summary.topk_percent or IS.DEFAULT_TOPK_PERCENT))
    return "_".join(parts)


def scalars(summary):
    """{tag: value} of the metrics present in the default-lambda row (empty when there is none)."""
    row = summary.at_default()
    if row is None:
        return {}
    prefix = f"eval/{variant(summary)}"
    return {f"{prefix}/{name}": float(row[name]) for name in METRICS if row.get(name) is not None}


def write_evaluation(summary):
    """Write the scalars into <run>/tensorboard/ at summary.step; returns {tag: value} as written."""
    import tensorflow as tf
    values = scalars(summary)
    if not values:
        return values
    folder = run_folder.path(summary.run_dir, run_folder.TENSORBOARD_DIR)
    os.makedirs(folder, exist_ok=True)
    writer = tf.summary.create_file_writer(folder)
    try:
        with writer.as_default(step=int(summary.step)):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)
    finally:
        writer.close()
    return values
