"""The sub-pixel form of conv3x3(bilinear_2x(x)) (models/upsample_conv.py) against a plain numpy bilinear
upsampling + convolution, and the generator's inference path that uses it against its direct path."""
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers.config import tiny_config
from tests.helpers.numpy_ops import conv3x3_same
from models import blocks
from models.generator import Generator
from models.upsample_conv import direct, upsample_conv


def bilinear_2x_numpy(x):
    """2x bilinear upsampling with half-pixel centres and edge clamping (what UpSampling2D does), in float64."""
    def along(a, axis):
        n = a.shape[axis]
        out = []
        for k in range(2 * n):
            source = (k + 0.5) / 2 - 0.5
            low = int(np.floor(source))
            frac = source - low
            lo, hi = np.take(a, min(max(low, 0), n - 1), axis), np.take(a, min(max(low + 1, 0), n - 1), axis)
            out.append((1 - frac) * lo + frac * hi)
        return np.stack(out, axis)
    return along(along(x.astype(np.float64), 1), 2)


@pytest.mark.parametrize("shape,out_channels", [((2, 8, 8, 3), 3), ((1, 5, 7, 2), 4), ((3, 2, 2, 4), 1),
                                                ((1, 3, 4, 6), 3)])
def test_upsample_conv_equals_bilinear_then_convolution(shape, out_channels):
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=shape).astype(np.float32)
    kernel = rng.normal(size=(3, 3, shape[-1], out_channels)).astype(np.float32)
    expected = conv3x3_same(bilinear_2x_numpy(x), kernel)
    folded = upsample_conv(tf.constant(x), tf.constant(kernel)).numpy()
    assert folded.shape == expected.shape
    np.testing.assert_allclose(folded, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    # the direct form (the strips' reference) and Keras' UpSampling2D agree with the same numpy reference
    np.testing.assert_allclose(direct(tf.constant(x), tf.constant(kernel)).numpy(), expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())
    up = tf.keras.layers.UpSampling2D(2, interpolation="bilinear")(tf.constant(x)).numpy()
    np.testing.assert_allclose(up, bilinear_2x_numpy(x), rtol=1e-6, atol=1e-6)


def test_ring_is_needed():
    """Without the recomputed ring the folded convolution is wrong exactly on the outer 2 pixels (so the test
    above checks the ring code, not only the folded kernel)."""
    from models.upsample_conv import folded_kernel
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 6, 6, 2)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 2, 2)).astype(np.float32)
    expected = conv3x3_same(bilinear_2x_numpy(x), kernel)
    inner = tf.nn.depth_to_space(tf.nn.conv2d(x, folded_kernel(tf.constant(kernel)), 1, "SAME"), 2).numpy()
    error = np.abs(inner - expected).max(axis=(0, 3))
    assert error[2:-2, 2:-2].max() < 1e-4
    assert error[0].max() > 1e-2 and error[:, -1].max() > 1e-2


@pytest.mark.parametrize("overrides", [dict(), dict(use_bias=True), dict(normalization="instance", channels=2)])
def test_generator_inference_path_equals_direct_path(monkeypatch, overrides):
    config = tiny_config(**overrides)
    for side in (32, 64):
        generator = Generator(image_size=side, channels=config.channels, latent_size=config.latent_size,
                              normalization=config.normalization, use_bias=config.use_bias)
        if config.use_bias:  # non-zero biases, so a dropped bias would show
            generator.set_weights([w + 0.1 if w.ndim == 1 else w for w in generator.get_weights()])
        assert any(b._folded_upsampling(False) for b in generator.blocks)  # the path under test is taken
        z = tf.constant(np.random.default_rng(side).normal(size=(3, config.latent_size)).astype(np.float32))
        folded = generator(z, training=False).numpy()
        monkeypatch.setattr(blocks, "FOLDED_UPSAMPLING_MAX_FILTERS", 0)
        assert not any(b._folded_upsampling(False) for b in generator.blocks)
        plain = generator(z, training=False).numpy()
        monkeypatch.undo()
        np.testing.assert_allclose(folded, plain, rtol=1e-4, atol=1e-5)
        assert np.abs(plain).max() > 1e-3  # not a trivially zero output
