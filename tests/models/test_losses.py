"""models/losses.py against numpy on fixed tiny tensors, and the gradient penalty against analytic values."""
import numpy as np
import pytest
import tensorflow as tf

from models import losses

RNG = np.random.default_rng(20200101)
REAL = np.array([0.5, -1.25, 2.0, 0.0], np.float32)
FAKE = np.array([-0.75, 3.0, 1.5], np.float32)   # a different length is fine: each side is averaged on its own
A = RNG.normal(size=(3, 4, 5, 3)).astype(np.float32)
B = RNG.normal(size=(3, 4, 5, 3)).astype(np.float32)


def test_critic_loss_eq6():
    expected = -REAL.mean() + FAKE.mean()
    assert float(losses.critic_loss(REAL, FAKE)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.critic_loss(REAL, FAKE)) == pytest.approx(1.25 - 0.3125, rel=1e-6)  # by hand


def test_generator_encoder_adversarial_loss_eq5():
    expected = REAL.mean() - FAKE.mean()
    assert float(losses.generator_encoder_adversarial_loss(REAL, FAKE)) == pytest.approx(expected, rel=1e-6)
    # the two players' losses are opposite (eq. 4-6)
    assert float(losses.generator_encoder_adversarial_loss(REAL, FAKE)) == pytest.approx(
        -float(losses.critic_loss(REAL, FAKE)), rel=1e-6)


def test_l1_per_sample_sums_every_element_of_each_sample():
    expected = np.abs(A - B).reshape(3, -1).sum(axis=1)
    got = losses.l1_per_sample(A, B).numpy()
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # latents (N, d) too, and a hand-checked value
    np.testing.assert_allclose(losses.l1_per_sample([[1.0, -2.0], [0.5, 0.5]], [[0.0, 0.0], [1.0, 1.0]]).numpy(),
                               [3.0, 1.0])


def test_reconstruction_loss_is_batch_mean_of_per_sample_sums():
    expected = np.abs(A - B).reshape(3, -1).sum(axis=1).mean()
    assert float(losses.reconstruction_loss(A, B)) == pytest.approx(expected, rel=1e-6)
    # not the mean over elements
    assert float(losses.reconstruction_loss(A, B)) == pytest.approx(np.abs(A - B).mean() * 60, rel=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1e-4, 0.3, 1.0])
def test_consistency_generator_encoder_loss_eq13(alpha):
    adversarial, image_rec, latent_rec = -2.5, 40.0, 7.0
    expected = (1 - alpha) * adversarial + alpha * (image_rec + latent_rec)
    got = float(losses.consistency_generator_encoder_loss(adversarial, image_rec, latent_rec, alpha))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------- interpolates and the gradient penalty

N = 4
X_REAL = RNG.uniform(-1, 1, (N, 3, 2, 3)).astype(np.float32)
X_FAKE = RNG.uniform(-1, 1, (N, 3, 2, 3)).astype(np.float32)
Z_REAL = RNG.normal(size=(N, 5)).astype(np.float32)
Z_FAKE = RNG.normal(size=(N, 5)).astype(np.float32)
EPSILON = np.array([0.0, 0.25, 0.9, 1.0], np.float32)


def numpy_interpolates():
    e = EPSILON
    x_hat = e[:, None, None, None] * X_REAL + (1 - e[:, None, None, None]) * X_FAKE
    z_hat = e[:, None] * Z_REAL + (1 - e[:, None]) * Z_FAKE
    return x_hat, z_hat


def test_interpolate_pairs_one_epsilon_per_sample_for_image_and_latent():
    x_hat, z_hat = losses.interpolate_pairs((X_REAL, Z_REAL), (X_FAKE, Z_FAKE), EPSILON)
    x_exp, z_exp = numpy_interpolates()
    np.testing.assert_allclose(x_hat.numpy(), x_exp, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(z_hat.numpy(), z_exp, rtol=1e-6, atol=1e-7)
    # epsilon 1 gives the real pair, epsilon 0 the fake pair, sample by sample, for both parts
    np.testing.assert_array_equal(x_hat.numpy()[3], X_REAL[3])
    np.testing.assert_array_equal(z_hat.numpy()[3], Z_REAL[3])
    np.testing.assert_array_equal(x_hat.numpy()[0], X_FAKE[0])
    np.testing.assert_array_equal(z_hat.numpy()[0], Z_FAKE[0])


def linear_critic(a, b):
    """D(x, z) = sum(a * x) + sum(b * z) per sample: its input gradient is (a, b) everywhere."""
    def critic(pair):
        x, z = pair
        return tf.reduce_sum(a * x, axis=[1, 2, 3]) + tf.reduce_sum(b * z, axis=1)
    return critic


@pytest.mark.parametrize("scale", [0.05, 0.3, 1.0])
def test_gradient_penalty_linear_critic_is_analytic(scale):
    a = tf.constant(scale * RNG.normal(size=(3, 2, 3)), tf.float32)
    b = tf.constant(scale * RNG.normal(size=(5,)), tf.float32)
    norm = np.sqrt(np.sum(a.numpy() ** 2) + np.sum(b.numpy() ** 2))
    expected = (norm - 1.0) ** 2
    for epsilon in (EPSILON, np.zeros(N, np.float32), np.full(N, 0.5, np.float32)):
        got = losses.gradient_penalty(linear_critic(a, b), (X_REAL, Z_REAL), (X_FAKE, Z_FAKE), epsilon)
        assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_gradient_penalty_includes_the_latent_gradient():
    """A critic that only looks at z still has a penalty: the gradient is taken w.r.t. z as well."""
    b = tf.constant([3.0, 0.0, 4.0, 0.0, 0.0])
    critic = lambda pair: tf.reduce_sum(b * pair[1], axis=1) + 0.0 * tf.reduce_sum(pair[0], [1, 2, 3])  # noqa
    got = losses.gradient_penalty(critic, (X_REAL, Z_REAL), (X_FAKE, Z_FAKE), EPSILON)
    assert float(got) == pytest.approx((5.0 - 1.0) ** 2, rel=1e-6)


def test_gradient_penalty_gradient_reaches_the_critic_parameters():
    """d GP / d a = 2 (|g| - 1) a / |g| for the linear critic (the penalty must train the critic)."""
    a = tf.Variable(0.4 * RNG.normal(size=(3, 2, 3)).astype(np.float32))
    b = tf.Variable(0.4 * RNG.normal(size=(5,)).astype(np.float32))
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(linear_critic(a, b), (X_REAL, Z_REAL), (X_FAKE, Z_FAKE), EPSILON)
    grad_a, grad_b = tape.gradient(penalty, [a, b])
    norm = np.sqrt(np.sum(a.numpy() ** 2) + np.sum(b.numpy() ** 2))
    np.testing.assert_allclose(grad_a.numpy(), 2 * (norm - 1) * a.numpy() / norm, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grad_b.numpy(), 2 * (norm - 1) * b.numpy() / norm, rtol=1e-4, atol=1e-6)


def quadratic_critic(pair):
    """D(x, z) = 0.5 sum(x^2) + 0.5 sum(z^2) per sample: its input gradient is (x, z) itself."""
    x, z = pair
    return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3]) + 0.5 * tf.reduce_sum(tf.square(z), axis=1)


def test_gradient_penalty_quadratic_critic_depends_on_the_interpolates():
    x_hat, z_hat = numpy_interpolates()
    norms = np.sqrt((x_hat ** 2).reshape(N, -1).sum(axis=1) + (z_hat ** 2).sum(axis=1))
    expected = np.mean((norms - 1.0) ** 2)
    got = losses.gradient_penalty(quadratic_critic, (X_REAL, Z_REAL), (X_FAKE, Z_FAKE), EPSILON)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # swapping the pairs moves the interpolates (epsilon weights the first pair), so the value changes
    swapped = losses.gradient_penalty(quadratic_critic, (X_FAKE, Z_FAKE), (X_REAL, Z_REAL), EPSILON)
    assert abs(float(swapped) - expected) > 1e-3


def test_gradient_penalty_is_two_sided():
    """(|g| - 1)^2 penalises gradients smaller than 1 too (not max(0, |g| - 1)^2)."""
    a = tf.fill([3, 2, 3], 0.05)
    b = tf.zeros([5])
    norm = np.sqrt(18 * 0.05 ** 2)
    got = losses.gradient_penalty(linear_critic(a, b), (X_REAL, Z_REAL), (X_FAKE, Z_FAKE), EPSILON)
    assert float(got) == pytest.approx((norm - 1) ** 2, rel=1e-5)
    assert float(got) > 0.5
