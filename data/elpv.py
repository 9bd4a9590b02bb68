"""Converting the elpv-dataset package (ELPV solar cells) into the MVTec AD folder layout: the embedded demo data.

:func:`convert` reads the labels (data/elpv_labels.py), plans each category's folders and its good-cell split
(data/elpv_layout.py, which documents the layout and the split rule) and writes them. The PNG files are copied
byte for byte under their original names (no re-encoding), with a manifest.csv, a README.txt and a LICENSE.txt.
:func:`format_summary` is the table that scripts/prepare_elpv.py prints.

Idempotence: each category is built in a hidden ``.<type>.partial`` folder next to it and renamed into place
when complete, so an interrupted run leaves no half-written category. If the category already exists and its
manifest.csv equals the one this conversion would write (and the listed files are present with the source's
sizes and no extra images), the type is skipped without copying. Any other existing content is an error unless
``overwrite=True``, which replaces the category folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, Optional, Sequence

from data.elpv_labels import PathLike, package_labels_path, read_labels
from data.elpv_layout import (DEFAULT_TYPES, DEFECT_FOLDERS, GOOD, MANIFEST, Item, check_options, folder_counts,
                              manifest_text, plan_categories)
from errors import DatasetError

LICENSE_TEXT = """\
Images and labels: the ELPV dataset (elpv-dataset on PyPI, https://github.com/zae-bayern/elpv-dataset),
by ZAE Bayern / Sergiu Deitsch et al., licensed under Creative Commons Attribution-NonCommercial-ShareAlike 4.0
International (CC BY-NC-SA 4.0): https://creativecommons.org/licenses/by-nc-sa/4.0/
Non-commercial use only; derived datasets must be shared under the same licence. The files in this folder are
unmodified copies of the package's images, rearranged into the MVTec AD folder layout by cbigan-tf
(data/elpv.py).

If you use these images, cite:
- Buerhop-Lutz, C.; Deitsch, S.; Maier, A.; Gallwitz, F.; Berger, S.; Doll, B.; Hauch, J.; Camus, C. &
  Brabec, C. J. A Benchmark for Visual Identification of Defective Solar Cells in Electroluminescence Imagery.
  European PV Solar Energy Conference and Exhibition (EU PVSEC), 2018. DOI: 10.4229/35thEUPVSEC20182018-5CV.3.15
- Deitsch, S.; Christlein, V.; Berger, S.; Buerhop-Lutz, C.; Maier, A.; Gallwitz, F. & Riess, C. Automatic
  classification of defective photovoltaic module cells in electroluminescence images. Solar Energy, 2019, 185,
  455-468. DOI: 10.1016/j.solener.2019.02.067
- Deitsch, S.; Buerhop-Lutz, C.; Sovetkin, E.; Steland, A.; Maier, A.; Gallwitz, F. & Riess, C. Segmentation
  of photovoltaic module cells in uncalibrated electroluminescence images. Machine Vision and Applications,
  2021, 32(4). DOI: 10.1007/s00138-021-01191-9
"""


def _readme_text(cell_type: str, labels_csv: Path, counts: Dict[str, int], test_good_fraction: float,
                 seed: int) -> str:
    table = "\n".join(f"  {folder:<18} {n:5d}" for folder, n in counts.items())
    return (
        f"ELPV solar cells, type {cell_type}, in MVTec AD layout (made by cbigan-tf data/elpv.py from "
        f"{labels_csv.name} in elpv-dataset format).\n\n"
        "good = defect probability 0; defect_p33 / defect_p67 / defect_p100 = probability 1/3, 2/3, 1.\n"
        "No ground_truth folder: ELPV has no defect masks.\n\n"
        f"Split of the good cells: test_good_fraction={test_good_fraction}, seed={seed}. The good cells are ranked\n"
        "by sha256(f\"{seed}:{file name}\") (hex digest, ties by name) and the first\n"
        "floor(fraction * n_good + 0.5), clamped to [1, n_good - 1], are test/good; the rest train/good.\n\n"
        f"Images per folder:\n{table}\n\n"
        "manifest.csv lists every image (file, split, probability). Licence and citations: LICENSE.txt.\n"
    )


def _verify_existing(category: Path, items: Sequence[Item], expected_manifest: str) -> Optional[str]:
    """None if `category` holds exactly this conversion, otherwise the reason it does not."""
    manifest = category / MANIFEST
    try:
        existing = manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"it has no {MANIFEST} (not made by this converter, or made by an interrupted older version)"
    except (OSError, UnicodeDecodeError) as e:
        return f"its {MANIFEST} cannot be read ({e})"
    if existing != expected_manifest:
        return (f"its {MANIFEST} differs from this conversion (different labels, "
                "--test_good_fraction or --seed)")
    for it in items:
        try:
            size = (category / it.dest).stat().st_size
        except FileNotFoundError:
            return f"{it.dest} is missing"
        if size != it.source.stat().st_size:
            return f"{it.dest} differs from its source {it.source}"
    listed = {it.dest for it in items}
    for split in ("train", "test"):
        for path in sorted((category / split).rglob("*")):
            if path.is_file():
                rel = path.relative_to(category).as_posix()
                if rel not in listed:
                    return f"{rel} is not in {MANIFEST}"
    return None


def _write_category(category: Path, items: Sequence[Item], manifest: str, readme: str) -> None:
    partial = category.parent / f".{category.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)  # left over from an interrupted run
    for folder in sorted({it.dest.rsplit("/", 1)[0] for it in items}):
        (partial / folder).mkdir(parents=True)
    for it in items:
        shutil.copyfile(it.source, partial / it.dest)
    (partial / "README.txt").write_text(readme, encoding="utf-8")
    (partial / "LICENSE.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    (partial / MANIFEST).write_text(manifest, encoding="utf-8")  # written last: its presence means complete
    if category.exists():
        shutil.rmtree(category)
    os.replace(partial, category)


def convert(labels_csv: Optional[PathLike], output_dir: PathLike, types: Sequence[str] = DEFAULT_TYPES,
            test_good_fraction: float = 0.25, seed: int = 0, overwrite: bool = False,
            dry_run: bool = False) -> Dict[str, dict]:
    """Write <output_dir>/<type>/ in MVTec AD layout for each type; the rules: data/elpv_layout.py (layout, split)
    and the module docstring (idempotence).

    labels_csv: a labels.csv whose image paths are relative to its folder; None = the installed package's.
    dry_run: validate and plan only (checks that every source image exists), write nothing.

    Returns {type: {"path": str, "status": "written" | "unchanged" | "planned",
                    "counts": {"train/good": n, "test/good": n, "test/defect_p33": n, "test/defect_p67": n,
                               "test/defect_p100": n}}}.
    Raises ConfigError for bad options, DatasetError for bad labels, missing images, or an existing category
    that does not match (unless overwrite).
    """
    types = check_options(types, test_good_fraction, seed)
    labels_csv = Path(labels_csv) if labels_csv is not None else package_labels_path()
    rows = read_labels(labels_csv)
    plan = plan_categories(labels_csv, rows, types, test_good_fraction, seed)
    for items in plan.values():  # fail before writing anything
        for it in items:
            if not it.source.is_file():
                raise DatasetError(f"{labels_csv}: image {it.source} is missing; reinstall elpv-dataset "
                                   "or fix the labels file")

    output_dir = Path(output_dir)
    summary: Dict[str, dict] = {}
    work = []
    for cell_type, items in plan.items():
        category = output_dir / cell_type
        manifest = manifest_text(items)
        counts = folder_counts(items)
        status = "planned" if dry_run else "written"
        if category.exists():
            if not category.is_dir():
                raise DatasetError(f"{category} exists and is not a folder; remove it or choose another --output_dir")
            reason = _verify_existing(category, items, manifest)
            if reason is None:
                status = "unchanged"
            elif not overwrite:
                raise DatasetError(f"{category} already exists but {reason}; pass --overwrite to replace it, "
                                   "or choose another --output_dir")
        summary[cell_type] = {"path": str(category), "status": status, "counts": counts}
        if status == "written":
            readme = _readme_text(cell_type, labels_csv, counts, test_good_fraction, seed)
            work.append((category, items, manifest, readme))

    if work:
        output_dir.mkdir(parents=True, exist_ok=True)
    for category, items, manifest, readme in work:
        _write_category(category, items, manifest, readme)
    return summary


def format_summary(summary: Dict[str, dict]) -> str:
    """A small text table: one row per type, one column per folder."""
    folders = [f"train/{GOOD}", f"test/{GOOD}"] + [f"test/{f}" for f in DEFECT_FOLDERS.values()]
    header = ["type"] + folders + ["status", "path"]
    lines = [header]
    for cell_type, info in summary.items():
        lines.append([cell_type] + [str(info["counts"][f]) for f in folders] + [info["status"], info["path"]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
