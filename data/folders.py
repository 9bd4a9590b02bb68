"""Inputs given as plain folders (as anomalib's Folder dataset), beside the MVTec AD layout of data/files.py.

    --normal_dir=good/               defect-free images (training, and good test images unless --normal_test_dir)
    --abnormal_dir=bad/              optional: anomalous test images; directly inside (defect type = the folder's
                                     name) and/or in subfolders (one defect type per subfolder)
    --normal_test_dir=good_test/     optional: good test images; without it a seeded fraction of --normal_dir
                                     (--normal_test_fraction, --normal_split_seed) is kept out of training for testing
    --mask_dir=masks/                optional: masks of the anomalous images, <stem>_mask.<ext> or <stem>.<ext>,
                                     in mask_dir/<defect type>/ or directly in mask_dir/

The result is the same CategoryFiles as find_category's, with the same rules for file types, warnings and masks,
so training, evaluation and prediction do not know which layout the images came from. The split does not depend
on the training seed: runs with different --seed values are tested on the same images.
"""
import os
from typing import List, Optional

import numpy as np

from data.files import GOOD, CategoryFiles, TestItem, _find_mask, _subdirs, display_path, list_images
from errors import DatasetError

DEFAULT_NORMAL_TEST_FRACTION = 0.2


def _folder(path: str, flag: str) -> str:
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise DatasetError(f"--{flag}={display_path(path)} does not exist or is not a folder")
    return path


def split_normal(paths: List[str], fraction: float, seed: int):
    """(train, test): round(fraction * n) of the paths, drawn with `seed`, for testing (at least one when
    fraction > 0 and n >= 2, never all); both lists keep the sorted order."""
    n = len(paths)
    n_test = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    chosen = set(np.random.default_rng(seed).permutation(n)[:n_test].tolist())
    train = [p for i, p in enumerate(paths) if i not in chosen]
    test = [p for i, p in enumerate(paths) if i in chosen]
    return train, test


def _abnormal_groups(abnormal_dir: str, warnings: List[str]):
    """[(defect type, paths)]: images directly in abnormal_dir (type = its name), then each subfolder's."""
    groups = []
    direct = list_images(abnormal_dir, warnings)
    if direct:
        groups.append((os.path.basename(os.path.normpath(abnormal_dir)), direct))
    for sub in _subdirs(abnormal_dir):
        paths = list_images(os.path.join(abnormal_dir, sub), warnings)
        if paths:
            groups.append((sub, paths))
    if not groups:
        raise DatasetError(f"--abnormal_dir={display_path(abnormal_dir)} has no images (directly or in its "
                           "subfolders)")
    return groups


def find_folders(normal_dir: str, abnormal_dir: Optional[str] = None, normal_test_dir: Optional[str] = None,
                 mask_dir: Optional[str] = None, normal_test_fraction: float = DEFAULT_NORMAL_TEST_FRACTION,
                 split_seed: int = 0) -> CategoryFiles:
    """CategoryFiles from plain folders (see the module doc). DatasetError naming the flag for a missing folder,
    a folder without images, or a fraction outside [0, 1)."""
    if not 0.0 <= normal_test_fraction < 1.0:
        raise DatasetError(f"--normal_test_fraction must be in [0, 1), got {normal_test_fraction}")
    warnings: List[str] = []
    normal_dir = _folder(normal_dir, "normal_dir")
    normal = list_images(normal_dir, warnings)
    if not normal:
        raise DatasetError(f"--normal_dir={display_path(normal_dir)} has no images (.png/.jpg/.jpeg/.bmp "
                           "directly inside)")
    if normal_test_dir:
        train_paths = normal
        good_test = list_images(_folder(normal_test_dir, "normal_test_dir"), warnings)
        if not good_test:
            warnings.append(f"--normal_test_dir={display_path(normal_test_dir)} has no images")
    else:
        train_paths, good_test = split_normal(normal, normal_test_fraction, split_seed)
    test_items = [TestItem(path=p, defect_type=GOOD, label=0, mask_path=None) for p in good_test]

    missing_masks: List[str] = []
    if mask_dir:
        mask_dir = _folder(mask_dir, "mask_dir")
    if abnormal_dir:
        for defect, paths in _abnormal_groups(_folder(abnormal_dir, "abnormal_dir"), warnings):
            for path in paths:
                mask_path = None
                if mask_dir:
                    stem = os.path.splitext(os.path.basename(path))[0]
                    mask_path = (_find_mask(os.path.join(mask_dir, defect), stem) if os.path.isdir(
                        os.path.join(mask_dir, defect)) else None) or _find_mask(mask_dir, stem)
                    if mask_path is None:
                        missing_masks.append(path)
                test_items.append(TestItem(path=path, defect_type=defect, label=1, mask_path=mask_path))
    else:
        warnings.append("no --abnormal_dir: the category can be trained, but its evaluation has no anomalous "
                        "images")
    if mask_dir and not abnormal_dir:
        warnings.append("--mask_dir is ignored without --abnormal_dir")
    anomalous = sum(item.label for item in test_items)
    if missing_masks:
        warnings.append(f"{len(missing_masks)} of {anomalous} anomalous test images have no mask in "
                        f"{display_path(mask_dir)} (first: {display_path(missing_masks[0])}): pixel-level metrics "
                        "are skipped, image-level metrics are unaffected")
    has_masks = bool(mask_dir) and anomalous > 0 and not missing_masks
    return CategoryFiles(root=normal_dir, train_paths=train_paths, test_items=test_items, has_masks=has_masks,
                         warnings=warnings)
