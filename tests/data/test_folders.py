"""Folder inputs (--normal_dir, --abnormal_dir, --normal_test_dir, --mask_dir) give the same CategoryFiles as the
MVTec AD layout, with a seeded split of the normal images and one-line errors naming the flag."""
import os

import numpy as np
import pytest
from PIL import Image

from data.folders import find_folders, split_normal
from errors import DatasetError


def _write(path, size=(16, 16)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.zeros(size + (3,), np.uint8)).save(path)
    return path


def _names(paths):
    return [os.path.basename(p) for p in paths]


@pytest.fixture
def folders(tmp_path):
    for i in range(10):
        _write(str(tmp_path / "good" / f"g{i:02d}.png"))
    _write(str(tmp_path / "bad" / "loose.png"))           # directly inside: defect type "bad"
    _write(str(tmp_path / "bad" / "scratch" / "s1.png"))
    _write(str(tmp_path / "bad" / "scratch" / "s2.png"))
    _write(str(tmp_path / "masks" / "scratch" / "s1_mask.png"))
    _write(str(tmp_path / "masks" / "s2.png"))
    _write(str(tmp_path / "masks" / "loose_mask.png"))
    return tmp_path


def test_split_is_seeded_sorted_disjoint_and_complete():
    paths = [f"p{i}" for i in range(10)]
    train, test = split_normal(paths, 0.3, seed=0)
    assert len(test) == 3 and sorted(train + test) == paths and not set(train) & set(test)
    assert train == sorted(train) and test == sorted(test)
    assert split_normal(paths, 0.3, seed=0) == (train, test)
    assert any(split_normal(paths, 0.3, seed=s)[1] != test for s in range(1, 6))


def test_split_keeps_at_least_one_image_on_each_side():
    assert [len(x) for x in split_normal(["a", "b", "c"], 0.01, 0)] == [2, 1]
    assert [len(x) for x in split_normal(["a", "b"], 0.9, 0)] == [1, 1]
    assert split_normal(["a", "b"], 0.0, 0) == (["a", "b"], [])


def test_folders_give_labels_defect_types_and_masks(folders):
    files = find_folders(str(folders / "good"), str(folders / "bad"), mask_dir=str(folders / "masks"),
                         normal_test_fraction=0.2, split_seed=0)
    good = [i for i in files.test_items if i.label == 0]
    bad = [i for i in files.test_items if i.label == 1]
    assert len(files.train_paths) == 8 and len(good) == 2
    assert sorted(_names(files.train_paths) + [os.path.basename(i.path) for i in good]) == \
        [f"g{i:02d}.png" for i in range(10)]
    assert [(os.path.basename(i.path), i.defect_type) for i in bad] == \
        [("loose.png", "bad"), ("s1.png", "scratch"), ("s2.png", "scratch")]
    # mask_dir/<defect>/ first, then mask_dir/ itself; <stem>_mask.<ext> or <stem>.<ext>
    assert [os.path.relpath(i.mask_path, folders / "masks") for i in bad] == \
        ["loose_mask.png", os.path.join("scratch", "s1_mask.png"), "s2.png"]
    assert files.has_masks and files.warnings == []


def test_normal_test_dir_keeps_every_normal_image_for_training(folders):
    _write(str(folders / "good_test" / "t1.png"))
    files = find_folders(str(folders / "good"), str(folders / "bad"), normal_test_dir=str(folders / "good_test"))
    assert len(files.train_paths) == 10
    assert [os.path.basename(i.path) for i in files.test_items if i.label == 0] == ["t1.png"]
    assert not files.has_masks


def test_missing_mask_is_a_warning_and_turns_pixel_metrics_off(folders):
    os.remove(folders / "masks" / "s2.png")
    files = find_folders(str(folders / "good"), str(folders / "bad"), mask_dir=str(folders / "masks"))
    assert not files.has_masks
    assert [i.mask_path is None for i in files.test_items if i.label == 1] == [False, False, True]
    assert any(w.startswith("1 of 3 anomalous test images have no mask") for w in files.warnings)


def test_without_abnormal_dir_a_warning_says_evaluation_has_no_anomalies(folders):
    files = find_folders(str(folders / "good"))
    assert all(i.label == 0 for i in files.test_items)
    assert any("no --abnormal_dir" in w for w in files.warnings)


@pytest.mark.parametrize("kwargs, message", [
    ({"normal_dir": "missing"}, "--normal_dir="),
    ({"normal_dir": "good", "abnormal_dir": "missing"}, "--abnormal_dir="),
    ({"normal_dir": "good", "normal_test_dir": "missing"}, "--normal_test_dir="),
    ({"normal_dir": "good", "abnormal_dir": "bad", "mask_dir": "missing"}, "--mask_dir="),
    ({"normal_dir": "empty"}, "has no images"),
    ({"normal_dir": "good", "abnormal_dir": "empty"}, "has no images"),
    ({"normal_dir": "good", "normal_test_fraction": 1.0}, "--normal_test_fraction must be in [0, 1)"),
])
def test_bad_folders_are_one_line_errors_naming_the_flag(folders, kwargs, message):
    os.makedirs(folders / "empty", exist_ok=True)
    kwargs = {k: (str(folders / v) if isinstance(v, str) else v) for k, v in kwargs.items()}
    with pytest.raises(DatasetError) as err:
        find_folders(**kwargs)
    text = str(err.value)
    assert message in text and "\n" not in text
