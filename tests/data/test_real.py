"""Checks on the real sets in ../shared/data (counts from its README). Skipped when the folder is absent."""
import collections
import os
from pathlib import Path

import numpy as np
import pytest

from data.categories import category_spec
from data.files import find_category
from data.images import prepare_image, read_image, read_mask, to_uint8
from data.patches import stitch_patches
from data.streams import GrayAsRGB, iter_test_samples, load_train_images, train_dataset
from tests.helpers import REPO

SHARED = Path(os.environ.get("CBIGAN_SHARED_DATA") or REPO / ".." / "shared" / "data")
BOTTLE = SHARED / "mvtec-ad" / "bottle"
TILE = SHARED / "magnetic-tile" / "magnetic_tile"

needs_bottle = pytest.mark.skipif(not BOTTLE.is_dir(), reason=f"real data not available: {BOTTLE} is absent")
needs_tile = pytest.mark.skipif(not TILE.is_dir(), reason=f"real data not available: {TILE} is absent")


def _counts(files):
    return dict(collections.Counter(t.defect_type for t in files.test_items))


@needs_bottle
def test_bottle_counts_match_readme():
    files = find_category(str(SHARED / "mvtec-ad"), "bottle")
    assert len(files.train_paths) == 209
    assert _counts(files) == {"good": 20, "broken_large": 20, "broken_small": 22, "contamination": 21}
    assert sum(t.label for t in files.test_items) == 63
    assert not files.has_masks and files.warnings == []


@needs_tile
def test_magnetic_tile_counts_match_readme():
    files = find_category(str(SHARED / "magnetic-tile"), "magnetic_tile")
    assert len(files.train_paths) == 714
    assert _counts(files) == {"good": 238, "blowhole": 115, "break": 85, "crack": 57, "fray": 32, "uneven": 103}
    assert sum(t.label for t in files.test_items) == 392
    assert files.has_masks and files.warnings == []
    assert all(t.mask_path for t in files.test_items if t.label)


@needs_bottle
def test_bottle_object_streams():
    spec = category_spec("bottle")
    files = find_category(str(SHARED / "mvtec-ad"), "bottle")
    files.train_paths = files.train_paths[:16]
    images = load_train_images(spec, files)
    assert images.shape == (16, 128, 128, 3) and images.dtype == np.float32
    import tensorflow as tf
    raw = read_image(files.train_paths[0]).astype(np.float32)
    np.testing.assert_array_equal(images[0], tf.image.resize(raw, (128, 128), antialias=False).numpy())
    batch = next(iter(train_dataset(spec, images, 8, seed=0))).numpy()
    assert batch.shape == (8, 128, 128, 3) and -1 <= batch.min() < batch.max() <= 1
    files.test_items = files.test_items[18:22]  # last good ones and first broken_large ones
    samples = list(iter_test_samples(spec, files))
    assert [s["label"] for s in samples] == [0, 0, 1, 1]
    assert all(s["image"].shape == (1, 128, 128, 3) and not s["mask"].any() for s in samples)


@needs_tile
def test_magnetic_tile_texture_streams():
    spec = category_spec("magnetic_tile", type="texture", image_size=512, patch_size=64)
    files = find_category(str(SHARED / "magnetic-tile"), "magnetic_tile")
    shapes = {read_image(p).shape[:2] for p in files.train_paths[:20]}
    assert len(shapes) > 1 and any(h != w for h, w in shapes)  # varied, non-square: the loader must cope
    files.train_paths = files.train_paths[:8]
    images = load_train_images(spec, files)
    assert images.shape == (8, 512, 512, 3)
    # gray tiles stay exactly gray through the float resize: stored as one float32 channel (1 MB per image)
    assert isinstance(images, GrayAsRGB) and images.compact.dtype == np.float32
    assert images.compact.nbytes == 8 * 512 * 512 * 4
    batch = next(iter(train_dataset(spec, images, 16, seed=0))).numpy()
    assert batch.shape == (16, 64, 64, 3) and -1 <= batch.min() <= batch.max() <= 1
    defects = [t for t in files.test_items if t.label][:3]
    files.test_items = defects
    for item, s in zip(defects, iter_test_samples(spec, files)):
        assert s["image"].shape == (64, 64, 64, 3) and s["mask"].shape == (512, 512)
        resized = prepare_image(read_image(item.path), 512)
        np.testing.assert_allclose(stitch_patches(s["image"], 512), resized / 127.5 - 1, atol=1e-6)
        np.testing.assert_array_equal(s["image_uint8"], to_uint8(resized))
        raw = read_mask(item.mask_path)
        assert raw.any() and s["mask"].any()
        # the resized mask covers about the same fraction of the image as the original
        assert abs(s["mask"].mean() - raw.mean()) < 0.02
