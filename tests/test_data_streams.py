import numpy as np
import pytest

from data.categories import category_spec
from data.files import find_category
from data.images import read_image, resize_uint8
from data.patches import stitch_patches
from data.streams import (GrayAsRGB, iter_test_chunks, iter_test_samples, load_train_images, test_arrays,
                          test_dataset, train_dataset)
from errors import DatasetError
from tests.fixtures_images import make_category, save_mask


def _first_batches(ds, k):
    return [b.numpy() for b in ds.take(k)]


@pytest.fixture
def widget(tmp_path):
    make_category(str(tmp_path), "widget", train=6, test={"good": 2, "crack": 2, "hole": 1})
    return find_category(str(tmp_path), "widget")


def test_load_train_images_mixed_formats(widget):
    spec = category_spec("widget", image_size=64)
    images = load_train_images(spec, widget)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    assert not isinstance(images, GrayAsRGB)  # the tree has colour images
    np.testing.assert_array_equal(images[0], resize_uint8(read_image(widget.train_paths[0]), 64))


def test_intensity_mode_reaches_train_and_test_images(widget):
    from data.images import standardize_intensity
    from data.streams import iter_test_samples
    spec = category_spec("widget", image_size=64, intensity="per_image")
    images = load_train_images(spec, widget)
    np.testing.assert_array_equal(images[0], standardize_intensity(resize_uint8(read_image(widget.train_paths[0]), 64)))
    sample = next(iter_test_samples(spec, widget))
    expected = standardize_intensity(resize_uint8(read_image(sample["path"]), 64))
    np.testing.assert_array_equal(sample["image_uint8"], expected)
    np.testing.assert_allclose(sample["image"][0], expected / 127.5 - 1.0, atol=1e-6)


def test_gray_training_set_is_stored_once(tmp_path):
    make_category(str(tmp_path), "g", train=4, test={}, variants=(("png", "L"), ("png", "I;16")))
    spec = category_spec("g", type="texture", image_size=128, patch_size=32)
    files = find_category(str(tmp_path), "g")
    images = load_train_images(spec, files)
    assert isinstance(images, GrayAsRGB) and images.shape == (4, 128, 128, 3)
    assert images.compact.shape == (4, 128, 128, 1)
    np.testing.assert_array_equal(np.asarray(images)[..., 2], images.compact[..., 0])
    batch = next(iter(train_dataset(spec, images, 3, seed=1))).numpy()
    assert batch.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(batch[..., 0], batch[..., 2])


@pytest.mark.parametrize("kind", ["object", "texture"])
def test_train_stream_shapes_range_and_seeds(widget, kind):
    if kind == "object":
        spec = category_spec("widget", image_size=32, rotate=True)
    else:
        spec = category_spec("widget", type="texture", image_size=64, patch_size=32)
    images = load_train_images(spec, widget)
    a = _first_batches(train_dataset(spec, images, 4, seed=3), 4)  # 16 samples: crosses the epoch of 6
    b = _first_batches(train_dataset(spec, images, 4, seed=3), 4)
    c = _first_batches(train_dataset(spec, images, 4, seed=4), 4)
    for batch in a:
        assert batch.shape == (4, spec.patch_size, spec.patch_size, 3) and batch.dtype == np.float32
        assert batch.min() >= -1.0 and batch.max() <= 1.0 and batch.std() > 0.05
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_train_stream_without_rotation_yields_training_images(widget):
    spec = category_spec("widget", image_size=32, rotate=False)
    images = load_train_images(spec, widget)
    batches = _first_batches(train_dataset(spec, images, 3, seed=0), 2)  # exactly one epoch of 6
    got = np.concatenate(batches)
    expected = images.astype(np.float32) / 127.5 - 1.0
    order = [int(np.argmin(np.abs(expected - g).reshape(6, -1).sum(1))) for g in got]
    assert sorted(order) == list(range(6))  # a shuffled permutation of the training set, unaugmented
    np.testing.assert_allclose(got, expected[order], atol=1e-6)


def test_object_test_stream(widget):
    spec = category_spec("widget", image_size=32)
    samples = list(iter_test_samples(spec, widget))
    assert [s["label"] for s in samples] == [0, 0, 1, 1, 1]
    assert [s["defect_type"] for s in samples] == ["good", "good", "crack", "crack", "hole"]
    assert [s["path"] for s in samples] == [t.path for t in widget.test_items]
    for s in samples:
        assert s["image"].shape == (1, 32, 32, 3) and s["image"].dtype == np.float32
        assert s["image_uint8"].shape == (32, 32, 3) and s["image_uint8"].dtype == np.uint8
        np.testing.assert_allclose(s["image"][0], s["image_uint8"] / 127.5 - 1.0, atol=1e-6)
        assert s["mask"].shape == (32, 32) and s["mask"].dtype == np.float32
        assert set(np.unique(s["mask"])) <= {0.0, 1.0}
        assert (s["mask"].sum() > 0) == (s["label"] == 1)  # fixture masks mark a rectangle in defects


def test_texture_test_stream_patches_stitch_back(widget):
    spec = category_spec("widget", type="texture", image_size=64, patch_size=32)
    arrays = test_arrays(spec, widget)
    assert arrays["image"].shape == (5, 4, 32, 32, 3)
    assert arrays["mask"].shape == (5, 64, 64) and arrays["label"].tolist() == [0, 0, 1, 1, 1]
    for i in range(5):
        stitched = stitch_patches(arrays["image"][i], 64)
        np.testing.assert_allclose(stitched, arrays["image_uint8"][i] / 127.5 - 1.0, atol=1e-6)
    chunks = list(iter_test_chunks(spec, widget, chunk_size=2))
    assert [len(c["label"]) for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([c["image"] for c in chunks]), arrays["image"])
    elements = list(test_dataset(spec, widget).batch(2).as_numpy_iterator())
    assert elements[0]["image"].shape == (2, 4, 32, 32, 3) and elements[-1]["label"].tolist() == [1]
    assert elements[1]["defect_type"].tolist() == [b"crack", b"crack"]


def test_mask_size_mismatch_names_both_files(widget):
    item = next(t for t in widget.test_items if t.mask_path)
    save_mask(item.mask_path, np.ones((7, 9), bool))
    spec = category_spec("widget", image_size=32)
    with pytest.raises(DatasetError) as err:
        list(iter_test_samples(spec, widget))
    message = str(err.value)
    assert item.mask_path in message and item.path in message and "\n" not in message


def test_corrupt_training_image_names_file(widget):
    with open(widget.train_paths[2], "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DatasetError) as err:
        load_train_images(category_spec("widget", image_size=32), widget)
    assert widget.train_paths[2] in str(err.value) and "\n" not in str(err.value)


def test_texture_without_rotation_is_a_plain_crop(widget):
    spec = category_spec("widget", type="texture", image_size=64, patch_size=32, rotate=False)
    images = load_train_images(spec, widget)
    batch = next(iter(train_dataset(spec, images, 6, seed=2))).numpy()
    full = images.astype(np.float32) / 127.5 - 1.0
    for crop in batch:  # every crop is an exact window of some training image
        found = any(np.allclose(crop, full[i, y:y + 32, x:x + 32], atol=1e-6)
                    for i in range(6) for y in range(33) for x in range(33))
        assert found
