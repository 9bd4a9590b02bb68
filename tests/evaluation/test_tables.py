"""Paper-style results tables checked cell by cell."""

import math

import numpy as np
import pandas as pd
import pytest

from evaluation.tables import (
    OBJECTS,
    PAPER_CATEGORIES,
    TEXTURES,
    build_results_table,
    category_type,
    load_paper_means,
    load_paper_rows,
    read_results,
    results_markdown,
    write_results,
)

OURS = "CBiGAN alpha=1e-04"
OTHER = "EGBAD alpha=0"
TYPES = {"magnetic_tile": "texture"}  # elpv_mono stays an object (the default)
COLUMNS = ["carpet", "magnetic_tile", "texture_mean", "bottle", "elpv_mono", "object_mean", "overall_mean"]


def results():
    rows = [
        (OURS, "bottle", 0.9), (OURS, "carpet", 0.6), (OURS, "magnetic_tile", 0.7),
        (OTHER, "magnetic_tile", 0.4), (OTHER, "bottle", 0.5), (OTHER, "elpv_mono", 0.8),
    ]
    return [{"method": m, "category": c, "value": v} for m, c, v in rows]


def nan_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        if e is None:
            assert math.isnan(a)
        else:
            assert a == pytest.approx(e, abs=1e-12)


def test_paper_constants_in_table_order():
    assert TEXTURES == ("carpet", "grid", "leather", "tile", "wood")
    assert OBJECTS == ("bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush",
                       "transistor", "zipper")
    assert category_type("magnetic_tile") == "object"
    assert category_type("magnetic_tile", TYPES) == "texture"
    assert category_type("carpet", {"carpet": "object"}) == "texture"  # the paper's groups always win
    with pytest.raises(ValueError, match="'texture' or 'object'"):
        category_type("x", {"x": "fabric"})


def test_load_paper_rows():
    auroc = load_paper_rows("auroc")
    assert list(auroc) == ["EGBAD (paper)", "CBiGAN (paper)"]
    assert set(auroc["CBiGAN (paper)"]) == set(PAPER_CATEGORIES)
    assert auroc["CBiGAN (paper)"]["bottle"] == 0.87 and auroc["EGBAD (paper)"]["bottle"] == 0.63
    assert auroc["CBiGAN (paper)"]["carpet"] == 0.55 and auroc["EGBAD (paper)"]["carpet"] == 0.52
    balanced = load_paper_rows("balanced_accuracy", methods=("CBiGAN",))
    assert list(balanced) == ["CBiGAN (paper)"]
    assert balanced["CBiGAN (paper)"]["bottle"] == 0.84 and balanced["CBiGAN (paper)"]["grid"] == 0.99
    assert load_paper_rows("balanced_accuracy")["EGBAD (paper)"]["bottle"] == 0.68
    assert load_paper_means("auroc")["CBiGAN (paper)"] == {"texture_mean": 0.85, "object_mean": 0.73,
                                                           "overall_mean": 0.77}
    with pytest.raises(ValueError, match="reports no 'aupro'"):
        load_paper_rows("aupro")
    with pytest.raises(ValueError, match="no paper rows for"):
        load_paper_rows("auroc", methods=("CBiGAN (ours)",))


@pytest.mark.parametrize("metric", ["auroc", "balanced_accuracy"])
def test_recomputed_paper_means_over_all_categories_match_the_published_ones(metric):
    # With all 15 categories as columns, our mean convention (overall = mean of the categories) reproduces the
    # paper's means up to the rounding of the published per-category values.
    everything = [{"method": OURS, "category": c, "value": 0.5} for c in PAPER_CATEGORIES]
    table = build_results_table(everything, metric)
    assert list(table.columns[:6]) == list(TEXTURES) + ["texture_mean"]
    assert list(table.columns[6:]) == list(OBJECTS) + ["object_mean", "overall_mean"]
    for label, means in load_paper_means(metric).items():
        for column, published in means.items():
            assert abs(table.loc[label, column] - published) <= 0.0051, (label, column)


def test_auroc_table_cell_by_cell():
    table = build_results_table(results(), "auroc", TYPES)
    assert list(table.columns) == COLUMNS
    assert list(table.index) == [OURS, OTHER, "EGBAD (paper)", "CBiGAN (paper)"]
    assert table.index.name == "method"
    nan_equal(table.loc[OURS], [0.6, 0.7, (0.6 + 0.7) / 2, 0.9, None, 0.9, (0.6 + 0.7 + 0.9) / 3])
    nan_equal(table.loc[OTHER], [None, 0.4, 0.4, 0.5, 0.8, (0.5 + 0.8) / 2, (0.4 + 0.5 + 0.8) / 3])
    # Paper rows: published carpet and bottle, nothing for custom categories, means over carpet and bottle.
    nan_equal(table.loc["EGBAD (paper)"], [0.52, None, 0.52, 0.63, None, 0.63, (0.52 + 0.63) / 2])
    nan_equal(table.loc["CBiGAN (paper)"], [0.55, None, 0.55, 0.87, None, 0.87, (0.55 + 0.87) / 2])


def test_balanced_accuracy_table_paper_rows():
    table = build_results_table(results(), "balanced_accuracy", TYPES)
    nan_equal(table.loc["EGBAD (paper)"], [0.60, None, 0.60, 0.68, None, 0.68, (0.60 + 0.68) / 2])
    nan_equal(table.loc["CBiGAN (paper)"], [0.60, None, 0.60, 0.84, None, 0.84, (0.60 + 0.84) / 2])


def test_custom_category_types_default_to_object():
    table = build_results_table(results(), "auroc")  # magnetic_tile is now an object, sorted after elpv_mono
    assert list(table.columns) == ["carpet", "texture_mean", "bottle", "elpv_mono", "magnetic_tile",
                                   "object_mean", "overall_mean"]
    assert table.loc[OURS, "texture_mean"] == pytest.approx(0.6)
    assert table.loc[OURS, "object_mean"] == pytest.approx((0.9 + 0.7) / 2)


def test_groups_without_columns_and_metrics_without_paper_rows():
    only_objects = [{"method": OURS, "category": "bottle", "value": 0.9},
                    {"method": OURS, "category": "screw", "value": 0.6}]
    table = build_results_table(only_objects, "auroc")
    assert list(table.columns) == ["bottle", "screw", "object_mean", "overall_mean"]
    assert table.loc["CBiGAN (paper)", "screw"] == 0.58
    assert list(build_results_table(only_objects, "aupro").index) == [OURS]
    assert list(build_results_table(only_objects, "auroc", paper_methods=()).index) == [OURS]
    only_custom = [{"method": OURS, "category": "elpv_mono", "value": 0.7}]
    table = build_results_table(only_custom, "auroc")  # no paper category: no (empty) paper rows
    assert list(table.index) == [OURS] and list(table.columns) == ["elpv_mono", "object_mean", "overall_mean"]
    # A missing (None / NaN) value is an empty cell, left out of the means.
    with_gap = only_objects + [{"method": OURS, "category": "pill", "value": None}]
    table = build_results_table(with_gap, "auroc", paper_methods=())
    assert math.isnan(table.loc[OURS, "pill"]) and table.loc[OURS, "overall_mean"] == pytest.approx(0.75)


def test_bad_results():
    with pytest.raises(ValueError, match="two results for method 'm' on category 'bottle'"):
        build_results_table([{"method": "m", "category": "bottle", "value": 0.1}] * 2, "auroc")
    with pytest.raises(ValueError, match="reserved for the paper"):
        build_results_table([{"method": "CBiGAN (paper)", "category": "bottle", "value": 0.1}], "auroc")
    with pytest.raises(ValueError, match="computed column"):
        build_results_table([{"method": "m", "category": "overall_mean", "value": 0.1}], "auroc")
    with pytest.raises(ValueError, match="no results for metric 'auroc'"):
        build_results_table([], "auroc")


def test_markdown_section():
    protocols = {"CBiGAN alpha=1e-04": "authors"}  # EGBAD alpha=0 unnamed: fair
    text = results_markdown(build_results_table(results(), "auroc", TYPES), "auroc", protocols)
    lines = text.splitlines()
    assert lines[0] == "## Image AUROC (paper Table III)"
    assert lines[2] == "|  |  | Textures |  |  | Objects |  |  |  |"
    assert lines[3] == "|---|---|---|---|---|---|---|---|---|"
    assert lines[4] == ("| method | protocol | carpet | magnetic_tile | mean | bottle | elpv_mono | mean | "
                        "overall mean |")
    assert lines[5] == "| CBiGAN alpha=1e-04 | authors | 0.600 | 0.700 | 0.650 | 0.900 | - | 0.900 | 0.733 |"
    assert lines[6] == "| EGBAD alpha=0 | fair | - | 0.400 | 0.400 | 0.500 | 0.800 | 0.650 | 0.567 |"
    # the paper's numbers were measured with the authors' protocol (best-on-test checkpoint)
    assert lines[7] == "| EGBAD (paper) | authors | 0.52 | - | 0.520 | 0.63 | - | 0.630 | 0.575 |"
    assert lines[8] == "| CBiGAN (paper) | authors | 0.55 | - | 0.550 | 0.87 | - | 0.870 | 0.710 |"
    footnote = lines[10]
    assert "authors = the checkpoint with the best test AUROC during training" in footnote
    assert "Table III of Carrara et al." in footnote
    assert "recomputed over these columns" in footnote
    assert "CBiGAN (paper): texture mean 0.85, object mean 0.73, overall mean 0.77" in footnote


def test_write_results_files_and_round_trip(tmp_path):
    by_metric = {
        "auroc": results(),
        "balanced_accuracy": results(),
        "aupro": [{"method": OURS, "category": "carpet", "value": 0.45}],
        "pixel_auroc": [],  # skipped
    }
    csv_path, md_path = write_results(by_metric, tmp_path / "tables", TYPES, protocols={OURS: "authors"})
    assert csv_path == tmp_path / "tables" / "results.csv" and md_path.name == "results.md"

    wide = pd.read_csv(csv_path)
    assert list(wide.columns) == ["metric", "method", "protocol"] + COLUMNS
    assert set(wide.loc[wide["method"] == OURS, "protocol"]) == {"authors"}
    assert set(wide.loc[wide["method"].str.endswith("(paper)"), "protocol"]) == {"authors"}
    assert set(wide.loc[~wide["method"].str.endswith("(paper)") & (wide["method"] != OURS), "protocol"]) == {"fair"}
    assert list(wide["metric"]) == ["auroc"] * 4 + ["balanced_accuracy"] * 4 + ["aupro"]
    row = wide[(wide["metric"] == "balanced_accuracy") & (wide["method"] == "CBiGAN (paper)")].iloc[0]
    assert row["bottle"] == 0.84 and np.isnan(row["magnetic_tile"])

    back = read_results(csv_path)
    assert list(back) == ["auroc", "balanced_accuracy", "aupro"]
    for metric in ("auroc", "balanced_accuracy"):
        pd.testing.assert_frame_equal(back[metric], build_results_table(results(), metric, TYPES))
    pd.testing.assert_frame_equal(back["aupro"], build_results_table(by_metric["aupro"], "aupro"))

    text = md_path.read_text()
    assert text.startswith("# Results\n\n## Image AUROC (paper Table III)\n")
    assert text.index("## Image AUROC") < text.index("## Maximum balanced accuracy") < text.index("## AUPRO")
    assert "| CBiGAN (paper) | authors | 0.60 | - | 0.600 | 0.84 | - | 0.840 | 0.720 |" in text
    assert "| CBiGAN alpha=1e-04 | authors | 0.450 | 0.450 | 0.450 |" in text
    assert "Pixel AUROC" not in text
    with pytest.raises(ValueError, match="no results to write"):
        write_results({"auroc": []}, tmp_path)
