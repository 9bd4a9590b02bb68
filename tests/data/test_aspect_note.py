"""Non-square images: check_category_files returns every train/test image's size, and non_square_note says in
one line how many are stretched to the square model input."""
import os

import numpy as np
from PIL import Image

from data.files import find_category
from data.images import check_category_files, non_square_note


def _write(path, width, height):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 100, np.uint8)).save(path)


def test_note_counts_non_square_images_and_names_the_common_size():
    note = non_square_note([(40, 30), (40, 30), (64, 64), (30, 50)], 128)
    assert note == ("note: 3 of 4 images are not square (most often 40x30 px); each is resized to 128x128, "
                    "which changes its aspect ratio (crop or pad them beforehand to keep it)")


def test_no_note_when_every_image_is_square():
    assert non_square_note([(64, 64), (256, 256)], 128) is None


def test_check_category_files_returns_train_and_test_sizes_without_masks(tmp_path):
    root = tmp_path / "set" / "part"
    _write(str(root / "train" / "good" / "a.png"), 40, 30)
    _write(str(root / "train" / "good" / "b.png"), 32, 32)
    _write(str(root / "test" / "good" / "c.png"), 50, 20)
    _write(str(root / "test" / "scratch" / "d.png"), 50, 20)
    _write(str(root / "ground_truth" / "scratch" / "d_mask.png"), 50, 20)
    files = find_category(str(tmp_path / "set"), "part")
    sizes = check_category_files(files)
    assert sorted(sizes) == sorted([(40, 30), (32, 32), (50, 20), (50, 20)])
    assert non_square_note(sizes, 64).startswith("note: 3 of 4 images are not square (most often 50x20 px)")
