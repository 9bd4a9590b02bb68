"""The plots of one evaluation (evaluation/plots.py draws them): the ROC curve and the score histogram at the
run's default lambda (or its map image score), and examples: a few good and anomalous test images with their
reconstructions and anomaly maps."""
import dataclasses
import os

from data.streams import iter_test_chunks
from evaluation import plots
from evaluation.eval_files import EXAMPLES_FILE, HISTOGRAM_FILE, ROC_FILE
from models import image_scores as IS

EXAMPLES_GOOD = 3
EXAMPLES_ANOMALOUS = 5


def plot_title(run, step):
    """The plots' title: category, weights, step and the image score (or lambda)."""
    return f"{run.config.category}, {run.settings.weights} weights, step {step}, " + (
        f"{run.describe_score()} score" if run.map_score else f"lambda {run.default_lambda:g}")


def write_figures(eval_dir, scorer, run, step, test, by_lambda):
    """roc.png, histogram.png and examples.png into eval_dir (run: evaluation.run_inputs.RunInputs; test: its
    ScoredTestSet; by_lambda: run_metrics.image_metrics' first result)."""
    auroc, _, threshold = by_lambda[run.default_key]
    scores, text = test.chosen[run.default_key], plot_title(run, step)
    plots.roc_plot(os.path.join(eval_dir, ROC_FILE), test.labels, scores, title=text, auroc=auroc,
                   threshold=threshold)
    plots.histogram_plot(os.path.join(eval_dir, HISTOGRAM_FILE), test.labels, scores, threshold=threshold, title=text)
    examples(os.path.join(eval_dir, EXAMPLES_FILE), scorer, run, text)


def examples(path, scorer, run, title):
    """examples.png: the example_indices test images, rescored with their reconstructions kept."""
    spec, files, settings = run.spec, run.files, run.settings
    indices = example_indices(files.test_items)
    subset = dataclasses.replace(files, test_items=[files.test_items[i] for i in indices])
    chunk = next(iter_test_chunks(spec, subset, chunk_size=len(indices)))
    out = scorer.score_images(chunk["image"], spec.image_size, lambdas=(run.default_lambda,),
                              batch_size=int(settings.batch_size), keep_reconstructions=True)
    shown = out["scores"][run.default_lambda]
    if IS.is_map_score(settings.image_score):
        shown = IS.map_scores(out["anomaly_map"], settings.image_score, settings.topk_percent, run.sigma)
    titles = [f"{d}\nA = {s:.4g}" for d, s in zip(chunk["defect_type"], shown)]
    plots.examples_plot(path, chunk["image_uint8"], out["reconstruction"], out["anomaly_map"], titles,
                        masks=chunk["mask"] if files.has_masks else None, title=title)


def example_indices(items):
    """The first EXAMPLES_GOOD good images and up to EXAMPLES_ANOMALOUS anomalous ones, one defect type at a time."""
    good = [i for i, item in enumerate(items) if item.label == 0][:EXAMPLES_GOOD]
    by_type = {}
    for i, item in enumerate(items):
        if item.label == 1:
            by_type.setdefault(item.defect_type, []).append(i)
    anomalous, depth = [], 0
    while len(anomalous) < EXAMPLES_ANOMALOUS and any(depth < len(v) for v in by_type.values()):
        for indices in by_type.values():
            if depth < len(indices) and len(anomalous) < EXAMPLES_ANOMALOUS:
                anomalous.append(indices[depth])
        depth += 1
    return good + sorted(anomalous)
