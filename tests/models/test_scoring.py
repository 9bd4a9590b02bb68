"""The Scorer (models/scoring.py) against a numpy re-implementation of eq. 7-9 from the sub-networks' outputs:
L_R, L_fD for both feature layers, the eq. 7 combination, the error map, EMA vs last weights, and the texture
mode (max over patches, maps stitched into the patch grid)."""
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers.config import tiny_config
from tests.helpers.numpy_ops import conv3x3_same
from data.patches import to_patches_numpy
from models.scoring import DEFAULT_LAMBDAS, Scorer, combine
from models.cbigan import CBiGAN

SIDE = 32


@pytest.fixture(scope="module")
def model():
    model = CBiGAN(tiny_config(image_size=SIDE), SIDE)
    # Make the EMA copies differ from the trained weights, so a scorer using the wrong pair is caught.
    rng = np.random.default_rng(3)
    for network in (model.ema_encoder, model.ema_generator):
        network.set_weights([w * (1.0 + 0.3 * rng.standard_normal(w.shape)).astype(w.dtype)
                             for w in network.get_weights()])
    return model


def inputs(n, side=SIDE, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, side, side, 3)).astype(np.float32)


def lrelu(a):
    return np.where(a >= 0, a, 0.2 * a)


def dense(a, layer):
    weights = layer.get_weights()
    out = a.astype(np.float64) @ weights[0].astype(np.float64)
    return out + weights[1] if len(weights) > 1 else out


def numpy_features(critic, x, z, layer):
    """f_D(x, z) re-implemented from the critic's weights (first_conv) or its sub-layers' outputs (joint)."""
    if layer == "first_conv":
        conv = critic.trunk.blocks[0].conv1
        weights = conv.get_weights()
        maps = conv3x3_same(x, weights[0], weights[1] if len(weights) > 1 else None)
        return maps.reshape(len(x), -1)
    image_features = critic.trunk(tf.constant(x), training=False).numpy()
    latent = z
    for layer_ in critic.latent_dense:
        latent = lrelu(dense(latent, layer_))
    return lrelu(dense(np.concatenate([image_features, latent], axis=1), critic.joint))


def numpy_scores(model, x, weights, layer):
    encoder, generator = (model.ema_encoder, model.ema_generator) if weights == "ema" else \
        (model.encoder, model.generator)
    z = encoder(tf.constant(x), training=False).numpy()
    reconstruction = generator(tf.constant(z), training=False).numpy().astype(np.float64)
    reconstruction_error = np.abs(x - reconstruction).sum(axis=(1, 2, 3))                       # eq. 8
    f_real = numpy_features(model.critic, x, z, layer)
    f_reconstructed = numpy_features(model.critic, reconstruction.astype(np.float32), z, layer)
    feature_error = np.abs(f_real - f_reconstructed).sum(axis=1)                               # eq. 9
    error_map = np.abs(x - reconstruction).sum(axis=-1)
    return reconstruction_error, feature_error, error_map, reconstruction


def test_combine_is_eq7():
    np.testing.assert_allclose(combine([10.0, 2.0], [4.0, 8.0], 0.25), [0.75 * 10 + 0.25 * 4, 0.75 * 2 + 0.25 * 8])
    np.testing.assert_allclose(combine([10.0], [4.0], 0.0), [10.0])
    np.testing.assert_allclose(combine([10.0], [4.0], 1.0), [4.0])


@pytest.mark.parametrize("layer", ["first_conv", "joint"])
@pytest.mark.parametrize("weights", ["ema", "last"])
def test_object_scores_equal_numpy(model, layer, weights):
    x = inputs(5)
    scorer = Scorer(model, weights=weights, feature_layer=layer)
    # batch_size 2 also checks the batching (5 = 2 + 2 + 1).
    out = scorer.score_images(x[:, None], SIDE, lambdas=DEFAULT_LAMBDAS, batch_size=2, keep_reconstructions=True)
    r, f, error_map, reconstruction = numpy_scores(model, x, weights, layer)
    np.testing.assert_allclose(out["reconstruction_error"], r, rtol=1e-4)
    np.testing.assert_allclose(out["feature_error"], f, rtol=1e-4, atol=1e-4)
    assert f.min() > 0 and r.min() > 0
    np.testing.assert_allclose(out["anomaly_map"], error_map, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["reconstruction"], reconstruction, rtol=1e-4, atol=1e-5)
    assert sorted(out["scores"]) == sorted(DEFAULT_LAMBDAS)
    for lam in DEFAULT_LAMBDAS:
        np.testing.assert_allclose(out["scores"][lam], (1 - lam) * r + lam * f, rtol=1e-4)
    # The other weight pair reconstructs differently (the fixture made them differ), beyond the tolerance above.
    other = numpy_scores(model, x, "last" if weights == "ema" else "ema", layer)[3]
    assert not np.allclose(out["reconstruction"], other, rtol=1e-4, atol=1e-5)


def test_feature_layers_differ(model):
    x = inputs(3, seed=1)
    first = Scorer(model, feature_layer="first_conv").score_images(x[:, None], SIDE, lambdas=(0.5,))
    joint = Scorer(model, feature_layer="joint").score_images(x[:, None], SIDE, lambdas=(0.5,))
    np.testing.assert_allclose(first["reconstruction_error"], joint["reconstruction_error"], rtol=1e-6)
    assert not np.allclose(first["feature_error"], joint["feature_error"], rtol=1e-2)


def test_texture_max_over_patches_and_stitched_map(model):
    image_size, grid = 2 * SIDE, 2
    images = inputs(3, side=image_size, seed=2)
    patches = np.stack([to_patches_numpy(image, SIDE) for image in images])          # (3, 4, 32, 32, 3)
    assert patches.shape == (3, grid * grid, SIDE, SIDE, 3)
    lambdas = (0.0, 0.1, 0.7, 1.0)
    out = Scorer(model).score_images(patches, image_size, lambdas=lambdas, batch_size=5, keep_reconstructions=True)
    for i in range(len(images)):
        r, f, maps, reconstructions = numpy_scores(model, patches[i], "ema", "first_conv")
        assert r.argmax() != r.argmin()
        np.testing.assert_allclose(out["reconstruction_error"][i], r.max(), rtol=1e-4)
        np.testing.assert_allclose(out["feature_error"][i], f.max(), rtol=1e-4)
        for lam in lambdas:
            # the max over patches of eq. 7 (not eq. 7 of the two maxima)
            np.testing.assert_allclose(out["scores"][lam][i], ((1 - lam) * r + lam * f).max(), rtol=1e-4)
        # patch k sits at row k // grid, column k % grid of the stitched map / reconstruction
        for k in range(grid * grid):
            rows = slice((k // grid) * SIDE, (k // grid + 1) * SIDE)
            cols = slice((k % grid) * SIDE, (k % grid + 1) * SIDE)
            np.testing.assert_allclose(out["anomaly_map"][i][rows, cols], maps[k], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(out["reconstruction"][i][rows, cols], reconstructions[k], rtol=1e-4,
                                       atol=1e-5)
        # the stitched map is the per-pixel error of the whole image against the stitched reconstruction
        np.testing.assert_allclose(out["anomaly_map"][i], np.abs(images[i] - out["reconstruction"][i]).sum(-1),
                                   rtol=1e-4, atol=1e-5)
    assert out["anomaly_map"].shape == (3, image_size, image_size)


@pytest.mark.parametrize("batch_size", [1, 5, 8])
def test_streams_give_the_one_stream_numbers(model, batch_size):
    """Batches cut into parallel streams (5 = 3 + 2; 1 < streams runs as one) score each input as one stream
    does; without keep_reconstructions no reconstruction is returned."""
    x = inputs(9, seed=4)
    one = Scorer(model, streams=1).score_inputs(x, batch_size, keep_reconstructions=True)
    for streams in (2, 3):
        split = Scorer(model, streams=streams).score_inputs(x, batch_size, keep_reconstructions=True)
        assert sorted(split) == sorted(one)
        for key in one:
            assert split[key].shape == one[key].shape
            np.testing.assert_allclose(split[key], one[key], rtol=1e-5, atol=1e-6)
    assert "reconstruction" not in Scorer(model).score_inputs(x, batch_size)


def test_stream_threads():
    from runtime_threads import stream_threads
    assert stream_threads(2, cpus=2) == (1, 2)   # one core per stream
    assert stream_threads(2, cpus=8) == (4, 8)
    assert stream_threads(1, cpus=2) == (2, 2)   # TensorFlow's default layout
    assert stream_threads(4, cpus=2) == (1, 4)   # every stream gets an inter-op thread


def test_configure_threads_after_start_leaves_the_pools():
    """Once TensorFlow has run ops its pools are fixed: configure_threads says so (None) instead of raising."""
    from runtime_threads import configure_threads
    tf.constant(1.0) + 1.0
    before = (tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
    assert configure_threads(2) is None
    assert (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads()) == before


def test_configure_threads_in_a_fresh_process_sets_the_pools():
    """What evaluate.py and predict.py do first: the pools then have stream_threads' sizes."""
    import json
    import os
    import subprocess
    import sys

    from tests.helpers import REPO
    code = ("import json, runtime_threads, tensorflow as tf; r = runtime_threads.configure_threads(2); "
            "print(json.dumps([r, runtime_threads.stream_threads(2), "
            "tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    returned, expected, intra, inter = json.loads(out.stdout.strip().splitlines()[-1])
    assert returned == expected == [intra, inter]
