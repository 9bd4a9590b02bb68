"""Paper-style results tables across runs (the layout of Tables II and III of Carrara et al., ICPR 2020).

A table has one row per method and one column per category, grouped like the paper:

    [textures ..., texture_mean] [objects ..., object_mean] overall_mean

- Category columns: the paper's 15 MVTec AD categories that appear in at least one of our results, in the
  paper's order, followed within the same group by custom categories (e.g. magnetic_tile, elpv_mono) sorted by
  name. A custom category's group comes from `category_types` ({"magnetic_tile": "texture"}); it defaults to
  "object". The paper's categories always keep the paper's group.
- A group's mean column is there only when the group has at least one column; overall_mean is always there.
- Means are computed per row over the category columns of that row that have a value (NaN = no value):
  texture_mean over its textures, object_mean over its objects, overall_mean over all its categories (the
  paper's convention: the mean of the 15 categories, not the mean of the two group means).
- Rows: our methods first, in order of first appearance in the results, then the paper's published rows
  (evaluation/paper_rows.py) labelled "<method> (paper)" (EGBAD then CBiGAN, as in the paper) for the metrics
  the paper reports (balanced_accuracy: Table II, auroc: Table III). Paper rows show the published numbers of
  the categories present as columns, nothing for custom categories, and means recomputed over those same
  columns so that they compare with ours; the published full-table means are quoted in the markdown
  footnote. Paper rows are left out when no paper category is a column.

- Every row names its protocol (column "protocol" after the method): "fair" (the final checkpoint, no
  selection on the test set) or "authors" (the checkpoint with the best test AUROC during training, as the
  authors' code chose it: optimistic). The paper's rows are "authors": that is how their numbers were measured.

`write_results` writes results.csv (wide form: metric, method, protocol, then the columns above; full precision) and
results.md (one table per metric; ours with 3 decimals, the paper's published values with their 2 and the
paper rows' recomputed means with 3).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from evaluation.paper_rows import (MEAN_COLUMNS, OBJECTS, PAPER_CATEGORIES, PAPER_METHODS, PAPER_SUFFIX, PAPER_TABLES,
                                   TEXTURES, load_paper_means, load_paper_rows)
from run_folder import atomic_write, write_text

__all__ = [
    "TEXTURES",
    "OBJECTS",
    "PAPER_CATEGORIES",
    "MEAN_COLUMNS",
    "PAPER_METHODS",
    "PAPER_TABLES",
    "PAPER_SUFFIX",
    "category_type",
    "load_paper_rows",
    "load_paper_means",
    "build_results_table",
    "results_markdown",
    "write_results",
    "read_results",
]

METRIC_TITLES = {
    "balanced_accuracy": "Maximum balanced accuracy B = (TPR + TNR) / 2",
    "auroc": "Image AUROC",
    "pixel_auroc": "Pixel AUROC",
    "aupro": "AUPRO (up to FPR 0.3)",
    "f1_max": "F1-max (best F1 over thresholds, chosen on the test set)",
    "aupr": "AUPR (average precision)",
    "false_alarm_rate": "False-alarm rate on good test images at the run's threshold (predict.py's)",
    "detection_rate": "Detection rate on anomalous test images at the run's threshold (predict.py's)",
    "precision": "Precision at the run's threshold (predict.py's)",
    "f1": "F1 at the run's threshold (predict.py's)",
}
GROUP_TYPES = ("texture", "object")


# ---------------------------------------------------------------------------------------------- categories


def category_type(category: str, category_types: dict[str, str] | None = None) -> str:
    """'texture' or 'object': the paper's grouping for MVTec AD categories, else category_types, else 'object'."""
    if category in TEXTURES:
        return "texture"
    if category in OBJECTS:
        return "object"
    kind = (category_types or {}).get(category, "object")
    if kind not in GROUP_TYPES:
        raise ValueError(f"category type of {category!r} must be 'texture' or 'object', got {kind!r}")
    return kind


def _category_columns(categories, category_types) -> dict[str, list[str]]:
    """Category columns by group, in the paper's order, custom categories after (sorted by name)."""
    present = set(categories)
    groups = {}
    for kind, paper in (("texture", TEXTURES), ("object", OBJECTS)):
        custom = sorted(c for c in present - set(PAPER_CATEGORIES) if category_type(c, category_types) == kind)
        groups[kind] = [c for c in paper if c in present] + custom
    return groups


def _layout(groups: dict[str, list[str]]) -> list[str]:
    columns = []
    for kind in GROUP_TYPES:
        if groups[kind]:
            columns += groups[kind] + [f"{kind}_mean"]
    return columns + ["overall_mean"]


# ---------------------------------------------------------------------------------------------- tables


def _our_rows(results) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for result in results:
        method, category = str(result["method"]), str(result["category"])
        value = result["value"]
        value = math.nan if value is None else float(value)
        if method.endswith(PAPER_SUFFIX):
            raise ValueError(f"method names ending in {PAPER_SUFFIX!r} are reserved for the paper's rows: {method!r}")
        if category in MEAN_COLUMNS:
            raise ValueError(f"{category!r} is a computed column, not a category")
        row = rows.setdefault(method, {})
        if category in row:
            raise ValueError(f"two results for method {method!r} on category {category!r}")
        row[category] = value
    return rows


def build_results_table(results, metric: str, category_types: dict[str, str] | None = None,
                        paper_methods=PAPER_METHODS) -> pd.DataFrame:
    """One row per method (index "method"), columns as in the module docstring; NaN = no value.

    results: dicts {"method": str, "category": str, "value": float} (None or NaN = no value) for this metric.
    Paper rows are added when the paper reports the metric (balanced_accuracy, auroc) and a paper category is
    a column; paper_methods=() leaves them out.
    """
    ours = _our_rows(results)
    if not ours:
        raise ValueError(f"no results for metric {metric!r}")
    groups = _category_columns({c for row in ours.values() for c in row}, category_types)
    rows = dict(ours)
    shown_paper = [c for c in PAPER_CATEGORIES if c in groups["texture"] + groups["object"]]
    if metric in PAPER_TABLES and paper_methods and shown_paper:
        for label, values in load_paper_rows(metric, paper_methods).items():
            rows[label] = {c: values[c] for c in shown_paper}
    categories = groups["texture"] + groups["object"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=categories).astype(float)
    for kind in GROUP_TYPES:
        if groups[kind]:
            table[f"{kind}_mean"] = table[groups[kind]].mean(axis=1, skipna=True)
    table["overall_mean"] = table[categories].mean(axis=1, skipna=True)
    table = table[_layout(groups)]
    table.index.name = "method"
    return table


# ---------------------------------------------------------------------------------------------- output


PAPER_PROTOCOL = "authors"  # the paper's numbers: best-on-test checkpoint (the authors' train.py / score.py)


def protocol_of(label, protocols=None) -> str:
    """The protocol of a table row: "authors" for the paper's rows, else protocols[label] (default "fair")."""
    if str(label).endswith(PAPER_SUFFIX):
        return PAPER_PROTOCOL
    return (protocols or {}).get(str(label), "fair")


def _cell(value: float, decimals: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{decimals}f}"


def results_markdown(table: pd.DataFrame, metric: str, protocols=None) -> str:
    """A markdown section for a build_results_table table: title, the table (a group header line like the
    paper's, then the column names) and a footnote explaining the means and the paper's rows.
    Our values with 3 decimals, the paper's published values with 2, its recomputed means with 3; "-" = no value.
    Method names are written as they are, with "|" escaped; protocols: {method: "fair" | "authors"} (protocol_of)."""
    columns = list(table.columns)
    if not columns or columns[-1] != "overall_mean":
        raise ValueError(f"table columns {columns} are not in the layout of build_results_table")
    group_line, name_line, group_start = ["", ""], ["method", "protocol"], True
    for column in columns[:-1]:
        if column in ("texture_mean", "object_mean"):
            group_line.append("")
            name_line.append("mean")
            group_start = True
            continue
        if group_start:  # the group's first category: label the group by what its mean column is
            rest = columns[columns.index(column):]
            mean = next(c for c in rest if c in MEAN_COLUMNS)
            group_line.append({"texture_mean": "Textures", "object_mean": "Objects"}.get(mean, ""))
        else:
            group_line.append("")
        name_line.append(column)
        group_start = False
    group_line.append("")
    name_line.append("overall mean")

    def line(cells):
        return "| " + " | ".join(cells) + " |"

    title = METRIC_TITLES.get(metric, metric)
    if metric in PAPER_TABLES:
        title += f" (paper {PAPER_TABLES[metric]})"
    out = [f"## {title}", "", line(group_line), "|" + "---|" * len(group_line), line(name_line)]
    paper_labels = [label for label in table.index if str(label).endswith(PAPER_SUFFIX)]
    for label, row in table.iterrows():
        # The paper's published values keep their 2 decimals; everything computed here (ours, and the paper
        # rows' recomputed means) gets 3.
        paper = label in paper_labels
        cells = [_cell(row[c], 2 if paper and c not in MEAN_COLUMNS else 3) for c in columns]
        out.append(line([str(label).replace("|", "\\|"), protocol_of(label, protocols)] + cells))
    out += ["", _footnote(metric, paper_labels)]
    return "\n".join(out) + "\n"


def _footnote(metric: str, paper_labels) -> str:
    note = ("Means: texture/object mean over the row's texture/object columns that have a value, overall mean "
            "over all the row's category columns that have a value (as in the paper: the mean of the categories, "
            "not of the two group means). \"-\" = no value. Image score: rows naming none use the paper's "
            "(eq. 7, L1 sums over every pixel); \"map max\" / \"map top-k% mean\" rows aggregate the smoothed "
            "anomaly map (docs/EVALUATION.md). Protocol: fair = the final checkpoint, no selection on the test "
            "set; authors = the checkpoint with the best test AUROC during training, as the authors' code chose "
            "it (test-set selection: optimistic); the paper's rows were measured that way.")
    if paper_labels:
        published = load_paper_means(metric, [label[: -len(PAPER_SUFFIX)] for label in paper_labels])
        quoted = "; ".join(
            f"{label}: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in means.items())
            for label, means in published.items()
        )
        note += (f" Rows marked (paper): published values from {PAPER_TABLES[metric]} of Carrara et al., "
                 "\"Combining GANs and AutoEncoders for Efficient Anomaly Detection\", ICPR 2020, for the "
                 "categories shown (none for custom categories); their means are recomputed over these columns "
                 f"so they compare with ours (hence 3 decimals). Published means over all 15 categories: {quoted}.")
    return note


def write_results(results_by_metric: dict[str, list], out_dir, category_types: dict[str, str] | None = None,
                  protocols: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write out_dir/results.csv and out_dir/results.md for {metric: [result dicts]}; returns both paths.

    protocols: {method: "fair" | "authors"} of our rows (default "fair"; the paper's rows are "authors").
    results.csv: one row per (metric, method): metric, method, protocol, then the category and mean columns of all
    metrics' tables (ordered as in one table; empty = no value), values at full precision.
    results.md: one section per metric, in the given order. Metrics with an empty result list are skipped.
    """
    tables = {metric: build_results_table(results, metric, category_types)
              for metric, results in results_by_metric.items() if results}
    if not tables:
        raise ValueError("no results to write")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    all_categories = {c for t in tables.values() for c in t.columns if c not in MEAN_COLUMNS}
    columns = _layout(_category_columns(all_categories, category_types))
    frames = [t.reindex(columns=columns).reset_index().assign(metric=metric) for metric, t in tables.items()]
    wide = pd.concat(frames, ignore_index=True)
    wide["protocol"] = [protocol_of(method, protocols) for method in wide["method"]]
    wide = wide[["metric", "method", "protocol"] + columns]
    csv_path = out_dir / "results.csv"
    with atomic_write(csv_path, newline="") as handle:
        wide.to_csv(handle, index=False)

    md_path = out_dir / "results.md"
    sections = [results_markdown(t, metric, protocols) for metric, t in tables.items()]
    write_text(md_path, "# Results\n\n" + "\n".join(sections))
    return csv_path, md_path


def read_results(csv_path) -> dict[str, pd.DataFrame]:
    """results.csv back into {metric: table}, each as build_results_table returned it (columns with no value
    for a metric, from other metrics' categories, are dropped)."""
    wide = pd.read_csv(csv_path)
    tables = {}
    for metric, frame in wide.groupby("metric", sort=False):
        table = frame.drop(columns=["metric", "protocol"], errors="ignore").set_index("method").astype(float)
        category_cols = [c for c in table.columns if c not in MEAN_COLUMNS and table[c].notna().any()]
        keep = [c for c in table.columns if c in category_cols
                or (c in MEAN_COLUMNS and table[c].notna().any()) or c == "overall_mean"]
        tables[str(metric)] = table[keep]
    return tables

