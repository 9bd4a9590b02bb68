"""Training curves of several runs side by side (training_curves.png of `evaluate.py --run <folder of runs>`).

Panels, x = batches consumed: the image reconstruction loss L_R (eq. 11), the critic loss L_D (eq. 6), the
gradient penalty, and the test-set AUROC of the EMA weights at the run's score_lambda where the run was trained
with --monitor_every (monitoring only: it never selects a checkpoint). Read from each run's train_log.csv and
metrics.csv.
"""
import os

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from config import TrainConfig
from errors import ConfigError
from evaluation.plots import _save
from training import run_folder
from training.monitor_log import read_rows, rows_at_lambda

LOG_PANELS = (("image_reconstruction", "image reconstruction L_R (eq. 11)"),
              ("critic_loss", "critic loss L_D (eq. 6)"),
              ("gradient_penalty", "gradient penalty"))
MONITOR_PANEL = ("image_auroc", "test AUROC, EMA weights (monitoring)")


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


def training_curves_plot(path, run_dirs, labels):
    """One line per run in each panel; returns {label: read_curves(run)} (what was drawn), or None and no
    file when no run has a train_log.csv."""
    drawn = {label: read_curves(run_dir) for run_dir, label in zip(run_dirs, labels)}
    if not any(drawn.values()):
        return None
    panels = LOG_PANELS + (MONITOR_PANEL,)
    palette = matplotlib.colormaps["tab10" if len(drawn) <= 10 else "tab20"].colors
    colors = {label: palette[i % len(palette)] for i, label in enumerate(drawn)}  # one colour per run
    figure = Figure(figsize=(12, 8))
    axes = figure.subplots(2, 2).ravel()
    for ax, (column, title) in zip(axes, panels):
        for label, curves in drawn.items():
            if column in curves:
                steps, values = curves[column]
                ax.plot(steps, values, marker="o" if column == MONITOR_PANEL[0] else None, markersize=3,
                        label=label, color=colors[label])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("batches")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)
    return drawn
