import numpy as np
import tensorflow as tf

from data.patches import stitch_patches, to_patches, to_patches_numpy


def test_grid_order_is_row_major():
    img = np.arange(4 * 6 * 1).reshape(4, 6, 1)
    p = to_patches(img, 2).numpy()
    assert p.shape == (6, 2, 2, 1)
    np.testing.assert_array_equal(p[1, :, :, 0], img[0:2, 2:4, 0])  # second patch: first row, second column
    np.testing.assert_array_equal(p[3, :, :, 0], img[2:4, 0:2, 0])  # fourth patch: second row, first column


def test_stitch_inverts_patches_exactly():
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)
    patches = to_patches(img, 16)
    assert patches.shape == (16, 16, 16, 3)
    back = stitch_patches(patches, 64)
    assert tf.is_tensor(back)
    np.testing.assert_array_equal(back.numpy(), img)
    np.testing.assert_array_equal(stitch_patches(patches.numpy(), 64), img)  # numpy in, numpy out
    np.testing.assert_array_equal(to_patches_numpy(img, 16), patches.numpy())


def test_batches_and_channelless_maps():
    imgs = np.random.default_rng(1).random((3, 32, 32, 2)).astype(np.float32)
    p = to_patches(imgs, 8)
    assert p.shape == (3, 16, 8, 8, 2)
    np.testing.assert_array_equal(stitch_patches(p, 32).numpy(), imgs)
    maps = np.random.default_rng(2).random((16, 8, 8)).astype(np.float32)  # one score map per patch
    full = stitch_patches(maps, 32)
    assert full.shape == (32, 32)
    np.testing.assert_array_equal(full[8:16, 0:8], maps[4])


def test_to_patches_in_tf_function():
    f = tf.function(lambda x: to_patches(x, 4))
    img = tf.reshape(tf.range(8 * 8 * 3, dtype=tf.float32), [8, 8, 3])
    np.testing.assert_array_equal(f(img).numpy(), to_patches_numpy(img.numpy(), 4))
