import os

import pytest

from data.files import find_category
from errors import DatasetError
from tests.helpers.images import make_category, pattern, save_image


def _one_line(err):
    message = str(err.value)
    assert "\n" not in message
    return message


def test_layout_order_labels_masks(tmp_path):
    make_category(str(tmp_path), "widget", train=5, test={"good": 2, "crack": 3, "hole": 1})
    os.makedirs(tmp_path / "widget" / "train" / "good" / ".cache")
    (tmp_path / "widget" / "train" / "good" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "widget" / "train" / "good" / "notes.txt").write_text("not an image")
    files = find_category(str(tmp_path), "widget")
    assert len(files.train_paths) == 5
    assert files.train_paths == sorted(files.train_paths)
    assert [t.defect_type for t in files.test_items] == ["good"] * 2 + ["crack"] * 3 + ["hole"]
    assert [t.label for t in files.test_items] == [0, 0, 1, 1, 1, 1]
    assert [os.path.basename(t.path).split(".")[0] for t in files.test_items[2:5]] == ["000", "001", "002"]
    assert files.has_masks
    assert all(t.mask_path is None for t in files.test_items if t.label == 0)
    assert all(t.mask_path.endswith("_mask.png") for t in files.test_items if t.label == 1)
    assert any("ignored 1 file" in w and "notes.txt" not in w for w in files.warnings)


def test_extensions_case_insensitive(tmp_path):
    folder = tmp_path / "c" / "train" / "good"
    for name in ("a.PNG", "b.Jpg", "c.JPEG", "d.bmp", "e.tif", ".hidden.png"):
        save_image(str(folder / name), pattern(8, 8), "RGB") if not name.endswith(".tif") else \
            (folder / name).write_bytes(b"x")
    files = find_category(str(tmp_path), "c")
    assert [os.path.basename(p) for p in files.train_paths] == ["a.PNG", "b.Jpg", "c.JPEG", "d.bmp"]
    assert files.test_items == [] and not files.has_masks
    assert any("no test folder" in w for w in files.warnings)


def test_without_ground_truth_has_no_masks(tmp_path):
    make_category(str(tmp_path), "plain", masks=False)
    files = find_category(str(tmp_path), "plain")
    assert not files.has_masks
    assert all(t.mask_path is None for t in files.test_items)
    assert sum(t.label for t in files.test_items) == 3


def test_missing_mask_is_a_warning(tmp_path):
    cat = make_category(str(tmp_path), "widget", test={"good": 1, "crack": 2})
    os.remove(os.path.join(cat, "ground_truth", "crack", "001_mask.png"))
    files = find_category(str(tmp_path), "widget")
    assert not files.has_masks  # pixel metrics off, image-level labels kept
    assert [t.label for t in files.test_items] == [0, 1, 1]
    assert files.test_items[2].mask_path is None and files.test_items[1].mask_path is not None
    assert any("1 of 2 anomalous" in w and "001" in w for w in files.warnings)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError) as err:
        find_category(str(tmp_path / "nowhere"), "bottle")
    assert str(tmp_path / "nowhere") in _one_line(err)


def test_unknown_category_lists_found(tmp_path):
    make_category(str(tmp_path), "alpha", train=1, test={})
    make_category(str(tmp_path), "beta", train=1, test={})
    with pytest.raises(DatasetError) as err:
        find_category(str(tmp_path), "gamma")
    message = _one_line(err)
    assert "gamma" in message and "alpha, beta" in message


def test_missing_train_good(tmp_path):
    os.makedirs(tmp_path / "c" / "test" / "good")
    with pytest.raises(DatasetError) as err:
        find_category(str(tmp_path), "c")
    assert os.path.join("c", "train", "good") in _one_line(err)


def test_empty_train_good(tmp_path):
    os.makedirs(tmp_path / "c" / "train" / "good")
    (tmp_path / "c" / "train" / "good" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError) as err:
        find_category(str(tmp_path), "c")
    message = _one_line(err)
    assert os.path.join("c", "train", "good") in message and "no" in message
