"""The paper's Tables II and III (Carrara et al., "Combining GANs and AutoEncoders for Efficient Anomaly
Detection", ICPR 2020): its MVTec AD categories by group, the mean columns, and its published rows, read from
paper_tables.csv beside this file (methods named without the paper's markers: "CBiGAN" is "CBiGAN (ours)" there).
evaluation/tables.py adds them to our results tables as "<method> (paper)" rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = (
    "bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper",
)
PAPER_CATEGORIES = TEXTURES + OBJECTS
MEAN_COLUMNS = ("texture_mean", "object_mean", "overall_mean")
PAPER_METHODS = ("EGBAD", "CBiGAN")
PAPER_TABLES = {"balanced_accuracy": "Table II", "auroc": "Table III"}
PAPER_SUFFIX = " (paper)"
PAPER_TABLES_CSV = Path(__file__).with_name("paper_tables.csv")


def _paper_frame(metric: str, methods) -> pd.DataFrame:
    if metric not in PAPER_TABLES:
        raise ValueError(f"the paper reports no {metric!r}; it has {sorted(PAPER_TABLES)}")
    frame = pd.read_csv(PAPER_TABLES_CSV)
    frame = frame[frame["metric"] == metric]
    # The CSV names methods as in the paper's tables without markers ("CBiGAN" is "CBiGAN (ours)" there).
    missing = [m for m in methods if m not in set(frame["method"])]
    if missing:
        raise ValueError(f"no paper rows for {missing} in {PAPER_TABLES_CSV.name}; it has {sorted(set(frame['method']))}")
    return frame


def load_paper_rows(metric: str, methods=PAPER_METHODS) -> dict[str, dict[str, float]]:
    """The paper's published per-category values: {"CBiGAN (paper)": {"carpet": 0.55, ...}, ...} in methods order.

    metric: "balanced_accuracy" (Table II) or "auroc" (Table III). Only the 15 categories; see load_paper_means.
    """
    return _paper_values(metric, methods, PAPER_CATEGORIES)


def load_paper_means(metric: str, methods=PAPER_METHODS) -> dict[str, dict[str, float]]:
    """The paper's published means over its full tables: {"CBiGAN (paper)": {"texture_mean": 0.85, ...}}."""
    return _paper_values(metric, methods, MEAN_COLUMNS)


def _paper_values(metric, methods, columns):
    """{"<method> (paper)": {column: value}} for the paper's rows, restricted to the given columns."""
    frame = _paper_frame(metric, methods)
    rows = {}
    for method in methods:
        mine = frame[(frame["method"] == method) & frame["category"].isin(columns)]
        rows[method + PAPER_SUFFIX] = {c: float(v) for c, v in zip(mine["category"], mine["value"])}
    return rows
