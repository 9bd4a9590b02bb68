"""The update steps of models/cbigan.py, one path for one or many devices: on one device they run under
TensorFlow's default strategy, report the losses of eq. 6 / eq. 13 on z and epsilon drawn in order from the
model's generator, are traced once per update kind whatever the batch size, and give the numbers of a
--strategy=mirrored model on one device (same seed, same batches). Tiny models (c=1, latent 8, 32x32, batch 4).
"""
import numpy as np
import pytest
import tensorflow as tf

from models import distributed
from models.cbigan import CBiGAN
from tests.helpers.config import tiny_config

SIDE = 32
BATCH = 4
LATENT = 8


def images(n=BATCH, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, SIDE, SIDE, 3)), tf.float32)


def floats(results):
    return {name: float(value) for name, value in results.items()}


def weights(model):
    return [w.numpy() for net in (model.encoder, model.generator, model.critic, model.ema_encoder,
                                  model.ema_generator) for w in net.weights]


def assert_close(got, expected, rtol=1e-5):
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=rtol, abs=1e-6), name


def test_one_device_runs_under_the_default_strategy():
    model = CBiGAN(tiny_config(), SIDE)
    assert model.strategy is tf.distribute.get_strategy()
    assert not tf.distribute.has_strategy()      # the model entered no scope that stayed open
    assert model.replicas == 1
    assert distributed.make_strategy("default") is None   # so training/loop.py keeps plain (undistributed) batches
    assert not isinstance(model.encoder.weights[0].value, tf.distribute.DistributedValues)


@pytest.mark.parametrize("kind, overrides", [("critic", {}), ("generator_encoder", {}), ("joint", {"d_iter": 0})])
def test_step_reports_the_losses_of_its_draws(kind, overrides):
    """The step's losses are those of the loss functions at the weights before the update, on z / epsilon drawn
    from the model's generator in the order critic z, epsilon, G/E z (a twin model with the same seed draws
    them here)."""
    config = tiny_config(alpha=0.3, **overrides)
    model, twin = CBiGAN(config, SIDE), CBiGAN(config, SIDE)
    x = images()
    expected = {}
    if kind in ("critic", "joint"):
        z, epsilon = twin.rng.normal([BATCH, LATENT]), twin.rng.uniform([BATCH])
        expected.update(floats(twin.critic_losses(x, z, epsilon)))
    if kind in ("generator_encoder", "joint"):
        expected.update(floats(twin.generator_encoder_losses(x, twin.rng.normal([BATCH, LATENT]))))
    results = floats(getattr(model, kind + "_step")(x))
    assert_close(results, expected)
    # the model's generator advanced exactly as the twin's: the next draw is the same
    np.testing.assert_array_equal(model.rng.normal([3]).numpy(), twin.rng.normal([3]).numpy())


def test_each_step_is_traced_once_for_every_batch_size():
    sequential = CBiGAN(tiny_config(d_iter=1), SIDE)
    joint = CBiGAN(tiny_config(d_iter=0), SIDE)
    for n in (BATCH, 3, 2, BATCH):
        for _ in range(2):                       # critic, then G/E
            sequential.train_batch(images(n, seed=n))
        assert joint.train_batch(images(n, seed=n))[0] == "joint"
    counts = [step.experimental_get_tracing_count()
              for step in (sequential.critic_step, sequential.generator_encoder_step, joint.joint_step)]
    assert counts == [1, 1, 1]
    assert int(sequential.step.numpy()) == 8 and int(joint.step.numpy()) == 4


@pytest.mark.parametrize("d_iter, kinds", [(1, ["critic", "generator_encoder"] * 2), (0, ["joint"] * 3)])
def test_mirrored_on_one_device_matches_the_default_strategy(d_iter, kinds):
    """The same seed and batches: --strategy=mirrored on one device (batches from
    experimental_distribute_dataset, as training/loop.py feeds them) gives the losses and weights of the
    default-strategy model."""
    strategy = distributed.make_strategy("mirrored")
    if strategy.num_replicas_in_sync != 1:
        pytest.skip("this host has more than one device")
    config = tiny_config(d_iter=d_iter, lr=1e-3, alpha=0.5, seed=5)
    single, mirrored = CBiGAN(config, SIDE), CBiGAN(config, SIDE, strategy=strategy)
    assert isinstance(mirrored.encoder.weights[0].value, tf.distribute.DistributedValues)
    data = tf.data.Dataset.from_tensor_slices(images(len(kinds) * BATCH, seed=3)).batch(BATCH)
    single_results = [single.train_batch(x) for x in data]
    mirrored_results = [mirrored.train_batch(x) for x in strategy.experimental_distribute_dataset(data)]
    assert [kind for kind, _ in single_results] == [kind for kind, _ in mirrored_results] == kinds
    for (_, got), (_, expected) in zip(mirrored_results, single_results):
        assert_close(floats(got), floats(expected))
    # not trivially equal: the losses moved between the updates of one kind
    critic_totals = [float(results["critic_total"]) for kind, results in single_results if kind == kinds[0]]
    assert critic_totals[0] != critic_totals[-1]
    for got, expected in zip(weights(mirrored), weights(single)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [int(m.step.numpy()) for m in (single, mirrored)] == [len(kinds)] * 2
    np.testing.assert_array_equal(mirrored.rng.state.numpy(), single.rng.state.numpy())
