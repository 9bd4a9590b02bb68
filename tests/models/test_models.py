"""E, G, D: output shapes for both geometries, the authors' parameter counts, the bias rules, every architecture
option, and the critic's first_conv features."""
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.blocks import ACTIVATIONS, NORMALIZATIONS, UPSAMPLINGS, ResidualBlock
from models.critic import Critic
from models.encoder import Encoder
from models.generator import Generator

GENERATOR_MULTIPLIERS = (16, 8, 4, 3, 2, 1)   # Fig. 3, written out here independently of models/geometry.py
ENCODER_MULTIPLIERS = (1, 2, 3, 4, 8, 16)


def networks(image_size, channels=1, latent_size=8, **options):
    upsampling = options.pop("upsampling", "bilinear")
    arch = dict(image_size=image_size, channels=channels, latent_size=latent_size, **options)
    return Encoder(**arch), Generator(upsampling=upsampling, **arch), Critic(**arch)


def cached_networks(image_size, channels=1, latent_size=8, **options):
    """networks(...) built once per argument set, for tests that do not change weights."""
    return _cached_networks(image_size, channels, latent_size, tuple(sorted(options.items())))


@functools.lru_cache(maxsize=None)
def _cached_networks(image_size, channels, latent_size, options):
    return networks(image_size, channels, latent_size, **dict(options))


def images(n, side, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, side, side, 3)), tf.float32)


def latents(n, size, seed=1):
    return tf.constant(np.random.default_rng(seed).normal(size=(n, size)), tf.float32)


def blocks_of(model):
    return [layer for layer in _all_layers(model) if isinstance(layer, ResidualBlock)]


def _all_layers(layer):
    out = [layer]
    for sub in layer._layers if hasattr(layer, "_layers") else []:
        out.extend(_all_layers(sub))
    return out


# ---------------------------------------------------------------- shapes

@pytest.mark.parametrize("side, last_map", [(128, 4), (64, 2)])
def test_output_shapes_for_both_geometries(side, last_map):
    c, latent, n = 1, 8, 2
    encoder, generator, critic = cached_networks(side, channels=c, latent_size=latent)
    x, z = images(n, side), latents(n, latent)

    assert tuple(encoder(x).shape) == (n, latent)
    fake = generator(z)
    assert tuple(fake.shape) == (n, side, side, 3)
    assert float(tf.reduce_max(tf.abs(fake))) <= 1.0  # tanh output
    assert tuple(critic([x, z]).shape) == (n,)
    # the encoder trunk ends on a last_map x last_map x 16c map (4x4 for 128 px, 2x2 for 64 px)
    assert tuple(encoder.trunk(x).shape) == (n, last_map * last_map * 16 * c)
    assert tuple(critic.trunk(x).shape) == (n, last_map * last_map * 16 * c)
    # features: first_conv is H x W x c (flattened), joint is the Dense(16c) output
    assert tuple(critic.features(x, z, "first_conv").shape) == (n, side * side * c)
    assert tuple(critic.features(x, z, "joint").shape) == (n, 16 * c)
    with pytest.raises(ValueError):
        critic.features(x, z, "no_such_layer")


def test_generator_upsampling_plan():
    """Objects: every generator block upsamples from 2x2; textures: the first block does not."""
    for side, expected in [(128, ["up"] * 6), (64, [None] + ["up"] * 5)]:
        _, generator, _ = cached_networks(side)
        assert [block.resample for block in generator.blocks] == expected
        assert [block.filters for block in generator.blocks] == list(GENERATOR_MULTIPLIERS)
        x = generator.reshape(generator.project(latents(1, 8)))
        assert tuple(x.shape) == (1, 2, 2, 16)


def test_encoder_blocks_pool_all_but_last():
    encoder, _, critic = cached_networks(64)
    for trunk in (encoder.trunk, critic.trunk):
        assert [b.filters for b in trunk.blocks] == list(ENCODER_MULTIPLIERS)
        assert [b.resample for b in trunk.blocks] == ["down"] * 5 + [None]


# ---------------------------------------------------------------- parameter counts (the architecture matches)

AUTHORS_COUNTS = {128: (87_892, 83_142, 666_437), 64: (60_244, 83_142, 638_789)}


def expected_bias_terms(c):
    """Bias terms the rules add when use_bias=True (reference-implementation.md): in every residual block the
    skip conv1x1 and both conv3x3 (3 n per block of n filters); G's first Dense (2*2*16c units); E's Dense(16c);
    D's three latent Dense(512) and its Dense(16c). The block's last conv1x1, G's output conv, E's Dense(64)
    and D's Dense(1) have their bias in both settings."""
    trunk = sum(3 * m * c for m in ENCODER_MULTIPLIERS)
    generator = sum(3 * m * c for m in GENERATOR_MULTIPLIERS) + 2 * 2 * 16 * c
    encoder = trunk + 16 * c
    critic = trunk + 3 * 512 + 16 * c
    return encoder, generator, critic


def test_expected_bias_terms_by_hand():
    # c = 3: blocks 3*(3+6+9+12+24+48) = 306; G: 306 + 192; E: 306 + 48; D: 306 + 1536 + 48
    assert expected_bias_terms(3) == (354, 498, 1890)


@pytest.mark.parametrize("side", [128, 64])
def test_parameter_counts_equal_the_authors(side):
    encoder, generator, critic = cached_networks(side, channels=3, latent_size=64, use_bias=False)
    assert (encoder.count_params(), generator.count_params(), critic.count_params()) == AUTHORS_COUNTS[side]


@pytest.mark.parametrize("side", [128, 64])
def test_use_bias_adds_exactly_the_rule_biases(side):
    encoder, generator, critic = cached_networks(side, channels=3, latent_size=64, use_bias=True)
    counts = (encoder.count_params(), generator.count_params(), critic.count_params())
    extra = expected_bias_terms(3)
    assert counts == tuple(a + b for a, b in zip(AUTHORS_COUNTS[side], extra))


def test_bias_rules_layer_by_layer():
    """Which layers carry a bias, by name, without and with use_bias."""
    for use_bias in (False, True):
        encoder, generator, critic = cached_networks(64, channels=3, latent_size=64, use_bias=use_bias)
        for block in blocks_of(encoder) + blocks_of(generator) + blocks_of(critic):
            assert block.skip_conv.use_bias is use_bias
            assert block.conv1.use_bias is use_bias
            assert block.conv2.use_bias is use_bias
            assert block.conv3.use_bias is True
        assert generator.project.use_bias is use_bias
        assert generator.to_image.use_bias is True
        assert encoder.hidden.use_bias is use_bias
        assert encoder.to_latent.use_bias is True
        assert all(dense.use_bias is use_bias for dense in critic.latent_dense)
        assert critic.joint.use_bias is use_bias
        assert critic.score.use_bias is True


# ---------------------------------------------------------------- options

@functools.lru_cache(maxsize=None)
def _build_and_run(**options):
    """Tiny E, G, D with the given options (others default): forward in both modes, gradients to every weight.
    Cached: the default option of each kind (none, bilinear, lrelu) is the same set of networks."""
    defaults = dict(normalization="none", upsampling="bilinear", activation="lrelu")
    defaults.update(options)
    return _build_and_run_once(**defaults)


@functools.lru_cache(maxsize=None)
def _build_and_run_once(**options):
    encoder, generator, critic = networks(32, channels=2, latent_size=8, **options)
    x, z = images(4, 32), latents(4, 8)
    # training mode, with gradients reaching every trainable weight of each network
    with tf.GradientTape(persistent=True) as tape:
        outputs = [encoder(x, training=True), generator(z, training=True), critic([x, z], training=True)]
        e_loss, g_loss, d_loss = (tf.reduce_sum(tf.square(t)) for t in outputs)
    # and inference mode
    outputs += [encoder(x), generator(z), critic([x, z])]
    for t, shape in zip(outputs, [(4, 8), (4, 32, 32, 3), (4,)] * 2):
        assert tuple(t.shape) == shape
        assert np.all(np.isfinite(t.numpy()))
    for loss, net in ((e_loss, encoder), (g_loss, generator), (d_loss, critic)):
        grads = tape.gradient(loss, net.trainable_variables)
        assert all(grad is not None for grad in grads), net.name
    return encoder, generator, critic


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_every_normalization_builds_and_runs(normalization):
    encoder, generator, critic = _build_and_run(normalization=normalization)
    expected = {"none": None, "batch": keras.layers.BatchNormalization, "layer": keras.layers.LayerNormalization,
                "instance": keras.layers.GroupNormalization}[normalization]
    for block in blocks_of(encoder) + blocks_of(generator) + blocks_of(critic):
        for norm in (block.skip_norm, block.norm1, block.norm2, block.out_norm):
            if expected is None:
                assert norm is None
            else:
                assert type(norm) is expected


def test_instance_norm_is_group_norm_with_one_group_per_channel():
    encoder, generator, critic = _build_and_run(normalization="instance")
    for block in blocks_of(encoder) + blocks_of(generator) + blocks_of(critic):
        for norm in (block.skip_norm, block.norm1, block.norm2, block.out_norm):
            config = norm.get_config()
            assert config["groups"] == block.filters, (block.name, config["groups"], block.filters)
            assert config["epsilon"] == pytest.approx(1e-3)
    # and it normalises each channel of each sample over its spatial positions (gamma 1, beta 0 at init)
    norm = blocks_of(encoder)[1].norm1
    x = np.random.default_rng(3).normal(2.0, 3.0, (2, 8, 8, norm.get_config()["groups"])).astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(norm(x).numpy(), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("upsampling", UPSAMPLINGS)
def test_every_upsampling_builds_and_runs(upsampling):
    _, generator, _ = _build_and_run(upsampling=upsampling)
    up_blocks = [b for b in generator.blocks if b.resample == "up"]
    assert up_blocks
    for block in up_blocks:
        if upsampling == "bilinear":
            assert isinstance(block.upsample, keras.layers.UpSampling2D)
        else:
            assert isinstance(block.upsample, keras.layers.Conv2DTranspose)
            assert block.upsample.kernel_size == (1, 1) and block.upsample.strides == (2, 2)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds_and_runs(activation):
    encoder, _, _ = _build_and_run(activation=activation)
    act = blocks_of(encoder)[0].act1
    probe = np.array([[-1.0, 2.0]], np.float32)
    slope = 0.2 if activation == "lrelu" else 0.0
    np.testing.assert_allclose(act(probe).numpy(), [[-slope, 2.0]], rtol=1e-6)


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError):
        networks(32, normalization="group")
    with pytest.raises(ValueError):
        networks(32, activation="gelu")
    with pytest.raises(ValueError):
        networks(32, upsampling="nearest")


# ---------------------------------------------------------------- critic features

@pytest.mark.parametrize("use_bias", [False, True])
def test_first_conv_features_equal_a_direct_convolution(use_bias):
    c, n = 2, 3
    _, _, critic = networks(32, channels=c, use_bias=use_bias)
    conv = critic.trunk.blocks[0].conv1
    assert conv.kernel.shape == (3, 3, 3, c)
    if use_bias:  # make the bias matter (it starts at zero)
        conv.bias.assign(np.random.default_rng(5).normal(size=c).astype(np.float32))
    x, z = images(n, 32, seed=4), latents(n, 8, seed=6)
    expected = tf.nn.conv2d(x, conv.kernel, strides=1, padding="SAME")
    if use_bias:
        expected = expected + conv.bias
    features = critic.features(x, z, "first_conv")
    np.testing.assert_allclose(features.numpy(), tf.reshape(expected, [n, -1]).numpy(), rtol=1e-5, atol=1e-6)
    # it ignores z
    np.testing.assert_array_equal(features.numpy(), critic.features(x, z + 1.0, "first_conv").numpy())


def test_joint_features_feed_the_score():
    _, _, critic = _build_and_run()
    x, z = images(3, 32), latents(3, 8)
    joint = critic.features(x, z, "joint")
    score = joint.numpy() @ critic.score.kernel.numpy() + critic.score.bias.numpy()
    np.testing.assert_allclose(critic([x, z]).numpy(), score[:, 0], rtol=1e-5, atol=1e-6)
    # the joint features depend on the latent
    assert not np.allclose(joint.numpy(), critic.features(x, z + 1.0, "joint").numpy())


@pytest.mark.parametrize("layer", ["first_conv", "joint"])
@pytest.mark.parametrize("use_bias", [False, True])
def test_feature_difference_equals_difference_of_features(layer, use_bias):
    """first_conv takes one convolution of x - x_other (linearity; a bias cancels): same numbers as two passes."""
    c, n = 2, 3
    _, _, critic = networks(32, channels=c, use_bias=use_bias)
    rng = np.random.default_rng(11)
    for variable in critic.trunk.blocks[0].conv1.weights:  # a nonzero bias, so that it would show if not cancelled
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    x, x_other, z = images(n, 32, seed=1), images(n, 32, seed=2), latents(n, 8, seed=3)
    expected = critic.features(x, z, layer) - critic.features(x_other, z, layer)
    difference = critic.feature_difference(x, x_other, z, layer)
    assert tuple(difference.shape) == tuple(expected.shape)
    assert np.abs(expected.numpy()).max() > 1e-4  # the inputs differ, so must the features
    np.testing.assert_allclose(difference.numpy(), expected.numpy(), rtol=1e-4, atol=1e-6)


# Our --normalization normalises inside the residual blocks only; the authors' option also normalises after every
# Dense layer (their counts with batch norm E/G/D 89,716 / 85,542 / 674,405, with layer or instance norm
# 88,804 / 84,342 / 670,421 at 128 px), so the two differ by those Dense-layer normalizations (docs/REPRODUCTION.md).
OUR_NORMALIZED_COUNTS_128 = {"batch": (89_524, 84_774, 668_069), "layer": (88_708, 83_958, 667_253),
                             "instance": (88_708, 83_958, 667_253)}


@pytest.mark.parametrize("normalization", ["batch", "layer", "instance"])
def test_parameter_counts_with_normalization(normalization):
    encoder, generator, critic = cached_networks(128, channels=3, latent_size=64, use_bias=False,
                                                 normalization=normalization)
    counts = (encoder.count_params(), generator.count_params(), critic.count_params())
    assert counts == OUR_NORMALIZED_COUNTS_128[normalization]
