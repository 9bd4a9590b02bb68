import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data.images import (TARGET_MEAN, TARGET_STD, prepare_image, read_image, read_mask, resize_image, resize_mask,
                         standardize_intensity, to_model_range, to_uint8)
from errors import DatasetError
from tests.helpers.images import pattern, save_image


@pytest.mark.parametrize("ext, mode", [("png", "RGB"), ("bmp", "RGB"), ("png", "RGBA"), ("png", "L"),
                                       ("bmp", "L"), ("png", "I;16")])
def test_lossless_formats_decode_exactly(tmp_path, ext, mode):
    rgb = pattern(13, 21, seed=3)
    path = str(tmp_path / f"x.{ext}")
    save_image(path, rgb, mode)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (13, 21, 3)
    expected = rgb if mode in ("RGB", "RGBA") else np.repeat(rgb[..., :1], 3, axis=2)
    np.testing.assert_array_equal(out, expected)


def test_sixteen_bit_scaling_uses_full_range(tmp_path):
    values = np.array([[0, 128, 255, 256, 32767, 65535]], np.uint16)
    path = str(tmp_path / "deep.png")
    Image.fromarray(values).save(path)
    out = read_image(path)[0, :, 0]
    np.testing.assert_array_equal(out, [0, 0, 1, 1, 127, 255])  # round(v / 257)


@pytest.mark.parametrize("ext, mode", [("jpg", "RGB"), ("jpeg", "L"), ("png", "P")])
def test_lossy_and_palette_formats_are_close(tmp_path, ext, mode):
    rgb = pattern(32, 24, seed=1)
    path = str(tmp_path / f"x.{ext}")
    save_image(path, rgb, mode)
    out = read_image(path)
    expected = rgb if mode != "L" else np.repeat(rgb[..., :1], 3, axis=2)
    assert out.shape == (32, 24, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).mean() < 12


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_corrupt_files_raise_dataset_error_naming_file(tmp_path, content):
    path = tmp_path / "broken.png"
    if content == "truncated":
        save_image(str(path), pattern(64, 64), "RGB")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(DatasetError) as err:
        read_image(str(path))
    message = str(err.value)
    assert str(path) in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_image(str(tmp_path / "gone.png"))


def test_read_mask_nonzero_is_defect(tmp_path):
    m = np.zeros((5, 7), np.uint8)
    m[1, 2] = 255
    m[3, 4] = 1
    Image.fromarray(m).save(tmp_path / "m.png")
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[0, 0, 2] = 9
    Image.fromarray(rgb).save(tmp_path / "rgb_mask.png")
    out = read_mask(str(tmp_path / "m.png"))
    assert out.dtype == bool and out.shape == (5, 7) and out.sum() == 2 and out[1, 2] and out[3, 4]
    assert read_mask(str(tmp_path / "rgb_mask.png")).sum() == 1


def test_prepare_image_is_the_unrounded_bilinear_resize_without_antialiasing():
    img = pattern(50, 70, seed=2)
    out = prepare_image(img, 32)
    ref = tf.image.resize(tf.cast(img, tf.float32), (32, 32), method="bilinear", antialias=False).numpy()
    assert out.dtype == np.float32 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(resize_image(img, 32), ref)
    # not rounded: the interpolated values keep their fractions
    assert np.mean(out != np.rint(out)) > 0.5
    # and not antialiased: the antialiased filter gives other values
    antialiased = tf.image.resize(tf.cast(img, tf.float32), (32, 32), method="bilinear", antialias=True).numpy()
    assert np.abs(out - antialiased).mean() > 1.0
    # a constant image stays constant (no dark border)
    assert np.all(prepare_image(np.full((40, 30, 3), 200, np.uint8), 16) == 200.0)


def test_resize_keeps_a_half_level():
    # two columns 100 and 101 shrunk to one: exactly 100.5, which rounding to uint8 would turn into 100 or 101
    img = np.zeros((2, 2, 3), np.uint8)
    img[:, 0], img[:, 1] = 100, 101
    assert prepare_image(img, 1)[0, 0, 0] == 100.5
    assert to_uint8(prepare_image(img, 1))[0, 0, 0] in (100, 101)  # the display copy is rounded


def test_resize_mask_threshold_half():
    mask = np.zeros((8, 8), bool)
    mask[:, :4] = True  # left half
    out = resize_mask(mask, 4)
    assert out.dtype == np.float32 and set(np.unique(out)) <= {0.0, 1.0}
    np.testing.assert_array_equal(out, np.repeat([[1, 1, 0, 0]], 4, axis=0))
    tiny = np.zeros((8, 8), bool)
    tiny[0, 0] = True  # 8 -> 4: output pixel (0, 0) samples the point between source pixels 0 and 1: 0.25
    assert resize_mask(tiny, 4).sum() == 0


def test_resize_mask_samples_like_the_image():
    # 9 -> 3 without antialiasing: output pixel k samples source pixel 3k + 1 exactly, so only the centre pixel
    # of each 3x3 block decides (the antialiased filter would weigh the whole block and drop these)
    mask = np.zeros((9, 9), bool)
    mask[1, 1] = mask[4, 7] = True
    np.testing.assert_array_equal(resize_mask(mask, 3), [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    image = np.where(mask[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2)
    np.testing.assert_array_equal(prepare_image(image, 3)[..., 0] >= 127.5, resize_mask(mask, 3) == 1)


def test_to_model_range():
    x = to_model_range(np.array([0, 127, 255], np.uint8)).numpy()
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [-1.0, 127 / 127.5 - 1, 1.0], atol=1e-7)


def test_standardize_intensity_removes_brightness_and_contrast():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, (40, 30, 1)).repeat(3, axis=2)
    dark = np.clip(np.rint(60 + 15 * base), 0, 255).astype(np.uint8)    # dim, low contrast
    bright = np.clip(np.rint(170 + 30 * base), 0, 255).astype(np.uint8)  # the same pattern, brighter and stronger
    a, b = standardize_intensity(dark), standardize_intensity(bright)
    assert a.dtype == np.float32 and a.shape == dark.shape
    for out in (a, b):
        assert abs(out.astype(float).mean() - TARGET_MEAN) < 1.0 and abs(out.astype(float).std() - TARGET_STD) < 1.0
    # the same pattern under other lighting comes out (almost) the same; the raw images differ by ~110 levels
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0
    assert np.abs(dark.astype(int) - bright.astype(int)).mean() > 100
    # by hand on a tiny image: values 10, 20, 30, 40 (mean 25, std sqrt(125))
    tiny = np.array([[[10], [20]], [[30], [40]]], np.uint8)
    expected = (np.array([10, 20, 30, 40]) - 25) * TARGET_STD / np.sqrt(125) + TARGET_MEAN  # not rounded
    np.testing.assert_allclose(standardize_intensity(tiny).ravel(), expected, rtol=1e-6)
    assert np.all(np.abs(expected - np.rint(expected)) > 0.1)
    # float input (a resized image) works the same; out-of-range values are clipped to [0, 255]
    np.testing.assert_allclose(standardize_intensity(tiny.astype(np.float32) + 0.25).ravel(), expected, rtol=1e-6)
    spike = np.zeros((10, 10, 1), np.float32)
    spike[3, 4] = 255.0  # 12.6 standard deviations above the mean: 128 + 12.6 * 40 > 255
    assert standardize_intensity(spike).max() == 255.0
    # a flat image has no contrast to scale: it becomes flat TARGET_MEAN
    assert np.all(standardize_intensity(np.full((5, 5, 3), 200, np.uint8)) == TARGET_MEAN)


def test_prepare_image():
    img = pattern(50, 70, seed=2)
    np.testing.assert_array_equal(prepare_image(img, 32), resize_image(img, 32))
    per_image = prepare_image(img, 32, "per_image")
    assert per_image.dtype == np.float32
    np.testing.assert_array_equal(per_image, standardize_intensity(resize_image(img, 32)))
    assert abs(per_image.mean() - TARGET_MEAN) < 0.01 and np.mean(per_image != np.rint(per_image)) > 0.5
    with pytest.raises(ValueError, match="intensity"):
        prepare_image(img, 32, "global")


def test_model_range_numpy_matches_the_graph_version_and_inverts():
    from data.images import from_model_range_numpy, to_model_range, to_model_range_numpy
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    x = to_model_range_numpy(u8)
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(x, to_model_range(u8).numpy())
    np.testing.assert_array_equal(from_model_range_numpy(x), u8)
    np.testing.assert_array_equal(from_model_range_numpy(np.array([-1.5, 1.5])), [0, 255])  # clipped
    floats = np.array([0.25, 100.5, 254.75], np.float32)  # resized images are floats: same formula, not rounded
    np.testing.assert_array_equal(to_model_range_numpy(floats), floats / 127.5 - 1.0)
    np.testing.assert_array_equal(to_model_range(floats).numpy(), to_model_range_numpy(floats))
