"""Convert the elpv-dataset package (ELPV solar cells) into the MVTec AD folder layout: the embedded demo data.

The PyPI package elpv-dataset ships 2,624 electroluminescence images of solar cells (300x300, 8-bit grayscale
PNG) and a labels.csv with one whitespace-separated line per cell: ``path probability type``, where
probability in {0, 1/3, 2/3, 1} is the annotated defect probability and type is ``mono`` or ``poly``.

For every requested type, :func:`convert` writes one MVTec-style category::

    <output_dir>/<type>/train/good/cellNNNN.png        good cells (probability 0) used for training
    <output_dir>/<type>/test/good/cellNNNN.png         held-out good cells
    <output_dir>/<type>/test/defect_p33/cellNNNN.png   probability 1/3
    <output_dir>/<type>/test/defect_p67/cellNNNN.png   probability 2/3
    <output_dir>/<type>/test/defect_p100/cellNNNN.png  probability 1
    <output_dir>/<type>/manifest.csv                   file, split, probability (one row per image)
    <output_dir>/<type>/README.txt, LICENSE.txt        origin, split rule, licence and citations

There is no ground_truth folder: ELPV has image labels only, no defect masks (pixel-level metrics do not apply).
A defect folder is only created when the type has cells at that level. The PNG files are copied byte for byte
under their original names (no re-encoding).

Split of the good cells (documented contract, independent of machine, file system order and numpy version):
for each type separately, the good cells are ranked by ``hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()``
(``name`` = the image's file name, e.g. ``cell0004.png``; ties broken by name) and the first
``n_test = floor(test_good_fraction * n_good + 0.5)`` of them, clamped to ``[1, n_good - 1]``, go to test/good;
the rest go to train/good. The test fraction is therefore exact up to rounding, and the split depends only on
the seed and the set of good file names.

Idempotence: each category is built in a hidden ``.<type>.partial`` folder next to it and renamed into place
when complete, so an interrupted run leaves no half-written category. If the category already exists and its
manifest.csv equals the one this conversion would write (and the listed files are present with the source's
sizes and no extra images), the type is skipped without copying. Any other existing content is an error unless
``overwrite=True``, which replaces the category folder.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from errors import ConfigError, DatasetError

PathLike = Union[str, os.PathLike]

GOOD = "good"
# Probability level k/3 -> test folder name; level 0 is good.
DEFECT_FOLDERS = {1: "defect_p33", 2: "defect_p67", 3: "defect_p100"}
DEFAULT_TYPES = ("mono", "poly")
MANIFEST = "manifest.csv"
MANIFEST_HEADER = "file,split,probability"
_TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

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


class LabelRow(NamedTuple):
    """One line of labels.csv: image path relative to the csv's folder, defect probability, cell type."""

    path: str
    probability: float
    cell_type: str


class _Item(NamedTuple):
    source: Path  # absolute path of the package image
    dest: str  # path relative to the category folder, e.g. "test/defect_p33/cell0001.png"
    split: str  # "train" or "test"
    probability: float


def package_labels_path() -> Path:
    """Path of labels.csv inside the installed elpv-dataset package."""
    advice = "install it with `pip install elpv-dataset` (or `make install`), or pass --source path/to/labels.csv"
    try:
        from importlib import resources

        path = Path(str(resources.files("elpv_dataset").joinpath("data", "labels.csv")))
    except ModuleNotFoundError:
        raise DatasetError(f"the elpv-dataset package is not installed: {advice}") from None
    if not path.is_file():
        raise DatasetError(f"the elpv-dataset package has no data/labels.csv (looked at {path}): {advice}")
    return path


def read_labels(labels_csv: PathLike) -> List[LabelRow]:
    """Parse labels.csv (whitespace separated: path probability type) without loading any image.

    Blank lines and lines starting with '#' are ignored. Raises DatasetError naming the file and line for a
    malformed line, a probability outside [0, 1], a duplicate path, or a file with no rows.
    """
    labels_csv = Path(labels_csv)
    try:
        text = labels_csv.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{labels_csv}: labels file not found; pass --source path/to/labels.csv") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{labels_csv}: cannot read labels file ({e})") from None
    rows: List[LabelRow] = []
    seen = set()
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{labels_csv} line {number}"
        if len(fields) != 3:
            raise DatasetError(f"{where}: expected 3 fields 'path probability type', got {len(fields)}: {line!r}")
        path, prob_text, cell_type = fields
        try:
            probability = float(prob_text)
        except ValueError:
            raise DatasetError(f"{where}: probability {prob_text!r} is not a number") from None
        if not 0.0 <= probability <= 1.0:
            raise DatasetError(f"{where}: probability {prob_text} is outside [0, 1]")
        if path in seen:
            raise DatasetError(f"{where}: image {path} is listed twice")
        seen.add(path)
        rows.append(LabelRow(path, probability, cell_type))
    if not rows:
        raise DatasetError(f"{labels_csv}: no label rows found")
    return rows


def probability_level(probability: float) -> int:
    """0, 1, 2 or 3 for probability 0, 1/3, 2/3, 1; ValueError for anything else."""
    level = round(probability * 3)
    if abs(probability * 3 - level) > 1e-6 or not 0 <= level <= 3:
        raise ValueError(f"defect probability {probability!r} is not one of 0, 1/3, 2/3, 1")
    return int(level)


def split_rank_key(seed: int, name: str) -> str:
    """The documented, machine-independent ranking key of a good cell (see module docstring)."""
    return hashlib.sha256(f"{seed}:{name}".encode("utf-8")).hexdigest()


def n_test_good(n_good: int, test_good_fraction: float) -> int:
    """How many of n_good good cells go to test/good: floor(f * n + 0.5), clamped to [1, n - 1]."""
    return min(max(int(math.floor(test_good_fraction * n_good + 0.5)), 1), n_good - 1)



def _check_options(types: Sequence[str], test_good_fraction: float, seed: int) -> Tuple[str, ...]:
    if isinstance(types, str):
        types = [t for t in types.split(",")]
    types = tuple(t.strip() for t in types if t.strip())
    if not types:
        raise ConfigError("--types: give at least one cell type, e.g. --types=mono,poly")
    if len(set(types)) != len(types):
        raise ConfigError(f"--types: {','.join(types)} lists a type twice")
    if not isinstance(test_good_fraction, (int, float)) or not 0.0 < test_good_fraction < 1.0:
        raise ConfigError(f"--test_good_fraction={test_good_fraction}: must be strictly between 0 and 1, e.g. 0.25")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"--seed={seed!r}: must be an integer")
    return types


def _plan(labels_csv: Path, rows: Sequence[LabelRow], types: Sequence[str], test_good_fraction: float,
          seed: int) -> Dict[str, List[_Item]]:
    """Destination of every image of the requested types, sorted by destination path."""
    available = sorted({r.cell_type for r in rows})
    for cell_type in types:
        if cell_type not in available:
            raise ConfigError(f"--types: {labels_csv} has no cells of type {cell_type!r}; "
                              f"available: {','.join(available)}")
        if not _TYPE_NAME.match(cell_type):
            raise DatasetError(f"{labels_csv}: cell type {cell_type!r} cannot be used as a folder name")
    base = labels_csv.parent
    plan: Dict[str, List[_Item]] = {}
    for cell_type in types:
        good: List[Tuple[str, LabelRow]] = []
        items: List[_Item] = []
        names = set()
        for row in rows:
            if row.cell_type != cell_type:
                continue
            name = Path(row.path).name
            if not name.lower().endswith(".png"):
                raise DatasetError(f"{labels_csv}: {row.path} is not a .png file")
            if name in names:
                raise DatasetError(f"{labels_csv}: two {cell_type} images share the file name {name}")
            names.add(name)
            try:
                level = probability_level(row.probability)
            except ValueError as e:
                raise DatasetError(f"{labels_csv}: {row.path}: {e}") from None
            if level == 0:
                good.append((name, row))
            else:
                items.append(_Item(base / row.path, f"test/{DEFECT_FOLDERS[level]}/{name}", "test", row.probability))
        if len(good) < 2:
            raise DatasetError(f"{labels_csv}: type {cell_type!r} has {len(good)} good (probability 0) cells; "
                               "at least 2 are needed for a train and a test split")
        good.sort(key=lambda g: (split_rank_key(seed, g[0]), g[0]))
        n_test = n_test_good(len(good), test_good_fraction)
        for i, (name, row) in enumerate(good):
            split = "test" if i < n_test else "train"
            items.append(_Item(base / row.path, f"{split}/{GOOD}/{name}", split, row.probability))
        items.sort(key=lambda it: it.dest)
        plan[cell_type] = items
    return plan


def _counts(items: Iterable[_Item]) -> Dict[str, int]:
    counts = {f"train/{GOOD}": 0, f"test/{GOOD}": 0}
    counts.update({f"test/{folder}": 0 for folder in DEFECT_FOLDERS.values()})
    for it in items:
        counts[it.dest.rsplit("/", 1)[0]] += 1
    return counts


def _manifest_text(items: Sequence[_Item]) -> str:
    lines = [MANIFEST_HEADER] + [f"{it.dest},{it.split},{it.probability:.4f}" for it in items]
    return "\n".join(lines) + "\n"


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


def _verify_existing(category: Path, items: Sequence[_Item], expected_manifest: str) -> Optional[str]:
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


def _write_category(category: Path, items: Sequence[_Item], manifest: str, readme: str) -> None:
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
    """Write <output_dir>/<type>/ in MVTec AD layout for each type; see the module docstring for the rules.

    labels_csv: a labels.csv whose image paths are relative to its folder; None = the installed package's.
    dry_run: validate and plan only (checks that every source image exists), write nothing.

    Returns {type: {"path": str, "status": "written" | "unchanged" | "planned",
                    "counts": {"train/good": n, "test/good": n, "test/defect_p33": n, "test/defect_p67": n,
                               "test/defect_p100": n}}}.
    Raises ConfigError for bad options, DatasetError for bad labels, missing images, or an existing category
    that does not match (unless overwrite).
    """
    types = _check_options(types, test_good_fraction, seed)
    labels_csv = Path(labels_csv) if labels_csv is not None else package_labels_path()
    rows = read_labels(labels_csv)
    plan = _plan(labels_csv, rows, types, test_good_fraction, seed)
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
        manifest = _manifest_text(items)
        counts = _counts(items)
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
