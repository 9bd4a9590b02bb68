"""Plots of one evaluated run (PNG, matplotlib's Agg canvas; no display and no pyplot global state needed).

roc.png        ROC curve of the image scores at one lambda, with the point of maximum balanced accuracy.
histogram.png  score histograms of good vs anomalous test images at one lambda, with the threshold line.
examples.png   a grid of test images: input, reconstruction G(E(x)), anomaly map (per-pixel L1 error, one
               shared colour scale with its colour bar); the outline of the ground-truth mask is drawn on the
               input and on the anomaly map when the category has masks.

Each *_plot function writes its PNG and returns the path; the *_figure function beside it returns the
matplotlib Figure (tests inspect its titles, labels, colour bar and contours).
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from data.images import from_model_range_numpy
from run_folder import atomic_write


def _save(figure, path):
    """PNG written to a temporary file beside path and renamed (never a truncated picture)."""
    FigureCanvasAgg(figure)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, dpi=100, format="png")
    return path


def roc_plot(path, labels, scores, title="", auroc=None, threshold=None):
    """roc_figure written to path."""
    return _save(roc_figure(labels, scores, title, auroc, threshold), path)


def roc_figure(labels, scores, title="", auroc=None, threshold=None):
    """ROC curve (anomalous = positive); marks the ROC point of the threshold (score >= threshold) if given."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot(1, 1, 1)
    label = "ROC" if auroc is None else f"ROC (AUROC {auroc:.3f})"
    axes.plot(fpr, tpr, color="tab:blue", lw=2, label=label)
    axes.plot([0, 1], [0, 1], color="gray", lw=1, ls="--", label="chance")
    if threshold is not None:
        called = scores >= threshold
        point_tpr = float(called[labels].mean())
        point_fpr = float(called[~labels].mean())
        balanced = (point_tpr + 1.0 - point_fpr) / 2.0
        axes.plot([point_fpr], [point_tpr], "o", color="tab:red",
                  label=f"max balanced accuracy {balanced:.3f}\n(threshold {threshold:.4g})")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_xlabel("false positive rate (good images called anomalous)")
    axes.set_ylabel("true positive rate (anomalous images found)")
    axes.set_title(title or "ROC curve of the image scores", fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure


def histogram_plot(path, labels, scores, threshold=None, title=""):
    """histogram_figure written to path."""
    return _save(histogram_figure(labels, scores, threshold, title), path)


def histogram_figure(labels, scores, threshold=None, title=""):
    """Overlaid histograms of the scores of good and anomalous images, on shared bins, and the threshold."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot(1, 1, 1)
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        high = low + 1.0
    bins = np.linspace(low, high, max(10, min(50, len(scores) // 2)) + 1)
    for selected, name, color in ((~labels, "good", "tab:green"), (labels, "anomalous", "tab:red")):
        if selected.any():
            axes.hist(scores[selected], bins=bins, alpha=0.55, color=color, label=f"{name} ({int(selected.sum())})")
    if threshold is not None:
        axes.axvline(threshold, color="black", ls="--", lw=1.5, label=f"threshold {threshold:.4g}")
    axes.set_xlabel("anomaly score A(x)")
    axes.set_ylabel("test images")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_title(title or "image scores of the test set", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


MASK_COLOUR = "cyan"
MAP_LABEL = "anomaly map: per-pixel L1 error |x - G(E(x))|"


def examples_plot(path, images, reconstructions, maps, titles, masks=None, title=""):
    """examples_figure written to path."""
    return _save(examples_figure(images, reconstructions, maps, titles, masks, title), path)


def examples_figure(images, reconstructions, maps, titles, masks=None, title=""):
    """One row per example: input, reconstruction, anomaly map; a colour bar for the maps; the outline of the
    mask (where it is non-empty) on the input and the anomaly map.

    images: uint8 (N, S, S, 3); reconstructions: float (N, S, S, 3) in [-1, 1]; maps: (N, S, S) non-negative,
    shown on one colour scale (0 to the 99.5th percentile of all maps); masks: (N, S, S) {0, 1} or None;
    titles: one string per row (e.g. "crack, score 12.3").
    """
    n = len(images)
    outline = " (mask outlined)" if masks is not None else ""
    columns = ["input" + outline, "reconstruction G(E(x))", "anomaly map" + outline]
    figure = Figure(figsize=(2.2 * len(columns) + 0.9, 2.2 * n + (0.6 if title else 0.3)), layout="constrained")
    vmax = max(float(np.percentile(np.asarray(maps, np.float32), 99.5)), 1e-6) if n else 1.0
    recon_uint8 = from_model_range_numpy(reconstructions)
    map_axes, shown = [], None
    for i in range(n):
        panels = [(images[i], {}), (recon_uint8[i], {}), (maps[i], dict(cmap="inferno", vmin=0.0, vmax=vmax))]
        for j, (picture, options) in enumerate(panels):
            axes = figure.add_subplot(n, len(columns), i * len(columns) + j + 1)
            image = axes.imshow(picture, interpolation="nearest", **options)
            if j == 2:
                map_axes.append(axes)
                shown = image
            if masks is not None and j != 1 and np.any(masks[i] > 0.5):
                axes.contour(np.asarray(masks[i], np.float32), levels=[0.5], colors=MASK_COLOUR, linewidths=1.0)
            axes.set_xticks([])
            axes.set_yticks([])
            if i == 0:
                axes.set_title(columns[j], fontsize=9)
            if j == 0:
                axes.set_ylabel(titles[i], fontsize=8)
    if shown is not None:
        bar = figure.colorbar(shown, ax=map_axes, shrink=0.9, aspect=20 * max(n, 1))
        bar.set_label(MAP_LABEL + " (one scale for all rows)", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure
