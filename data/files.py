"""Finding and validating one category folder in the MVTec AD layout.

    <data_dir>/<category>/train/good/*.png
    <data_dir>/<category>/test/good/*.png
    <data_dir>/<category>/test/<defect_type>/*.png
    <data_dir>/<category>/ground_truth/<defect_type>/<stem>_mask.png      (optional)

Image files: .png .jpg .jpeg .bmp (any case); hidden files (starting with ".") and other extensions are ignored
(a warning counts the ignored ones), and so are broken symbolic links (counted too). File names need not be
UTF-8: paths keep their bytes (Python's surrogate escapes) so the files open, and display_path shows them with
U+FFFD replacement characters wherever a name is printed or written to a CSV file. Order is stable: test/good first, then defect types alphabetically, files by
name within a folder.

Masks policy: a category without ground_truth/ has no masks (image-level metrics only). When ground_truth/ exists
but some anomalous test image has no mask, this is a WARNING, not an error: the image keeps its label (image-level
metrics stay usable), its mask_path is None, and `has_masks` is False so pixel-level metrics are skipped rather
than computed against incomplete ground truth. Mask lookup: ground_truth/<defect>/<stem>_mask.<ext>, falling back
to ground_truth/<defect>/<stem>.<ext> (ext any accepted image extension, .png first).

Errors are DatasetError with a one-line message naming the folder: missing dataset root, unknown category (lists
the category folders found), missing or empty train/good. A mask whose size differs from its image is detected
when the pair is decoded (data/images.py).
"""
import os
from dataclasses import dataclass, field
from typing import List, Optional

from errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
GOOD = "good"


@dataclass
class TestItem:
    __test__ = False  # not a pytest test class

    path: str
    defect_type: str
    label: int  # good 0, anomalous 1
    mask_path: Optional[str]


@dataclass
class CategoryFiles:
    root: str
    train_paths: List[str]
    test_items: List[TestItem]
    has_masks: bool
    warnings: List[str] = field(default_factory=list)


def display_path(path) -> str:
    """A path (str or bytes) as printable UTF-8 text: bytes of a file name that are not UTF-8 (kept in str paths
    as surrogate escapes) become U+FFFD. For messages and CSV cells; open files with the path itself."""
    if isinstance(path, bytes):
        return path.decode("utf-8", "replace")
    path = str(path)
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return path.encode("utf-8", "replace").decode("utf-8")


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _subdirs(folder: str) -> List[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def list_images(folder: str, warnings: Optional[List[str]] = None) -> List[str]:
    """Sorted paths of the accepted image files directly in `folder`; counts ignored files into `warnings`."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        raise DatasetError(f"cannot list folder {display_path(folder)}: {e.strerror or e}") from None
    paths, ignored, broken = [], 0, 0
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_file = entry.is_file()
            dangling = not is_file and entry.is_symlink() and not os.path.exists(entry.path)
        except OSError:  # a symbolic link loop
            is_file, dangling = False, True
        if dangling:
            broken += 1
        elif not is_file:
            continue
        elif is_image_file(entry.name):
            paths.append(entry.path)
        else:
            ignored += 1
    if ignored and warnings is not None:
        warnings.append(f"ignored {ignored} file(s) in {display_path(folder)} that are not "
                        f"{'/'.join(IMAGE_EXTENSIONS)} images")
    if broken and warnings is not None:
        warnings.append(f"ignored {broken} broken symbolic link(s) in {display_path(folder)}")
    return paths


def _find_mask(gt_dir: str, stem: str) -> Optional[str]:
    for suffix in ("_mask", ""):
        for ext in IMAGE_EXTENSIONS:
            for cased in (ext, ext.upper()):
                candidate = os.path.join(gt_dir, stem + suffix + cased)
                if os.path.isfile(candidate):
                    return candidate
    return None


def find_category(data_dir: str, category: str) -> CategoryFiles:
    """Validate <data_dir>/<category> and list its train images and labelled test items (see module doc)."""
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise DatasetError(f"dataset root {data_dir} does not exist or is not a folder: "
                           "set --data_dir to the folder that holds the category folders")
    root = os.path.join(data_dir, category)
    if not category or not os.path.isdir(root):
        found = _subdirs(data_dir)
        listing = ", ".join(found) if found else "none"
        raise DatasetError(f"unknown category {category!r}: no folder {root}; category folders found in "
                           f"{data_dir}: {listing}")

    warnings: List[str] = []
    train_dir = os.path.join(root, "train", GOOD)
    if not os.path.isdir(train_dir):
        raise DatasetError(f"missing training folder {train_dir}: a category needs train/good/ with "
                           "defect-free images (MVTec AD layout)")
    train_paths = list_images(train_dir, warnings)
    if not train_paths:
        raise DatasetError(f"training folder {train_dir} has no {'/'.join(IMAGE_EXTENSIONS)} images")

    test_dir = os.path.join(root, "test")
    gt_root = os.path.join(root, "ground_truth")
    has_gt = os.path.isdir(gt_root)
    test_items: List[TestItem] = []
    missing_masks: List[str] = []
    if not os.path.isdir(test_dir):
        warnings.append(f"no test folder {test_dir}: the category can be trained but not evaluated")
    else:
        defect_types = [d for d in _subdirs(test_dir) if d != GOOD]
        for defect in ([GOOD] if os.path.isdir(os.path.join(test_dir, GOOD)) else []) + defect_types:
            folder = os.path.join(test_dir, defect)
            paths = list_images(folder, warnings)
            if not paths:
                warnings.append(f"test folder {folder} has no images")
            for path in paths:
                if defect == GOOD:
                    test_items.append(TestItem(path=path, defect_type=GOOD, label=0, mask_path=None))
                    continue
                mask_path = None
                if has_gt:
                    stem = os.path.splitext(os.path.basename(path))[0]
                    mask_path = _find_mask(os.path.join(gt_root, defect), stem)
                    if mask_path is None:
                        missing_masks.append(path)
                test_items.append(TestItem(path=path, defect_type=defect, label=1, mask_path=mask_path))
        if not test_items:
            warnings.append(f"test folder {test_dir} has no images: the category cannot be evaluated")

    anomalous = sum(item.label for item in test_items)
    has_masks = has_gt and anomalous > 0 and not missing_masks
    if missing_masks:
        warnings.append(f"{len(missing_masks)} of {anomalous} anomalous test images have no mask in {gt_root} "
                        f"(first: {display_path(missing_masks[0])}): pixel-level metrics are skipped, image-level "
                        "metrics are unaffected")
    return CategoryFiles(root=root, train_paths=train_paths, test_items=test_items, has_masks=has_masks,
                         warnings=warnings)
