import numpy as np
import pytest

from data.categories import category_spec
from data.files import find_category
from data.images import prepare_image, read_image, resize_image, to_uint8
from data.patches import stitch_patches
from data.streams import (GrayAsRGB, iter_test_chunks, iter_test_samples, load_train_images, test_arrays,
                          test_dataset, train_dataset)
from errors import DatasetError
from tests.helpers.images import make_category, save_image, save_mask


def _first_batches(ds, k):
    return [b.numpy() for b in ds.take(k)]


@pytest.fixture
def widget(tmp_path):
    make_category(str(tmp_path), "widget", train=6, test={"good": 2, "crack": 2, "hole": 1})
    return find_category(str(tmp_path), "widget")


def test_load_train_images_mixed_formats(widget):
    spec = category_spec("widget", image_size=64)
    images = load_train_images(spec, widget)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.float32
    assert not isinstance(images, GrayAsRGB)  # the tree has colour images
    np.testing.assert_array_equal(images[0], resize_image(read_image(widget.train_paths[0]), 64))
    assert np.mean(images != np.rint(images)) > 0.5  # stored unrounded


def test_intensity_mode_reaches_train_and_test_images(widget):
    from data.images import standardize_intensity
    from data.streams import iter_test_samples
    spec = category_spec("widget", image_size=64, intensity="per_image")
    images = load_train_images(spec, widget)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images[0], standardize_intensity(resize_image(read_image(widget.train_paths[0]), 64)))
    sample = next(iter_test_samples(spec, widget))
    expected = standardize_intensity(resize_image(read_image(sample["path"]), 64))
    np.testing.assert_array_equal(sample["image_uint8"], to_uint8(expected))
    np.testing.assert_allclose(sample["image"][0], expected / 127.5 - 1.0, atol=1e-6)


def test_gray_training_set_is_stored_once(tmp_path):
    make_category(str(tmp_path), "g", train=4, test={}, variants=(("png", "L"), ("png", "I;16")))
    spec = category_spec("g", type="texture", image_size=128, patch_size=32)
    files = find_category(str(tmp_path), "g")
    images = load_train_images(spec, files)
    assert isinstance(images, GrayAsRGB) and images.shape == (4, 128, 128, 3)
    assert images.compact.shape == (4, 128, 128, 1) and images.compact.dtype == np.float32
    assert images.compact.nbytes == 4 * 128 * 128 * 4  # one float32 channel
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
        resized = prepare_image(read_image(s["path"]), 32)  # the model input is the unrounded resize
        np.testing.assert_allclose(s["image"][0], resized / 127.5 - 1.0, atol=1e-6)
        np.testing.assert_array_equal(s["image_uint8"], to_uint8(resized))  # the rounded copy is for pictures
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
        resized = prepare_image(read_image(arrays["path"][i]), 64)
        np.testing.assert_allclose(stitched, resized / 127.5 - 1.0, atol=1e-6)
    chunks = list(iter_test_chunks(spec, widget, chunk_size=2))
    assert [len(c["label"]) for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([c["image"] for c in chunks]), arrays["image"])
    elements = list(test_dataset(spec, widget).batch(2).as_numpy_iterator())
    assert elements[0]["image"].shape == (2, 4, 32, 32, 3) and elements[-1]["label"].tolist() == [1]
    assert elements[1]["defect_type"].tolist() == [b"crack", b"crack"]


@pytest.mark.parametrize("kind", ["object", "texture"])
def test_rotated_training_images_are_not_truncated(tmp_path, kind):
    # Horizontal ramps (one per channel, different slopes): point-symmetric about the centre, as are the
    # rotation about the centre and the NEAREST fill, so any rotation keeps each image's mean. Rotating uint8
    # images truncated the bilinear mixes and made them darker.
    from config import TrainConfig

    make_category(str(tmp_path), "ramp", train=4, test={"good": 1}, sizes=((64, 64),), variants=(("png", "RGB"),))
    files = find_category(str(tmp_path), "ramp")
    x = np.arange(64, dtype=np.float64)
    ramp = np.stack([np.tile(20 + 3 * x, (64, 1)), np.tile(230 - 2 * x, (64, 1)), np.tile(90 + x, (64, 1))], -1)
    for path in files.train_paths:
        save_image(path, ramp.astype(np.uint8))
    if kind == "object":
        spec = category_spec("ramp", image_size=64, rotate=True)
    else:  # the rotated crops of a texture: the crop window is not centred, so compare with the ramp's value
        spec = category_spec("ramp", type="texture", image_size=64, patch_size=32, rotate=True)
    defaults = TrainConfig()
    images = load_train_images(spec, files)
    np.testing.assert_array_equal(images[0], ramp)  # same size: the resize is the identity
    batch = next(iter(train_dataset(spec, images, 4, seed=0, interpolation=defaults.rotation_interpolation,
                                    fill_mode=defaults.rotation_fill))).numpy()
    levels = (batch.astype(np.float64) + 1.0) * 127.5
    if kind == "object":
        assert np.abs(levels - ramp).max() > 10  # really rotated
        np.testing.assert_allclose(levels.mean(axis=(1, 2)), np.broadcast_to(ramp.mean(axis=(0, 1)), (4, 3)),
                                   atol=1e-3)
    else:
        # inside the crop (no fill) the rotated ramp is again a linear function of the pixel position, which
        # bilinear interpolation reproduces exactly: a plane fits every crop up to float rounding
        yy, xx = np.mgrid[0:32, 0:32]
        design = np.stack([np.ones(32 * 32), xx.ravel(), yy.ravel()], 1)
        for crop in levels:
            for c in range(3):
                coef = np.linalg.lstsq(design, crop[..., c].ravel(), rcond=None)[0]
                assert np.abs(design @ coef - crop[..., c].ravel()).max() < 1e-3
        assert np.abs(levels - levels[:, :1, :1]).max() > 10


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
