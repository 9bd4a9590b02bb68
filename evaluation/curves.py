"""Training curves of several runs side by side (training_curves.png of `evaluate.py --run <folder of runs>`).

Panels, x = batches consumed: the image reconstruction loss L_R (eq. 11), the critic loss L_D (eq. 6), the
gradient penalty, and the test-set AUROC of the EMA weights at the run's score_lambda where the run was trained
with --monitor_every (monitoring only: it never selects a checkpoint). Read from each run's train_log.csv and
metrics.csv.

Each run keeps one colour and line style in all panels: up to 10 runs the tab10 colours (solid lines), more runs
a colormap sampled at as many points as there are runs with four line styles in turn, so no two runs look the
same whatever their number. One legend outside the panels; the AUROC axis spans [0.4, 1] (wider when a value lies
outside), so monitoring noise is not magnified into a trend.
"""
import os

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from config import TrainConfig
from errors import ConfigError
from evaluation.plots import _save
import run_folder
from run_folder.monitor_log import read_rows, rows_at_lambda

LOG_PANELS = (("image_reconstruction", "image reconstruction L_R (eq. 11)"),
              ("critic_loss", "critic loss L_D (eq. 6)"),
              ("gradient_penalty", "gradient penalty"))
MONITOR_PANEL = ("image_auroc", "test AUROC, EMA weights (monitoring)")
Y_LABELS = {"image_reconstruction": "L_R: L1 error per image (batch mean)",
            "critic_loss": "L_D (interval mean)",
            "gradient_penalty": "gradient penalty (interval mean)",
            "image_auroc": "image AUROC at the run's lambda"}
AUROC_RANGE = (0.4, 1.0)
LINE_STYLES = ("-", "--", "-.", ":")


def read_curves(run_dir):
    """{column: (steps, values)} of a run's train_log.csv panels and its monitoring AUROC; missing files or
    columns are left out (a run trained without --monitor_every has no AUROC curve)."""
    curves = {}
    log_path = run_folder.path(run_dir, run_folder.TRAIN_LOG_FILE)
    if os.path.isfile(log_path):
        log = pd.read_csv(log_path)
        for column, _ in LOG_PANELS:
            if column in log.columns:
                rows = log[["step", column]].dropna()
                curves[column] = (rows["step"].to_numpy(), rows[column].to_numpy())
    rows = read_rows(run_folder.path(run_dir, run_folder.MONITOR_FILE))
    if rows:
        monitored = rows_at_lambda(rows, _score_lambda(run_dir, rows))
        curves[MONITOR_PANEL[0]] = (np.array([s for s, _ in monitored]), np.array([a for _, a in monitored]))
    return curves


def _score_lambda(run_dir, rows):
    """The lambda the run scores with (config.json); without one, that of the first monitoring row."""
    try:
        return TrainConfig.load(run_dir)[0].score_lambda
    except ConfigError:
        return float(rows[0]["lambda"])


def run_styles(n):
    """n (colour, line style) pairs, all different: tab10 with solid lines up to 10 runs; above, the turbo
    colormap sampled at n points (no colour repeats) with LINE_STYLES in turn (neighbours differ in style too)."""
    if n <= 10:
        palette = matplotlib.colormaps["tab10"].colors
        return [(tuple(palette[i]), "-") for i in range(n)]
    colours = matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, n))
    return [(tuple(float(c) for c in colours[i][:3]), LINE_STYLES[i % len(LINE_STYLES)]) for i in range(n)]


def auroc_limits(values):
    """The AUROC axis: AUROC_RANGE, widened to the next 0.1 below a smaller value (never above 1)."""
    low, high = AUROC_RANGE
    values = np.asarray([v for v in values if np.isfinite(v)], np.float64)
    if values.size and values.min() < low + 0.02:
        low = max(0.0, np.floor((values.min() - 0.02) * 10.0) / 10.0)
    return low, high


def training_curves_figure(drawn):
    """The Figure of {label: read_curves(run)}: four panels, one line per run, the legend outside the panels."""
    panels = LOG_PANELS + (MONITOR_PANEL,)
    styles = dict(zip(drawn, run_styles(len(drawn))))
    legend_columns = 1 if len(drawn) <= 24 else 2
    figure = Figure(figsize=(12 + 2.6 * legend_columns, 8), layout="constrained")
    axes = figure.subplots(2, 2).ravel()
    handles = {}
    for ax, (column, title) in zip(axes, panels):
        for label, curves in drawn.items():
            if column in curves:
                steps, values = curves[column]
                colour, style = styles[label]
                (line,) = ax.plot(steps, values, marker="o" if column == MONITOR_PANEL[0] else None, markersize=3,
                                  label=label, color=colour, linestyle=style, linewidth=1.4)
                handles.setdefault(label, line)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("batches")
        ax.set_ylabel(Y_LABELS[column])
        ax.grid(alpha=0.3)
    monitor_axes = axes[len(LOG_PANELS)]
    monitored = [v for curves in drawn.values() if MONITOR_PANEL[0] in curves for v in curves[MONITOR_PANEL[0]][1]]
    monitor_axes.set_ylim(*auroc_limits(monitored))
    monitor_axes.axhline(0.5, color="gray", lw=1, ls=":", zorder=0)
    monitor_axes.annotate("chance", (0.0, 0.5), xycoords=("axes fraction", "data"), xytext=(3, 2),
                          textcoords="offset points", fontsize=7, color="gray")
    if not monitored:
        monitor_axes.text(0.5, 0.5, "no run was trained with --monitor_every", transform=monitor_axes.transAxes,
                          ha="center", va="center", fontsize=9, color="gray")
    ordered = [label for label in drawn if label in handles]
    figure.legend([handles[label] for label in ordered], ordered, loc="outside right upper", fontsize=7,
                  ncols=legend_columns, title="run", title_fontsize=8)
    return figure


def training_curves_plot(path, run_dirs, labels):
    """One line per run in each panel; returns {label: read_curves(run)} (what was drawn), or None and no
    file when no run has a train_log.csv."""
    drawn = {label: read_curves(run_dir) for run_dir, label in zip(run_dirs, labels)}
    if not any(drawn.values()):
        return None
    _save(training_curves_figure(drawn), path)
    return drawn
