"""Reading the labels of the elpv-dataset package (ELPV solar cells): where its labels.csv is, and its rows.

The PyPI package elpv-dataset ships 2,624 electroluminescence images of solar cells (300x300, 8-bit grayscale
PNG) and a labels.csv with one whitespace-separated line per cell: ``path probability type``, where
probability in {0, 1/3, 2/3, 1} is the annotated defect probability and type is ``mono`` or ``poly``.
Reading the labels opens no image. data/elpv_layout.py decides where each image goes, data/elpv.py writes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, NamedTuple, Union

from errors import DatasetError

PathLike = Union[str, os.PathLike]


class LabelRow(NamedTuple):
    """One line of labels.csv: image path relative to the csv's folder, defect probability, cell type."""

    path: str
    probability: float
    cell_type: str


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
