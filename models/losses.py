"""Losses of the paper (section IV) and the WGAN-GP penalty, as pure functions of tensors.

Conventions: scores are the critic's outputs per sample, shape (N,). L1 terms are summed over each sample's
elements and averaged over the batch, as in the authors' code.
"""
import tensorflow as tf


def critic_loss(real_scores, fake_scores):
    """Eq. 6: L_D = -mean D(x, E(x)) + mean D(G(z), z)."""
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def generator_encoder_adversarial_loss(real_scores, fake_scores):
    """Eq. 5: L_{E,G} = mean D(x, E(x)) - mean D(G(z), z)."""
    return tf.reduce_mean(real_scores) - tf.reduce_mean(fake_scores)


def l1_per_sample(a, b):
    """||a - b||_1 of each sample (eq. 8, 11, 12): the sum over all but the batch axis."""
    diff = tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32))
    return tf.reduce_sum(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)


def reconstruction_loss(original, reconstruction):
    """Batch mean of eq. 11 (images: x vs G(E(x))) or eq. 12 (latents: z vs E(G(z)))."""
    return tf.reduce_mean(l1_per_sample(original, reconstruction))


def consistency_generator_encoder_loss(adversarial, image_reconstruction, latent_reconstruction, alpha):
    """Eq. 13: L*_{E,G} = (1 - alpha) L_{E,G} + alpha L_C, with L_C = L_R + L_R' (eq. 10)."""
    return (1.0 - alpha) * adversarial + alpha * (image_reconstruction + latent_reconstruction)


def interpolate_pairs(real_pair, fake_pair, epsilon):
    """Random points on the segments between two (image, latent) pairs, one epsilon per sample for both."""
    (x_real, z_real), (x_fake, z_fake) = real_pair, fake_pair
    eps_x = tf.reshape(epsilon, [-1, 1, 1, 1])
    eps_z = tf.reshape(epsilon, [-1, 1])
    return (eps_x * x_real + (1.0 - eps_x) * x_fake, eps_z * z_real + (1.0 - eps_z) * z_fake)


def gradient_penalty(critic, real_pair, fake_pair, epsilon):
    """WGAN-GP (Gulrajani et al. 2017), two-sided: mean over samples of (||grad D(x_hat, z_hat)|| - 1)^2,
    the gradient taken w.r.t. both the image and the latent input of the critic.

    critic: callable [x, z] -> scores (N,). The pairs are interpolated with interpolate_pairs.
    """
    x_hat, z_hat = interpolate_pairs(real_pair, fake_pair, epsilon)
    with tf.GradientTape() as tape:
        tape.watch([x_hat, z_hat])
        scores = critic([x_hat, z_hat])
    grad_x, grad_z = tape.gradient(scores, [x_hat, z_hat])
    squared_norm = (tf.reduce_sum(tf.square(tf.reshape(grad_x, [tf.shape(grad_x)[0], -1])), axis=1)
                    + tf.reduce_sum(tf.square(grad_z), axis=1))
    norm = tf.sqrt(squared_norm + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))
