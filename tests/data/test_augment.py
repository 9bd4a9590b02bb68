import math

import numpy as np
import pytest
import tensorflow as tf

from data.augment import (angles_to_projective_transforms, max_crop_for_angle, random_rotated_crop,
                          random_rotation, rotate, rotated_crops)


def test_rotate_90_is_counterclockwise_rot90():
    img = np.arange(5 * 5 * 2, dtype=np.uint8).reshape(5, 5, 2)
    np.testing.assert_array_equal(rotate(img, math.pi / 2, "NEAREST").numpy(), np.rot90(img, k=1))
    np.testing.assert_array_equal(rotate(img, -math.pi / 2, "NEAREST").numpy(), np.rot90(img, k=-1))
    even = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    np.testing.assert_array_equal(rotate(even, math.pi / 2, "NEAREST").numpy(), np.rot90(even, k=1))
    # bilinear (the default) on floats: the same up to float rounding of cos(pi / 2)
    np.testing.assert_allclose(rotate(even, math.pi / 2).numpy(), np.rot90(even, k=1), atol=1e-5)


def test_rotate_batch_with_per_image_angles():
    img = np.arange(36, dtype=np.float32).reshape(6, 6, 1)
    out = rotate(np.stack([img, img]), [0.0, math.pi], "NEAREST").numpy()
    np.testing.assert_array_equal(out[0], img)
    np.testing.assert_array_equal(out[1], np.rot90(img, k=2))


def test_transform_matches_tfa_formula():
    t = angles_to_projective_transforms([0.3], 10, 20).numpy()[0]
    c, s = math.cos(0.3), math.sin(0.3)
    expected = [c, -s, (19 - (c * 19 - s * 9)) / 2, s, c, (9 - (s * 19 + c * 9)) / 2, 0, 0]
    np.testing.assert_allclose(t, expected, rtol=1e-6, atol=1e-6)


def test_rotated_crop_equals_crop_of_rotated_image():
    img = np.random.default_rng(0).integers(0, 255, (1, 40, 40, 3)).astype(np.uint8)
    angle = -0.4
    full = rotate(img, angle, fill_mode="CONSTANT").numpy()
    crop = rotated_crops(img, [angle], [9], [12], 16).numpy()
    np.testing.assert_array_equal(crop[0], full[0, 12:28, 9:25])


@pytest.mark.parametrize("interpolation", ["NEAREST", "BILINEAR"])
def test_rotated_crops_have_no_blank_corners(interpolation):
    white = np.full((8, 128, 128, 3), 255, np.uint8)
    for k in range(6):
        out = random_rotated_crop(white, 45.0, 64, seed=[k, 1], interpolation=interpolation,
                                  fill_mode="CONSTANT", fill_value=0.0).numpy()
        assert out.shape == (8, 64, 64, 3)
        assert np.all(out == 255), "a crop contains fill pixels from outside the rotated image"
    # the same crops on a non-constant image do differ (the check above is not vacuous)
    img = np.random.default_rng(1).integers(0, 255, (128, 128, 3)).astype(np.uint8)
    a = random_rotated_crop(img, 45.0, 64, seed=[0, 1]).numpy()
    b = random_rotated_crop(img, 45.0, 64, seed=[0, 2]).numpy()
    assert a.shape == (64, 64, 3) and not np.array_equal(a, b)


def test_rotated_crop_reaches_the_limit_without_blank_pixels():
    side = max_crop_for_angle(45, 128)
    assert 64 < side < 128 / math.sqrt(2) + 1
    white = np.full((4, 128, 128, 1), 255, np.float32)
    out = random_rotated_crop(white, 45.0, side, seed=[3, 3], fill_mode="CONSTANT", fill_value=0.0).numpy()
    assert np.all(out == 255)
    # the whole image at 45 degrees does contain blank corners: the fill is detectable
    assert np.any(rotate(white, math.pi / 4, fill_mode="CONSTANT").numpy() == 0)


def test_random_rotated_crop_is_clockwise_and_in_range():
    # A one-pixel-wide horizontal line through the centre tilts; clockwise rotation on screen makes the
    # line go DOWN to the right in image coordinates (rows grow downwards).
    img = np.zeros((101, 101, 1), np.float32)
    img[50, :] = 1.0
    slopes = []
    for k in range(5):
        out = random_rotated_crop(img, 45.0, 40, seed=[k, 7]).numpy()[..., 0]
        rows = [int(np.argmax(out[:, c])) for c in range(40) if out[:, c].max() > 0]
        assert len(rows) > 10
        slopes.append(rows[-1] - rows[0])
    assert min(slopes) >= 0 and max(slopes) > 0, slopes


def test_seeded_augmentation_is_reproducible():
    img = np.random.default_rng(2).integers(0, 255, (4, 32, 32, 3)).astype(np.uint8)
    a = random_rotation(img, 45.0, seed=[1, 2]).numpy()
    b = random_rotation(img, 45.0, seed=[1, 2]).numpy()
    c = random_rotation(img, 45.0, seed=[1, 3]).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rotate_inside_tf_function():
    f = tf.function(lambda x, a: rotate(x, a, "NEAREST"))
    img = tf.reshape(tf.range(9, dtype=tf.float32), [3, 3, 1])
    np.testing.assert_array_equal(f(img, tf.constant(math.pi / 2)).numpy(), np.rot90(img.numpy(), 1))


def test_defaults_are_the_authors_rotation_and_the_configs():
    import inspect

    from config import TrainConfig
    from data.streams import train_dataset
    defaults = TrainConfig()
    assert (defaults.rotation_interpolation, defaults.rotation_fill) == ("BILINEAR", "NEAREST")
    for fn in (rotate, rotated_crops, random_rotated_crop, random_rotation, train_dataset):
        params = inspect.signature(fn).parameters
        assert params["interpolation"].default == defaults.rotation_interpolation, fn.__name__
        assert params["fill_mode"].default == defaults.rotation_fill, fn.__name__


def test_float_rotation_keeps_the_mean_and_uint8_would_truncate():
    # A horizontal ramp is point-symmetric about the centre, and so are bilinear rotation about the centre and
    # the NEAREST fill (clamped coordinates): every rotation keeps its mean exactly (up to float rounding).
    ramp = np.tile(np.arange(64, dtype=np.float32) * 3.0 + 20.0, (64, 1))[None, :, :, None].repeat(8, axis=0)
    out = random_rotation(ramp, 45.0, seed=[5, 6]).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), ramp.mean(), atol=1e-3)
    assert np.abs(out - ramp).max() > 10  # really rotated
    # the same rotation of the uint8 image truncates the interpolated values: darker on average
    truncated = random_rotation(ramp.astype(np.uint8), 45.0, seed=[5, 6]).numpy()
    assert truncated.dtype == np.uint8
    assert ramp.mean() - truncated.astype(np.float64).mean() > 0.2
