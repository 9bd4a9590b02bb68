"""CBiGAN: a BiGAN with the WGAN-GP objective and the consistency loss of the paper (eq. 4-13).

The model owns E, G, D, both optimizers, the EMA copies of E and G (used for evaluation) and the random
generator, so one tf.train.Checkpoint of it saves the whole training state. Training alternates
`critic_step` (d_iter times) and `generator_encoder_step` (once), each consuming one batch of real images; with
d_iter 0 (as in the authors' code) `joint_step` updates the critic and G/E together on every batch, both
gradients taken at the same weights. skip_critic trains G/E only.

EMA of E and G: after each G/E update (ema_every 0, optionally with warm-up), or the authors' schedule
(ema_every N, N = 10 in their code): after every N-th batch, the first time a plain copy of the weights (their
shadow copy is taken at batch N), then average <- decay * average + (1 - decay) * weights.
"""
import keras
import tensorflow as tf

from models import distributed, losses
from models.critic import Critic
from models.encoder import Encoder
from models.generator import Generator


def build_networks(config, image_size):
    """(E, G, D) for a model input side of image_size, from a TrainConfig."""
    arch = dict(image_size=image_size, channels=config.channels, latent_size=config.latent_size,
                normalization=config.normalization, activation=config.activation, use_bias=config.use_bias)
    encoder_normalization = config.encoder_normalization or config.normalization
    return (Encoder(name="encoder", **{**arch, "normalization": encoder_normalization}),
            Generator(name="generator", upsampling=config.upsampling, **arch),
            Critic(name="critic", **arch))


class CBiGAN(keras.Model):
    def __init__(self, config, image_size, strategy=None, precision=None, **kwargs):
        """strategy: a tf.distribute strategy to build and train under (None: one device, TensorFlow's default
        strategy; the steps then take plain tensors, not distributed batches).
        precision: the Keras dtype policy the networks compute in (None: the global policy, float32 unless set;
        weights stay float32). Dynamic loss scaling wraps both optimizers when config.precision is
        "mixed_float16", whatever the policy here, so checkpoints keep one structure per config."""
        super().__init__(**kwargs)
        self.config = config
        self.image_size = image_size
        self.latent_size = config.latent_size
        self.alpha = tf.Variable(config.alpha_at(0), dtype=tf.float32, trainable=False, name="alpha")  # eq. 13
        self.gp_weight = float(config.gp_weight)
        self.d_iter = int(config.d_iter)
        self.skip_critic = bool(config.skip_critic)
        self.ema_every = int(config.ema_every)
        # One device (strategy None): TensorFlow's default strategy, whose run() calls the replica update directly
        # (one replica, the whole batch) and whose reduce() returns its value, so the one-device graph is the
        # plain one. Variables are built under the given strategy's scope only (none on one device).
        self.strategy = tf.distribute.get_strategy() if strategy is None else strategy
        self.replicas = int(self.strategy.num_replicas_in_sync)
        with distributed.scope(strategy), distributed.precision_policy(precision):
            keras.utils.set_random_seed(config.seed)  # weight initialisation
            self.encoder, self.generator, self.critic = build_networks(config, image_size)
            self.ema_encoder, self.ema_generator, _ = build_networks(config, image_size)
            for source, copy in ((self.encoder, self.ema_encoder), (self.generator, self.ema_generator)):
                copy.set_weights(source.get_weights())
            self.critic_optimizer = self._optimizer(config.critic_lr or config.lr, config.d_beta1, config.d_beta2)
            self.ge_optimizer = self._optimizer(config.lr, config.ge_beta1, config.ge_beta2)
            self.critic_optimizer.build(self.critic.trainable_variables)
            self.ge_optimizer.build(self.generator_encoder_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")  # batches consumed
            self.ema_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_updates")
        # Outside the strategy: z and epsilon are drawn for the global batch (in cross-replica context) and each
        # replica takes its slice, so a distributed run draws exactly the numbers of a one-device run.
        self.rng = tf.random.Generator.from_seed(config.seed)
        self.ema_pairs = list(zip(self.encoder.weights + self.generator.weights,
                                  self.ema_encoder.weights + self.ema_generator.weights))
        # One device: x is a tensor; its None batch axis traces each step once for every batch size. Under a
        # strategy x is a distributed batch (strategy.experimental_distribute_dataset): one value per replica.
        signature = [tf.TensorSpec([None, image_size, image_size, 3], tf.float32)] if strategy is None else None
        self.critic_step = tf.function(self._critic_step, input_signature=signature)
        self.generator_encoder_step = tf.function(self._generator_encoder_step, input_signature=signature)
        self.joint_step = tf.function(self._joint_step, input_signature=signature)
        self.scheduled_ema_update = tf.function(self._scheduled_ema_update)

    def _optimizer(self, learning_rate, beta_1, beta_2):
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
        if self.config.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    @property
    def generator_encoder_variables(self):
        return self.generator.trainable_variables + self.encoder.trainable_variables

    def update_kind(self, step):
        """The schedule, step counting batches from 0: d_iter critic updates, then one G/E update; d_iter 0: both
        on every batch ("joint"); skip_critic: G/E only."""
        if self.skip_critic:
            return "generator_encoder"
        if self.d_iter == 0:
            return "joint"
        return "critic" if step % (self.d_iter + 1) < self.d_iter else "generator_encoder"

    def is_critic_step(self, step):
        return self.update_kind(step) == "critic"

    def train_batch(self, x):
        """One update on the batch x of the kind the schedule gives for the current step (then the scheduled
        EMA update, if one falls on this batch); returns (kind, losses)."""
        step = int(self.step.numpy())
        kind = self.update_kind(step)
        if self.config.alpha_start is not None:  # a function of the step, so not checkpointed
            self.alpha.assign(self.config.alpha_at(step))
        step_fn = {"critic": self.critic_step, "generator_encoder": self.generator_encoder_step,
                   "joint": self.joint_step}[kind]
        results = step_fn(x)  # each step function adds 1 to self.step
        if self.ema_every and (step + 1) % self.ema_every == 0:
            self.scheduled_ema_update()
        return kind, results

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

    # ---- the update steps (tf.function, traced once each) ----
    # Each draws z / epsilon for the global batch x, runs its update on every replica (strategy.run) on that
    # replica's rows and reduces the losses; on one device (the default strategy) run() calls the update and
    # reduce() returns its losses, so the graph is the plain one-device graph.

    def _critic_step(self, x):
        """One critic update: L_D (eq. 6) plus the gradient penalty."""
        batch = self._global_batch(x)
        z = self.rng.normal([batch, self.latent_size])
        epsilon = self.rng.uniform([batch])
        results = self._run_per_replica(self._critic_update, x, z, epsilon)
        self.step.assign_add(1)
        return results

    def _generator_encoder_step(self, x):
        """One G/E update: L*_{E,G} (eq. 13); then the EMA of E and G (unless on the authors' schedule)."""
        z = self.rng.normal([self._global_batch(x), self.latent_size])
        results = self._run_per_replica(self._generator_encoder_update, x, z)
        if not self.ema_every:
            self._update_ema()  # cross-replica context: once per step, the same value on every replica
        self.step.assign_add(1)
        return results

    def _joint_step(self, x):
        """d_iter 0: the critic and the G/E update on the same batch (_joint_update); then the EMA."""
        batch = self._global_batch(x)
        z_critic = self.rng.normal([batch, self.latent_size])
        epsilon = self.rng.uniform([batch])
        z = self.rng.normal([batch, self.latent_size])
        results = self._run_per_replica(self._joint_update, x, z_critic, epsilon, z)
        if not self.ema_every:
            self._update_ema()
        self.step.assign_add(1)
        return results

    def _global_batch(self, x):
        """The number of images in the global batch x: one replica's rows times the replicas (equal slices)."""
        rows = tf.shape(self.strategy.experimental_local_results(x)[0])[0]
        return rows if self.replicas == 1 else rows * self.replicas

    def _run_per_replica(self, update, x, *draws):
        """update(x, *its rows of draws, replicas=...) on every replica; the losses reduced over the replicas."""
        def replica_update(x, *draws):
            return update(x, *self._replica_slice(x, *draws), replicas=self.replicas)
        return self._reduce(self.strategy.run(replica_update, args=(x, *draws)))

    def _replica_slice(self, x, *values):
        """This replica's rows of global-batch tensors: replica i holds rows [i*b, (i+1)*b) of the global
        batch, as experimental_distribute_dataset splits it (one replica: all of them)."""
        if self.replicas == 1:
            return values
        context = tf.distribute.get_replica_context()
        size = tf.shape(x)[0]
        start = tf.cast(context.replica_id_in_sync_group, tf.int32) * size
        return [value[start:start + size] for value in values]

    def _reduce(self, per_replica_results):
        """The global-batch means: the sum over replicas of their scaled means."""
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica_results.items()}

    # ---- the updates on one replica ----

    def _critic_update(self, x, z, epsilon, replicas=1):
        """One critic update on (x, z, epsilon). With replicas > 1 (per replica, under a strategy) the losses
        are this replica's batch means divided by the number of replicas: the optimizer sums the gradients
        over the replicas (all-reduce), which then are those of the global batch mean."""
        results, gradients = self._critic_gradients(x, z, epsilon, replicas)
        self.critic_optimizer.apply_gradients(zip(gradients, self.critic.trainable_variables))
        return results

    def _critic_gradients(self, x, z, epsilon, replicas):
        with tf.GradientTape() as tape:
            results = self._per_replica(self.critic_losses(x, z, epsilon), replicas)
            loss = self._scale_loss(self.critic_optimizer, results["critic_total"])
        return results, tape.gradient(loss, self.critic.trainable_variables)

    def _generator_encoder_update(self, x, z, replicas=1):
        """One G/E update on (x, z); replicas as in _critic_update. EMA and step are updated by the caller."""
        results, gradients = self._generator_encoder_gradients(x, z, replicas)
        self.ge_optimizer.apply_gradients(zip(gradients, self.generator_encoder_variables))
        return results

    def _generator_encoder_gradients(self, x, z, replicas):
        with tf.GradientTape() as tape:
            results = self._per_replica(self.generator_encoder_losses(x, z), replicas)
            loss = self._scale_loss(self.ge_optimizer, results["generator_encoder_total"])
        return results, tape.gradient(loss, self.generator_encoder_variables)

    def _joint_update(self, x, z_critic, epsilon, z, replicas=1):
        """d_iter 0: the critic update (z_critic, epsilon) and the G/E update (z) on the same batch, both
        gradients computed before either is applied. Returns the losses of both (real/fake scores of G/E's)."""
        critic_results, critic_gradients = self._critic_gradients(x, z_critic, epsilon, replicas)
        results, ge_gradients = self._generator_encoder_gradients(x, z, replicas)
        self.critic_optimizer.apply_gradients(zip(critic_gradients, self.critic.trainable_variables))
        self.ge_optimizer.apply_gradients(zip(ge_gradients, self.generator_encoder_variables))
        return {**critic_results, **results}

    @staticmethod
    def _per_replica(results, replicas):
        if replicas == 1:
            return results
        return {name: value / replicas for name, value in results.items()}

    @staticmethod
    def _scale_loss(optimizer, loss):
        """float16: the loss times the dynamic loss scale (the LossScaleOptimizer unscales the gradients)."""
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer.scale_loss(loss)
        return loss

    def _update_ema(self):
        """EMA of E and G after each G/E update. With ema_warmup the decay is min(decay, (1+n)/(10+n)) as in
        tf.train.ExponentialMovingAverage(num_updates=n), so early averages do not carry the initialisation."""
        decay = tf.constant(self.config.ema_decay, tf.float32)
        if self.config.ema_warmup:
            n = tf.cast(self.ema_updates, tf.float32)
            decay = tf.minimum(decay, (1.0 + n) / (10.0 + n))
        self._assign_ema(decay)

    def _scheduled_ema_update(self):
        """The authors' schedule (ema_every N), called after every N-th batch: the first call copies the weights
        (decay 0), later ones average with ema_decay, no warm-up."""
        decay = tf.where(self.ema_updates > 0, tf.constant(self.config.ema_decay, tf.float32), 0.0)
        self._assign_ema(decay)

    def _assign_ema(self, decay):
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
