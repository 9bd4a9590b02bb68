"""Choosing the MVTec AD folders of the ELPV cells: which image goes where, the seeded good-cell split, the manifest.

For every requested type, the conversion (data/elpv.py) writes one MVTec-style category::

    <output_dir>/<type>/train/good/cellNNNN.png        good cells (probability 0) used for training
    <output_dir>/<type>/test/good/cellNNNN.png         held-out good cells
    <output_dir>/<type>/test/defect_p33/cellNNNN.png   probability 1/3
    <output_dir>/<type>/test/defect_p67/cellNNNN.png   probability 2/3
    <output_dir>/<type>/test/defect_p100/cellNNNN.png  probability 1
    <output_dir>/<type>/manifest.csv                   file, split, probability (one row per image)
    <output_dir>/<type>/README.txt, LICENSE.txt        origin, split rule, licence and citations

There is no ground_truth folder: ELPV has image labels only, no defect masks (pixel-level metrics do not apply).
A defect folder is only created when the type has cells at that level. The images keep their original names.

Split of the good cells (documented contract, independent of machine, file system order and numpy version):
for each type separately, the good cells are ranked by ``hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()``
(``name`` = the image's file name, e.g. ``cell0004.png``; ties broken by name) and the first
``n_test = floor(test_good_fraction * n_good + 0.5)`` of them, clamped to ``[1, n_good - 1]``, go to test/good;
the rest go to train/good. The test fraction is therefore exact up to rounding, and the split depends only on
the seed and the set of good file names.

This module only plans (labels from data/elpv_labels.py in, destinations and manifest text out); it writes
nothing.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Sequence, Tuple

from data.elpv_labels import LabelRow, probability_level
from errors import ConfigError, DatasetError

GOOD = "good"
# Probability level k/3 -> test folder name; level 0 is good.
DEFECT_FOLDERS = {1: "defect_p33", 2: "defect_p67", 3: "defect_p100"}
DEFAULT_TYPES = ("mono", "poly")
MANIFEST = "manifest.csv"
MANIFEST_HEADER = "file,split,probability"
_TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Item(NamedTuple):
    """One image of a category: where it comes from and where it goes."""

    source: Path  # absolute path of the package image
    dest: str  # path relative to the category folder, e.g. "test/defect_p33/cell0001.png"
    split: str  # "train" or "test"
    probability: float


def split_rank_key(seed: int, name: str) -> str:
    """The documented, machine-independent ranking key of a good cell (see module docstring)."""
    return hashlib.sha256(f"{seed}:{name}".encode("utf-8")).hexdigest()


def n_test_good(n_good: int, test_good_fraction: float) -> int:
    """How many of n_good good cells go to test/good: floor(f * n + 0.5), clamped to [1, n - 1]."""
    return min(max(int(math.floor(test_good_fraction * n_good + 0.5)), 1), n_good - 1)


def check_options(types: Sequence[str], test_good_fraction: float, seed: int) -> Tuple[str, ...]:
    """The requested types as a tuple (a comma-separated string is split); ConfigError naming the flag."""
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


def plan_categories(labels_csv: Path, rows: Sequence[LabelRow], types: Sequence[str],
                    test_good_fraction: float, seed: int) -> Dict[str, List[Item]]:
    """Destination of every image of the requested types, sorted by destination path."""
    available = sorted({r.cell_type for r in rows})
    for cell_type in types:
        if cell_type not in available:
            raise ConfigError(f"--types: {labels_csv} has no cells of type {cell_type!r}; "
                              f"available: {','.join(available)}")
        if not _TYPE_NAME.match(cell_type):
            raise DatasetError(f"{labels_csv}: cell type {cell_type!r} cannot be used as a folder name")
    base = labels_csv.parent
    plan: Dict[str, List[Item]] = {}
    for cell_type in types:
        good: List[Tuple[str, LabelRow]] = []
        items: List[Item] = []
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
                items.append(Item(base / row.path, f"test/{DEFECT_FOLDERS[level]}/{name}", "test", row.probability))
        if len(good) < 2:
            raise DatasetError(f"{labels_csv}: type {cell_type!r} has {len(good)} good (probability 0) cells; "
                               "at least 2 are needed for a train and a test split")
        good.sort(key=lambda g: (split_rank_key(seed, g[0]), g[0]))
        n_test = n_test_good(len(good), test_good_fraction)
        for i, (name, row) in enumerate(good):
            split = "test" if i < n_test else "train"
            items.append(Item(base / row.path, f"{split}/{GOOD}/{name}", split, row.probability))
        items.sort(key=lambda it: it.dest)
        plan[cell_type] = items
    return plan


def folder_counts(items: Iterable[Item]) -> Dict[str, int]:
    """Images per folder ("train/good", "test/good", "test/defect_p33", ...), every folder listed, 0 if empty."""
    counts = {f"train/{GOOD}": 0, f"test/{GOOD}": 0}
    counts.update({f"test/{folder}": 0 for folder in DEFECT_FOLDERS.values()})
    for it in items:
        counts[it.dest.rsplit("/", 1)[0]] += 1
    return counts


def manifest_text(items: Sequence[Item]) -> str:
    """manifest.csv of a category: the header, then one line "dest,split,probability" per image."""
    lines = [MANIFEST_HEADER] + [f"{it.dest},{it.split},{it.probability:.4f}" for it in items]
    return "\n".join(lines) + "\n"
