"""Time to quality: test AUROC and reconstruction specificity of runs against the CPU time of their training.

Reads what training and evaluation already wrote in each run folder:
- train_log.csv: cpu_s, the CPU seconds of the process spent on training batches (both cores counted; monitoring,
  previews and checkpoints excluded), and elapsed_s, the wall time (everything included);
- metrics.csv: the monitored test AUROC and reconstruction specificity of the EMA weights (--monitor_every);
- eval/ (evaluate.py with the fair protocol: final checkpoint, EMA weights, the paper's image score): the final
  AUROC, balanced accuracy, specificity and the mean-image baseline.
Runs are grouped by (category, recipe); a group's summary is the median over its seeds (and min / max).
"""
import dataclasses
import os

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from config import TrainConfig
from evaluation.plots import _save
import run_folder
from run_folder.monitor_log import read_rows

SPECIFICITY_GOAL = 0.8   # reconstructions that follow the input (1 = one template for every input)


@dataclasses.dataclass
class RunCurve:
    run_dir: str
    category: str
    recipe: str
    seed: int
    steps: np.ndarray         # monitored steps
    cpu_minutes: np.ndarray   # CPU minutes of training batches at those steps (train_log.csv, interpolated)
    auroc: np.ndarray         # monitored test AUROC (EMA weights, the run's score_lambda)
    specificity: np.ndarray   # monitored reconstruction specificity (NaN where not recorded)
    final: dict               # final evaluation (fair protocol) and its CPU / wall minutes; {} if not evaluated


def _at_step(log, column, step):
    """The value of a train_log.csv column at step, interpolated between logged rows (NaN without the column)."""
    if column not in log.columns:
        return float("nan")
    rows = log[["step", column]].dropna()
    if rows.empty:
        return float("nan")
    return float(np.interp(step, rows["step"].to_numpy(float), rows[column].to_numpy(float)))


def read_run(run_dir):
    """The RunCurve of one run folder (config.json needed; curves empty without metrics.csv)."""
    from evaluation.evaluate_run import EvalSettings, load_evaluation

    config, _ = TrainConfig.load(run_dir)
    log_path = run_folder.path(run_dir, run_folder.TRAIN_LOG_FILE)
    log = pd.read_csv(log_path) if os.path.isfile(log_path) else pd.DataFrame({"step": []})
    rows = [r for r in read_rows(run_folder.path(run_dir, run_folder.MONITOR_FILE))
            if float(r["lambda"]) == float(config.score_lambda)]
    steps = np.array([int(r["step"]) for r in rows], int)
    auroc = np.array([float(r["image_auroc"]) for r in rows], float)
    specificity = np.array([float(r.get("reconstruction_specificity") or "nan") for r in rows], float)
    cpu = np.array([_at_step(log, "cpu_s", s) for s in steps], float) / 60.0
    final = {}
    summary = load_evaluation(run_dir, EvalSettings(weights="ema", checkpoint="latest"))
    if summary is not None:
        row = summary.at_default()
        diagnostics = summary.diagnostics or {}
        final = {"step": summary.step, "image_auroc": row["image_auroc"],
                 "balanced_accuracy": row["balanced_accuracy"],
                 "specificity": (diagnostics.get("reconstruction_specificity") or {}).get("ratio"),
                 "baseline_auroc": diagnostics.get("template_auroc"),
                 "cpu_minutes": _at_step(log, "cpu_s", summary.step) / 60.0,
                 "wall_minutes": _at_step(log, "elapsed_s", summary.step) / 60.0}
    return RunCurve(os.fspath(run_dir), config.category, config.recipe, int(config.seed), steps, cpu, auroc,
                    specificity, final)


def summarize(curves):
    """One dict per (category, recipe), in first-seen order: seeds, median / min / max of the final AUROC, the
    median final specificity, baseline, CPU and wall minutes, and how many seeds beat the baseline by >= 0.05."""
    groups = {}
    for curve in curves:
        if curve.final:
            groups.setdefault((curve.category, curve.recipe), []).append(curve)
    out = []
    for (category, recipe), members in groups.items():
        finals = [c.final for c in members]
        auroc = np.array([f["image_auroc"] for f in finals], float)
        baseline = np.array([np.nan if f["baseline_auroc"] is None else f["baseline_auroc"] for f in finals])
        out.append({"category": category, "recipe": recipe, "seeds": sorted(c.seed for c in members),
                    "step": int(np.median([f["step"] for f in finals])),
                    "auroc_median": float(np.median(auroc)), "auroc_min": float(auroc.min()),
                    "auroc_max": float(auroc.max()),
                    "balanced_accuracy_median": float(np.median([f["balanced_accuracy"] for f in finals])),
                    "specificity_median": float(np.median([np.nan if f["specificity"] is None else f["specificity"]
                                                           for f in finals])),
                    "baseline_auroc": float(np.nanmedian(baseline)) if np.isfinite(baseline).any() else None,
                    "seeds_above_baseline_by_0.05": int(np.sum(auroc >= baseline + 0.05)),
                    "cpu_minutes_median": float(np.median([f["cpu_minutes"] for f in finals])),
                    "wall_minutes_median": float(np.median([f["wall_minutes"] for f in finals]))})
    return out


def markdown(summary):
    lines = ["| set | recipe | seeds | batches | image AUROC, median (min-max) | bal. acc. | specificity | "
             "mean-image baseline | seeds >= baseline + 0.05 | CPU min (training) | wall min |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        base = "-" if s["baseline_auroc"] is None else f"{s['baseline_auroc']:.3f}"
        lines.append(f"| {s['category']} | {s['recipe']} | {','.join(map(str, s['seeds']))} | {s['step']:,} | "
                     f"{s['auroc_median']:.3f} ({s['auroc_min']:.3f}-{s['auroc_max']:.3f}) | "
                     f"{s['balanced_accuracy_median']:.3f} | {s['specificity_median']:.3f} | {base} | "
                     f"{s['seeds_above_baseline_by_0.05']}/{len(s['seeds'])} | {s['cpu_minutes_median']:.1f} | "
                     f"{s['wall_minutes_median']:.1f} |")
    return "\n".join(lines)


def curve_rows(curves):
    """Long-format rows (one per monitored step of each run) for a CSV."""
    return [{"run": c.run_dir, "category": c.category, "recipe": c.recipe, "seed": c.seed, "step": int(step),
             "cpu_minutes": round(float(cpu), 3), "image_auroc": float(a), "specificity": float(sp)}
            for c in curves for step, cpu, a, sp in zip(c.steps, c.cpu_minutes, c.auroc, c.specificity)]


def time_to_quality_plot(path, curves):
    """Two rows of panels (test AUROC; reconstruction specificity) and one column per category; x = CPU minutes
    of training; one line per run, one colour per recipe; the mean-image baseline dashed, the specificity goal
    dotted. Returns the categories drawn (None and no file when no run has monitoring rows)."""
    curves = [c for c in curves if len(c.steps)]
    if not curves:
        return None
    categories = list(dict.fromkeys(c.category for c in curves))
    recipes = list(dict.fromkeys(c.recipe for c in curves))
    palette = matplotlib.colormaps["tab10"].colors
    colors = {recipe: palette[i % len(palette)] for i, recipe in enumerate(recipes)}
    figure = Figure(figsize=(4.5 * len(categories), 7))
    axes = np.array(figure.subplots(2, len(categories), squeeze=False))
    for column, category in enumerate(categories):
        top, bottom = axes[0, column], axes[1, column]
        labelled = set()
        baselines = []
        for c in (c for c in curves if c.category == category):
            label = None if c.recipe in labelled else f"{c.recipe} recipe"
            labelled.add(c.recipe)
            top.plot(c.cpu_minutes, c.auroc, marker="o", markersize=3, color=colors[c.recipe], label=label)
            bottom.plot(c.cpu_minutes, c.specificity, marker="o", markersize=3, color=colors[c.recipe])
            if c.final.get("baseline_auroc") is not None:
                baselines.append(c.final["baseline_auroc"])
        if baselines:
            top.axhline(float(np.median(baselines)), color="grey", linestyle="--", label="mean-image baseline")
        bottom.axhline(SPECIFICITY_GOAL, color="grey", linestyle=":", label=f"specificity {SPECIFICITY_GOAL}")
        top.set_title(f"{category}: test AUROC (EMA weights, monitoring)", fontsize=10)
        bottom.set_title(f"{category}: reconstruction specificity (1 = template)", fontsize=10)
        for ax in (top, bottom):
            ax.set_xlabel("CPU minutes of training (both cores counted)")
            ax.grid(alpha=0.3)
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)
    return categories
