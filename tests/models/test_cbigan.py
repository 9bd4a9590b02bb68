"""CBiGAN (models/cbigan.py): the losses against a recomputation from the sub-networks, the gradient-penalty
pairing, the alpha limits, what each step updates, EMA, schedule, tracing, a short training, determinism and
checkpoints. Tiny models (c=1, latent 8, 32x32, batch 4)."""
import functools

import numpy as np
import pytest
import tensorflow as tf

import models.losses
from models.cbigan import CBiGAN
from tests.helpers.config import tiny_config

SIDE = 32
BATCH = 4


def batch_images(n=BATCH, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, SIDE, SIDE, 3)), tf.float32)


X = batch_images()
Z = tf.constant(np.random.default_rng(1).normal(size=(BATCH, 8)), tf.float32)
EPSILON = tf.constant([0.1, 0.5, 0.8, 0.35], tf.float32)


@functools.lru_cache(maxsize=None)
def _eager_model(overrides):
    return CBiGAN(tiny_config(**dict(overrides)), SIDE)


def eager_model(**overrides):
    """A CBiGAN shared by the tests that only call its loss functions eagerly (they must not change it)."""
    overrides.setdefault("gp_pairing", "paper")
    return _eager_model(tuple(sorted(overrides.items())))


def weights_of(network):
    return [w.numpy().copy() for w in network.weights]


def snapshot(model):
    return {name: weights_of(getattr(model, name))
            for name in ("encoder", "generator", "critic", "ema_encoder", "ema_generator")}


def assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def assert_grads_close(got, expected, rtol=1e-4):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g is not None and e is not None
        g, e = np.asarray(g), np.asarray(e)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * (np.abs(e).max() + 1e-12))


# ---------------------------------------------------------------- recomputation from the sub-networks (numpy)

def expected_critic_losses(model, x, z, epsilon, pairing):
    encoder, generator, critic = model.encoder, model.generator, model.critic
    z_real = encoder(x, training=True).numpy()
    x_fake = generator(z, training=True).numpy()
    x, z, eps = x.numpy(), z.numpy(), epsilon.numpy()
    real = critic([x, z_real], training=True).numpy()
    fake = critic([x_fake, z], training=True).numpy()
    if pairing == "paper":
        (xa, za), (xb, zb) = (x, z_real), (x_fake, z)
    else:
        (xa, za), (xb, zb) = (x, z), (x_fake, z_real)
    x_hat = tf.constant(eps[:, None, None, None] * xa + (1 - eps[:, None, None, None]) * xb)
    z_hat = tf.constant(eps[:, None] * za + (1 - eps[:, None]) * zb)
    with tf.GradientTape() as tape:
        tape.watch([x_hat, z_hat])
        scores = critic([x_hat, z_hat], training=True)
    grad_x, grad_z = (g.numpy() for g in tape.gradient(scores, [x_hat, z_hat]))
    norms = np.sqrt((grad_x ** 2).reshape(len(x), -1).sum(axis=1) + (grad_z ** 2).sum(axis=1))
    penalty = np.mean((norms - 1.0) ** 2)
    critic_loss = fake.mean() - real.mean()
    return {"critic_loss": critic_loss, "gradient_penalty": penalty,
            "critic_total": critic_loss + model.config.gp_weight * penalty,
            "real_score": real.mean(), "fake_score": fake.mean()}


def expected_generator_encoder_losses(model, x, z, alpha):
    encoder, generator, critic = model.encoder, model.generator, model.critic
    z_real = encoder(x, training=True).numpy()
    x_fake = generator(z, training=True).numpy()
    x_rec = generator(z_real, training=True).numpy()
    z_rec = encoder(x_fake, training=True).numpy()
    x, z = x.numpy(), z.numpy()
    real = critic([x, z_real], training=True).numpy()
    fake = critic([x_fake, z], training=True).numpy()
    adversarial = real.mean() - fake.mean()
    image_rec = np.abs(x - x_rec).reshape(len(x), -1).sum(axis=1).mean()
    latent_rec = np.abs(z - z_rec).sum(axis=1).mean()
    return {"adversarial_loss": adversarial, "image_reconstruction": image_rec,
            "latent_reconstruction": latent_rec, "consistency_loss": image_rec + latent_rec,
            "generator_encoder_total": (1 - alpha) * adversarial + alpha * (image_rec + latent_rec),
            "real_score": real.mean(), "fake_score": fake.mean()}


def assert_results_match(got, expected):
    assert set(expected) <= set(got)
    for key, value in expected.items():
        assert float(got[key]) == pytest.approx(float(value), rel=1e-4, abs=1e-5), key


class Recorder:
    """Wraps models.losses.gradient_penalty and records the pairs it is given."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = models.losses.gradient_penalty

        def wrapper(critic, real_pair, fake_pair, epsilon):
            self.calls.append((real_pair, fake_pair, epsilon))
            return original(critic, real_pair, fake_pair, epsilon)

        monkeypatch.setattr(models.losses, "gradient_penalty", wrapper)


@pytest.mark.parametrize("pairing", ["paper", "authors"])
def test_critic_losses_equal_recomputation(pairing, monkeypatch):
    model = eager_model(gp_pairing=pairing)
    recorder = Recorder(monkeypatch)
    got = model.critic_losses(X, Z, EPSILON)
    assert_results_match(got, expected_critic_losses(model, X, Z, EPSILON, pairing))
    # the penalty was computed once, on the pairs of the chosen pairing
    assert len(recorder.calls) == 1
    (xa, za), (xb, zb), eps = recorder.calls[0]
    z_real = model.encoder(X, training=True).numpy()
    x_fake = model.generator(Z, training=True).numpy()
    if pairing == "paper":   # real pair (x, E(x)) vs fake pair (G(z), z)
        expected = (X.numpy(), z_real), (x_fake, Z.numpy())
    else:                    # the authors' code: (x, z) vs (G(z), E(x))
        expected = (X.numpy(), Z.numpy()), (x_fake, z_real)
    for got_part, expected_part in zip((xa, za, xb, zb), (*expected[0], *expected[1])):
        np.testing.assert_allclose(np.asarray(got_part), expected_part, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(eps), EPSILON.numpy())


def test_pairings_give_different_penalties():
    """Otherwise the pairing test above could not tell them apart."""
    paper = expected_critic_losses(eager_model(gp_pairing="paper"), X, Z, EPSILON, "paper")
    authors = expected_critic_losses(eager_model(gp_pairing="authors"), X, Z, EPSILON, "authors")
    assert abs(paper["gradient_penalty"] - authors["gradient_penalty"]) > 1e-4 * abs(paper["gradient_penalty"])


def test_critic_losses_give_no_generator_encoder_gradients():
    model = eager_model()
    with tf.GradientTape() as tape:
        total = model.critic_losses(X, Z, EPSILON)["critic_total"]
    gradients = tape.gradient(total, model.generator_encoder_variables + model.critic.trainable_variables)
    n = len(model.generator_encoder_variables)
    assert all(g is None for g in gradients[:n])
    assert all(g is not None for g in gradients[n:])


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_generator_encoder_losses_equal_recomputation(alpha, monkeypatch):
    model = eager_model(alpha=alpha)
    recorder = Recorder(monkeypatch)
    got = model.generator_encoder_losses(X, Z)
    assert_results_match(got, expected_generator_encoder_losses(model, X, Z, alpha))
    assert recorder.calls == []  # a G/E update computes no gradient penalty


def test_image_reconstruction_is_batch_mean_of_per_sample_l1():
    model = eager_model()
    x_rec = model.generator(model.encoder(X, training=True), training=True).numpy()
    expected = np.mean([np.abs(X.numpy()[i] - x_rec[i]).sum() for i in range(BATCH)])
    got = model.generator_encoder_losses(X, Z)["image_reconstruction"]
    assert float(got) == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- the alpha limits, on gradients

def independent_gradients(model, x, z):
    """Gradients w.r.t. the G/E variables of L_{E,G} (eq. 5) and of L_R + L_R' (eq. 10), from the sub-networks."""
    variables = model.generator_encoder_variables
    encoder, generator, critic = model.encoder, model.generator, model.critic
    with tf.GradientTape(persistent=True) as tape:
        z_real = encoder(x, training=True)
        x_fake = generator(z, training=True)
        adversarial = (tf.reduce_mean(critic([x, z_real], training=True))
                       - tf.reduce_mean(critic([x_fake, z], training=True)))
        x_rec = generator(z_real, training=True)
        z_rec = encoder(x_fake, training=True)
        consistency = (tf.reduce_mean(tf.reduce_sum(tf.abs(x - x_rec), axis=[1, 2, 3]))
                       + tf.reduce_mean(tf.reduce_sum(tf.abs(z - z_rec), axis=1)))
    return tape.gradient(adversarial, variables), tape.gradient(consistency, variables)


def model_gradients(model, x, z):
    variables = model.generator_encoder_variables
    with tf.GradientTape() as tape:
        total = model.generator_encoder_losses(x, z)["generator_encoder_total"]
    return tape.gradient(total, variables)


def test_alpha_zero_gradients_have_no_consistency_contribution():
    model = eager_model(alpha=0.0)
    adversarial, consistency = independent_gradients(model, X, Z)
    assert_grads_close(model_gradients(model, X, Z), adversarial)
    # the consistency gradient is not negligible, so its absence is what the comparison above checks
    assert max(np.abs(c.numpy()).max() for c in consistency) > 10 * max(np.abs(a.numpy()).max()
                                                                        for a in adversarial)


def test_alpha_between_mixes_both_gradients():
    model = eager_model(alpha=0.3)
    adversarial, consistency = independent_gradients(model, X, Z)
    expected = [0.7 * a + 0.3 * c for a, c in zip(adversarial, consistency)]
    assert_grads_close(model_gradients(model, X, Z), expected)


def test_alpha_one_gradients_do_not_depend_on_the_critic():
    model = eager_model(alpha=1.0)
    _, consistency = independent_gradients(model, X, Z)
    before = [g.numpy() for g in model_gradients(model, X, Z)]
    assert_grads_close(before, consistency)
    original = weights_of(model.critic)
    try:
        rng = np.random.default_rng(7)
        for w in model.critic.trainable_variables:
            w.assign(w + rng.normal(scale=0.5, size=w.shape).astype(np.float32))
        # the critic did change what it computes ...
        changed = model.generator_encoder_losses(X, Z)["adversarial_loss"]
        model.critic.set_weights(original)
        assert float(changed) != pytest.approx(float(model.generator_encoder_losses(X, Z)["adversarial_loss"]))
        for w in model.critic.trainable_variables:
            w.assign(w + rng.normal(scale=0.5, size=w.shape).astype(np.float32))
        # ... but not the G/E gradients
        after = [g.numpy() for g in model_gradients(model, X, Z)]
    finally:
        model.critic.set_weights(original)
    assert_same(after, before)


# ---------------------------------------------------------------- the two steps (traced), EMA, schedule, tracing

@pytest.fixture(scope="module")
def stepped():
    """A fresh model taken through: one critic step, two G/E steps, then train_batch on 12 batches and a few
    steps with another batch size; snapshots and results recorded along the way."""
    model = CBiGAN(tiny_config(), SIDE)
    record = {"init": snapshot(model)}
    record["critic_results"] = model.critic_step(X)
    record["after_critic"] = snapshot(model)
    record["counters_after_critic"] = (int(model.step.numpy()), int(model.ema_updates.numpy()),
                                       int(model.critic_optimizer.iterations.numpy()),
                                       int(model.ge_optimizer.iterations.numpy()))
    record["ge_results"] = model.generator_encoder_step(X)
    record["after_ge"] = snapshot(model)
    record["counters_after_ge"] = (int(model.step.numpy()), int(model.ema_updates.numpy()),
                                   int(model.critic_optimizer.iterations.numpy()),
                                   int(model.ge_optimizer.iterations.numpy()))
    model.generator_encoder_step(X)
    record["after_ge2"] = snapshot(model)
    # the schedule from a step counter at 0
    model.step.assign(0)
    kinds = []
    for i in range(12):
        kind, results = model.train_batch(batch_images(seed=10 + i))
        kinds.append(kind)
        assert np.isfinite(float(results["critic_total" if kind == "critic" else "generator_encoder_total"]))
    record["kinds"] = kinds
    record["step_after_schedule"] = int(model.step.numpy())
    # another batch size (the signature has a None batch axis), then the first one again
    for n in (3, 2, BATCH):
        model.critic_step(batch_images(n, seed=n))
        model.generator_encoder_step(batch_images(n, seed=n))
    record["tracing_counts"] = (model.critic_step.experimental_get_tracing_count(),
                                model.generator_encoder_step.experimental_get_tracing_count())
    return record


def _changed(before, after):
    return [not np.array_equal(b, a) for b, a in zip(before, after)]


def test_critic_step_changes_only_the_critic(stepped):
    init, after = stepped["init"], stepped["after_critic"]
    for name in ("encoder", "generator", "ema_encoder", "ema_generator"):
        assert_same(after[name], init[name])
    changed = _changed(init["critic"], after["critic"])
    # every critic weight moves but the final bias, whose gradient is exactly 0 (L_D and the GP ignore offsets)
    assert sum(changed) == len(changed) - 1
    assert stepped["counters_after_critic"] == (1, 0, 1, 0)
    results = {k: float(v) for k, v in stepped["critic_results"].items()}
    assert results["critic_total"] == pytest.approx(results["critic_loss"] + 10 * results["gradient_penalty"],
                                                    rel=1e-5)


def test_generator_encoder_step_changes_only_encoder_and_generator(stepped):
    before, after = stepped["after_critic"], stepped["after_ge"]
    assert_same(after["critic"], before["critic"])
    for name in ("encoder", "generator"):
        assert all(_changed(before[name], after[name])), name
    assert stepped["counters_after_ge"] == (2, 1, 1, 1)


def test_ema_starts_as_a_copy_and_follows_the_warmup_decay(stepped):
    init, first, second = stepped["init"], stepped["after_ge"], stepped["after_ge2"]
    for name in ("encoder", "generator"):
        assert_same(init["ema_" + name], init[name])
        # first update: decay min(0.999, (1 + 0) / (10 + 0)) = 0.1
        expected = [0.1 * e + 0.9 * w for e, w in zip(init["ema_" + name], first[name])]
        for got, exp in zip(first["ema_" + name], expected):
            np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-7)
        # second update: decay (1 + 1) / (10 + 1)
        d = 2.0 / 11.0
        expected = [d * e + (1 - d) * w for e, w in zip(first["ema_" + name], second[name])]
        for got, exp in zip(second["ema_" + name], expected):
            np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-7)
        # and it is not simply the current weights
        assert any(not np.allclose(a, b) for a, b in zip(second["ema_" + name], second[name]))


def test_train_batch_follows_the_d_iter_schedule(stepped):
    assert stepped["kinds"] == (["critic"] * 5 + ["generator_encoder"]) * 2
    assert stepped["step_after_schedule"] == 12


def test_no_retracing(stepped):
    assert stepped["tracing_counts"] == (1, 1)


@pytest.mark.parametrize("d_iter, skip_critic, expected", [
    (5, False, "CCCCCGCCCCCG"), (2, False, "CCGCCGCCGCCG"), (1, False, "CGCGCGCGCGCG"),
    (0, False, "JJJJJJJJJJJJ"), (5, True, "GGGGGGGGGGGG"), (0, True, "GGGGGGGGGGGG")])
def test_update_schedule(d_iter, skip_critic, expected):
    model = eager_model()
    original = model.d_iter, model.skip_critic
    try:
        model.d_iter, model.skip_critic = d_iter, skip_critic
        letter = {"critic": "C", "generator_encoder": "G", "joint": "J"}
        kinds = "".join(letter[model.update_kind(s)] for s in range(12))
    finally:
        model.d_iter, model.skip_critic = original
    assert kinds == expected


def test_authors_ema_schedule_matches_the_formula():
    """ema_every 10, no warm-up: the EMA is untouched for 9 batches, a copy of the weights after batch 10, then
    decay * EMA + (1 - decay) * weights after batches 20, 30, ... and untouched in between (d_iter 5: G/E
    updates on batches 6, 12, ..., 36)."""
    decay = 0.9
    model = CBiGAN(tiny_config(ema_every=10, ema_warmup=False, ema_decay=decay, d_iter=5, lr=1e-2, alpha=0.5),
                   SIDE)
    initial_ema = weights_of(model.ema_generator) + weights_of(model.ema_encoder)
    live, ema = {}, {}
    for batch in range(1, 40):
        model.train_batch(DATA[(batch % 2) * BATCH:(batch % 2) * BATCH + BATCH])
        live[batch] = weights_of(model.generator) + weights_of(model.encoder)
        ema[batch] = weights_of(model.ema_generator) + weights_of(model.ema_encoder)
    assert_same(ema[9], initial_ema)
    assert_same(ema[10], live[10])
    expected = [decay * (decay * w10 + (1 - decay) * w20) + (1 - decay) * w30
                for w10, w20, w30 in zip(live[10], live[20], live[30])]
    for got, want in zip(ema[39], expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert_same(ema[39], ema[30])
    assert not np.allclose(live[39][0], live[30][0])  # the weights moved (G/E update at batch 36), the EMA not
    assert int(model.ema_updates.numpy()) == 3


def test_joint_step_takes_both_gradients_at_the_same_weights():
    """d_iter 0 (the authors' meaning): one batch updates critic and G/E, the G/E gradient taken before the
    critic moves; the same updates applied in that order by hand give the same weights."""
    config = tiny_config(d_iter=0, lr=1e-2, alpha=0.5, seed=3)
    joint, manual = CBiGAN(config, SIDE), CBiGAN(config, SIDE)
    kind, results = joint.train_batch(X)
    assert kind == "joint" and int(joint.step.numpy()) == 1
    assert {"critic_total", "generator_encoder_total"} <= set(results)
    z_critic = manual.rng.normal([BATCH, 8])
    epsilon = manual.rng.uniform([BATCH])
    z = manual.rng.normal([BATCH, 8])
    _, ge_gradients = manual._generator_encoder_gradients(X, z, 1)
    manual._critic_update(X, z_critic, epsilon)
    manual.ge_optimizer.apply_gradients(zip(ge_gradients, manual.generator_encoder_variables))
    for name in ("critic", "encoder", "generator"):
        for got, want in zip(weights_of(getattr(joint, name)), weights_of(getattr(manual, name))):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # ...which is not what a critic update followed by a G/E update (the d_iter >= 1 order) gives
    sequential = CBiGAN(config, SIDE)
    z_critic, epsilon, z = (sequential.rng.normal([BATCH, 8]), sequential.rng.uniform([BATCH]),
                            sequential.rng.normal([BATCH, 8]))
    sequential._critic_update(X, z_critic, epsilon)
    sequential._generator_encoder_update(X, z)
    assert not np.allclose(weights_of(sequential.encoder)[0], weights_of(joint.encoder)[0], rtol=1e-6, atol=0)


def test_skip_critic_leaves_the_critic_untouched():
    model = CBiGAN(tiny_config(skip_critic=True, alpha=1.0, lr=1e-2), SIDE)
    critic_before, encoder_before = weights_of(model.critic), weights_of(model.encoder)
    kinds = [model.train_batch(X)[0] for _ in range(3)]
    assert kinds == ["generator_encoder"] * 3
    assert_same(weights_of(model.critic), critic_before)
    assert not np.array_equal(weights_of(model.encoder)[0], encoder_before[0])


def test_ema_without_warmup_uses_the_decay():
    model = CBiGAN(tiny_config(ema_warmup=False, ema_decay=0.9), SIDE)
    ema_before = weights_of(model.ema_generator)
    for w in model.generator.weights:
        w.assign(w + 1.0)
    model._update_ema()
    for got, e, w in zip(weights_of(model.ema_generator), ema_before, weights_of(model.generator)):
        np.testing.assert_allclose(got, 0.9 * e + 0.1 * w, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- short training, determinism, checkpoint

def smooth(n, seed):
    coarse = np.random.default_rng(seed).normal(size=(n, 4, 4, 3)).astype(np.float32)
    return tf.image.resize(coarse, [SIDE, SIDE], method="bilinear")


# 8 smooth images sharing a common pattern (something a tiny model can learn in a few dozen updates)
DATA = tf.clip_by_value(0.6 * tf.tanh(smooth(1, seed=3)) + 0.25 * smooth(8, seed=4), -1.0, 1.0)
# alpha = 1: G and E minimise L_R + L_R' only (the critic still trains, so determinism covers both steps)
TRAIN = dict(alpha=1.0, lr=3e-3, d_iter=1, channels=2)
BATCHES = 60
SHORT = 6


def image_reconstruction(model):
    x_rec = model.generator(model.encoder(DATA))
    return float(tf.reduce_mean(tf.reduce_sum(tf.abs(DATA - x_rec), axis=[1, 2, 3])))


def train(seed, batches, keep_at=None):
    model = CBiGAN(tiny_config(seed=seed, **TRAIN), SIDE)
    init = snapshot(model)
    before = image_reconstruction(model)
    history, kept = [], None
    for i in range(batches):
        start = (i % 2) * BATCH
        kind, results = model.train_batch(DATA[start:start + BATCH])
        history.append((kind, {k: float(v) for k, v in results.items()}))
        if keep_at is not None and i + 1 == keep_at:
            kept = snapshot(model)
    return {"model": model, "init": init, "before": before, "after": image_reconstruction(model),
            "history": history, "kept": kept, "final": snapshot(model)}


@pytest.fixture(scope="module")
def runs():
    # c: another seed, one (critic) update is enough to compare
    return {"a": train(11, BATCHES, keep_at=SHORT), "b": train(11, SHORT), "c": train(12, 1)}


def test_short_training_lowers_image_reconstruction(runs):
    a = runs["a"]
    # on this machine: 924.6 -> 826.4 (evaluation mode), first 5 G/E updates 911, last 5 about 790
    assert a["after"] < 0.95 * a["before"], (a["before"], a["after"])
    ge = [r["image_reconstruction"] for kind, r in a["history"] if kind == "generator_encoder"]
    assert len(ge) == BATCHES // 2
    assert np.mean(ge[-5:]) < 0.95 * np.mean(ge[:5]), ge


def test_same_seed_gives_identical_losses_and_weights(runs):
    a, b = runs["a"], runs["b"]
    assert a["history"][:SHORT] == b["history"]
    for name in a["kept"]:
        assert_same(a["kept"][name], b["final"][name])


def test_different_seed_gives_different_losses(runs):
    a, c = runs["a"], runs["c"]
    assert a["history"][0][1]["critic_loss"] != c["history"][0][1]["critic_loss"]
    assert c["history"][0][0] == a["history"][0][0] == "critic"
    assert all(a["history"][0][1][k] != v for k, v in c["history"][0][1].items())
    assert not np.array_equal(a["init"]["encoder"][0], c["init"]["encoder"][0])


def test_checkpoint_restores_the_whole_training_state(runs, tmp_path):
    source = runs["a"]["model"]
    path = source.checkpoint().write(str(tmp_path / "ckpt"))
    restored = CBiGAN(tiny_config(seed=99, **TRAIN), SIDE)
    assert not np.array_equal(weights_of(restored.encoder)[0], weights_of(source.encoder)[0])
    checkpoint = restored.checkpoint()
    checkpoint.read(path).assert_consumed()

    expected, got = snapshot(source), snapshot(restored)
    mismatched = [name for name in expected
                  if any(not np.array_equal(u, v) for u, v in zip(got[name], expected[name]))]
    assert mismatched == []
    for opt in ("critic_optimizer", "ge_optimizer"):
        source_vars = getattr(source, opt).variables
        restored_vars = getattr(restored, opt).variables
        assert [v.shape for v in restored_vars] == [v.shape for v in source_vars]
        assert_same([v.numpy() for v in restored_vars], [v.numpy() for v in source_vars])
    assert int(restored.critic_optimizer.iterations.numpy()) == BATCHES // 2
    assert int(restored.step.numpy()) == int(source.step.numpy()) == BATCHES
    assert int(restored.ema_updates.numpy()) == int(source.ema_updates.numpy()) == BATCHES // 2
    np.testing.assert_array_equal(restored.rng.state.numpy(), source.rng.state.numpy())
    # resuming continues exactly: same next update, same next random draw
    kind_s, results_s = source.train_batch(DATA[:BATCH])
    kind_r, results_r = restored.train_batch(DATA[:BATCH])
    assert kind_s == kind_r
    assert {k: float(v) for k, v in results_s.items()} == {k: float(v) for k, v in results_r.items()}
    np.testing.assert_array_equal(restored.rng.normal([5]).numpy(), source.rng.normal([5]).numpy())


def test_alpha_warm_start_then_the_configured_alpha():
    """--alpha_start 1 for the first 2 batches, then alpha 0.25: the G/E total of eq. 13 uses the alpha of its
    batch (d_iter 1: G/E updates on batches 1 and 3, 0-based)."""
    model = CBiGAN(tiny_config(alpha=0.25, alpha_start=1.0, alpha_warmup_steps=2, d_iter=1, lr=1e-3), SIDE)
    totals = {}
    for step in range(4):
        kind, results = model.train_batch(X)
        if kind == "generator_encoder":
            totals[step] = {k: float(v) for k, v in results.items()}
    assert sorted(totals) == [1, 3]
    early, late = totals[1], totals[3]
    assert early["generator_encoder_total"] == pytest.approx(early["consistency_loss"], rel=1e-6)
    assert late["generator_encoder_total"] == pytest.approx(
        0.75 * late["adversarial_loss"] + 0.25 * late["consistency_loss"], rel=1e-5)
    assert float(model.alpha.numpy()) == 0.25


def test_alpha_schedule_flags_go_together():
    from errors import ConfigError
    with pytest.raises(ConfigError, match="--alpha_warmup_steps"):
        tiny_config(alpha_start=1.0)
    with pytest.raises(ConfigError, match="--alpha_start"):
        tiny_config(alpha_start=1.5, alpha_warmup_steps=10)


def test_critic_lr_and_betas_reach_the_optimizers():
    model = CBiGAN(tiny_config(lr=2e-4, critic_lr=5e-5, ge_beta1=0.5, ge_beta2=0.999), SIDE)
    assert float(model.ge_optimizer.learning_rate.numpy()) == pytest.approx(2e-4)
    assert float(model.critic_optimizer.learning_rate.numpy()) == pytest.approx(5e-5)
    assert (model.ge_optimizer.beta_1, model.ge_optimizer.beta_2) == (0.5, 0.999)
    assert (model.critic_optimizer.beta_1, model.critic_optimizer.beta_2) == (0.0, 0.9)
