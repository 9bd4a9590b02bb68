"""CBiGAN: a BiGAN with the WGAN-GP objective and the consistency loss of the paper (eq. 4-13).

The model owns E, G, D, both optimizers, the EMA copies of E and G (used for evaluation) and the random
generator, so one tf.train.Checkpoint of it saves the whole training state. Training alternates
`critic_step` (d_iter times) and `generator_encoder_step` (once), each consuming one batch of real images.
"""
import keras
import tensorflow as tf

from models import losses
from models.critic import Critic
from models.encoder import Encoder
from models.generator import Generator


def build_networks(config, image_size):
    """(E, G, D) for a model input side of image_size, from a TrainConfig."""
    arch = dict(image_size=image_size, channels=config.channels, latent_size=config.latent_size,
                normalization=config.normalization, activation=config.activation, use_bias=config.use_bias)
    return (Encoder(name="encoder", **arch),
            Generator(name="generator", upsampling=config.upsampling, **arch),
            Critic(name="critic", **arch))


class CBiGAN(keras.Model):
    def __init__(self, config, image_size, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.image_size = image_size
        self.latent_size = config.latent_size
        self.alpha = float(config.alpha)
        self.gp_weight = float(config.gp_weight)
        self.d_iter = int(config.d_iter)
        keras.utils.set_random_seed(config.seed)  # weight initialisation
        self.encoder, self.generator, self.critic = build_networks(config, image_size)
        self.ema_encoder, self.ema_generator, _ = build_networks(config, image_size)
        for source, copy in ((self.encoder, self.ema_encoder), (self.generator, self.ema_generator)):
            copy.set_weights(source.get_weights())
        self.critic_optimizer = keras.optimizers.Adam(config.lr, beta_1=config.d_beta1, beta_2=config.d_beta2)
        self.ge_optimizer = keras.optimizers.Adam(config.lr, beta_1=config.ge_beta1, beta_2=config.ge_beta2)
        self.critic_optimizer.build(self.critic.trainable_variables)
        self.ge_optimizer.build(self.generator_encoder_variables)
        self.rng = tf.random.Generator.from_seed(config.seed)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")  # batches consumed
        self.ema_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_updates")
        self.ema_pairs = list(zip(self.encoder.weights + self.generator.weights,
                                  self.ema_encoder.weights + self.ema_generator.weights))
        signature = [tf.TensorSpec([None, image_size, image_size, 3], tf.float32)]
        self.critic_step = tf.function(self._critic_step, input_signature=signature)
        self.generator_encoder_step = tf.function(self._generator_encoder_step, input_signature=signature)

    @property
    def generator_encoder_variables(self):
        return self.generator.trainable_variables + self.encoder.trainable_variables

    def is_critic_step(self, step):
        """The schedule: d_iter critic updates, then one G/E update; step counts batches from 0."""
        return step % (self.d_iter + 1) < self.d_iter

    def train_batch(self, x):
        """One update on the batch x of the kind the schedule gives for the current step; returns its losses."""
        if self.is_critic_step(int(self.step.numpy())):
            return "critic", self.critic_step(x)
        return "generator_encoder", self.generator_encoder_step(x)

    # ---- losses on given inputs (pure functions of x, z, epsilon; used by the steps and by the tests) ----

    def critic_losses(self, x, z, epsilon):
        """L_D (eq. 6) and the gradient penalty, with E(x) and G(z) treated as constants."""
        z_real = tf.stop_gradient(self.encoder(x, training=True))
        x_fake = tf.stop_gradient(self.generator(z, training=True))
        scores = self.critic([tf.concat([x, x_fake], 0), tf.concat([z_real, z], 0)], training=True)
        real_scores, fake_scores = tf.split(scores, 2)
        if self.config.gp_pairing == "paper":  # real pair (x, E(x)) vs fake pair (G(z), z)
            real_pair, fake_pair = (x, z_real), (x_fake, z)
        else:  # the authors' code: (x, z) vs (G(z), E(x))
            real_pair, fake_pair = (x, z), (x_fake, z_real)
        critic_fn = lambda pair: self.critic(pair, training=True)  # noqa: E731
        penalty = losses.gradient_penalty(critic_fn, real_pair, fake_pair, epsilon)
        critic_loss = losses.critic_loss(real_scores, fake_scores)  # eq. 6
        return {
            "critic_loss": critic_loss,
            "gradient_penalty": penalty,
            "critic_total": critic_loss + self.gp_weight * penalty,
            "real_score": tf.reduce_mean(real_scores),
            "fake_score": tf.reduce_mean(fake_scores),
        }

    def generator_encoder_losses(self, x, z):
        """L*_{E,G} (eq. 13) from L_{E,G} (eq. 5), L_R (eq. 11) and L_R' (eq. 12)."""
        z_real = self.encoder(x, training=True)                                      # E(x)
        generated = self.generator(tf.concat([z, z_real], 0), training=True)
        x_fake, x_reconstructed = tf.split(generated, 2)                             # G(z), G(E(x))
        scores = self.critic([tf.concat([x, x_fake], 0), tf.concat([z_real, z], 0)], training=True)
        real_scores, fake_scores = tf.split(scores, 2)
        adversarial = losses.generator_encoder_adversarial_loss(real_scores, fake_scores)  # eq. 5
        z_reconstructed = self.encoder(x_fake, training=True)                        # E(G(z))
        image_reconstruction = losses.reconstruction_loss(x, x_reconstructed)        # eq. 11
        latent_reconstruction = losses.reconstruction_loss(z, z_reconstructed)       # eq. 12
        total = losses.consistency_generator_encoder_loss(                           # eq. 10, 13
            adversarial, image_reconstruction, latent_reconstruction, self.alpha)
        return {
            "adversarial_loss": adversarial,
            "image_reconstruction": image_reconstruction,
            "latent_reconstruction": latent_reconstruction,
            "consistency_loss": image_reconstruction + latent_reconstruction,
            "generator_encoder_total": total,
            "real_score": tf.reduce_mean(real_scores),
            "fake_score": tf.reduce_mean(fake_scores),
        }

    # ---- the two updates (tf.function, traced once each) ----

    def _critic_step(self, x):
        batch = tf.shape(x)[0]
        z = self.rng.normal([batch, self.latent_size])
        epsilon = self.rng.uniform([batch])
        with tf.GradientTape() as tape:
            results = self.critic_losses(x, z, epsilon)
        variables = self.critic.trainable_variables
        gradients = tape.gradient(results["critic_total"], variables)
        self.critic_optimizer.apply_gradients(zip(gradients, variables))
        self.step.assign_add(1)
        return results

    def _generator_encoder_step(self, x):
        z = self.rng.normal([tf.shape(x)[0], self.latent_size])
        with tf.GradientTape() as tape:
            results = self.generator_encoder_losses(x, z)
        variables = self.generator_encoder_variables
        gradients = tape.gradient(results["generator_encoder_total"], variables)
        self.ge_optimizer.apply_gradients(zip(gradients, variables))
        self._update_ema()
        self.step.assign_add(1)
        return results

    def _update_ema(self):
        """EMA of E and G after each G/E update. With ema_warmup the decay is min(decay, (1+n)/(10+n)) as in
        tf.train.ExponentialMovingAverage(num_updates=n), so early averages do not carry the initialisation."""
        decay = tf.constant(self.config.ema_decay, tf.float32)
        if self.config.ema_warmup:
            n = tf.cast(self.ema_updates, tf.float32)
            decay = tf.minimum(decay, (1.0 + n) / (10.0 + n))
        for source, average in self.ema_pairs:
            average.assign(decay * average + (1.0 - decay) * tf.cast(source, average.dtype))
        self.ema_updates.assign_add(1)

    # ---- inference ----

    def networks(self, weights="ema"):
        """(E, G) to evaluate with: the EMA copies (default) or the last trained weights."""
        if weights == "ema":
            return self.ema_encoder, self.ema_generator
        if weights == "last":
            return self.encoder, self.generator
        raise ValueError(f"weights must be 'ema' or 'last', got {weights!r}")

    def checkpoint(self):
        """A tf.train.Checkpoint of the whole training state.

        Networks are saved as {variable path: variable} dicts: tf.train.Checkpoint does not follow Keras 3's
        nested custom layers (blocks kept in lists), so saving the models themselves would silently drop most
        of their weights (the EMA copies have no optimizer that would reference them).
        """
        def variables(network):
            return {v.path.replace("/", "."): v for v in network.weights}
        return tf.train.Checkpoint(encoder=variables(self.encoder), generator=variables(self.generator),
                                   critic=variables(self.critic), ema_encoder=variables(self.ema_encoder),
                                   ema_generator=variables(self.ema_generator),
                                   critic_optimizer=self.critic_optimizer, ge_optimizer=self.ge_optimizer,
                                   rng=self.rng, step=self.step, ema_updates=self.ema_updates)
