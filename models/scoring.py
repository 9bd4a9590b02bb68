"""Anomaly scores (eq. 7-9) and anomaly maps from a trained CBiGAN, computed inside one tf.function.

Per model input (a whole object image or one texture patch):
  L_R   = ||x - G(E(x))||_1                                   (eq. 8)
  L_fD  = ||f_D(x, E(x)) - f_D(G(E(x)), E(x))||_1              (eq. 9)
  A     = (1 - lambda) L_R + lambda L_fD                       (eq. 7)
  map   = per-pixel L1 error, summed over the 3 channels       (the anomaly map)
Textures: an image's score for each lambda is the maximum of its patches' scores (paper V-B); its L_R and L_fD
columns are the maxima over its patches; its map is stitched from the patch maps.
"""
import numpy as np
import tensorflow as tf

from data.patches import stitch_patches
from runtime_threads import SCORING_STREAMS

DEFAULT_LAMBDAS = (0.1, 0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def combine(reconstruction_error, feature_error, score_lambda):
    """Eq. 7 on arrays of per-input L_R and L_fD."""
    return (1.0 - score_lambda) * np.asarray(reconstruction_error) + score_lambda * np.asarray(feature_error)


def score_graph(encoder, generator, critic, x, feature_layer, keep_reconstruction=True):
    """Eq. 8, 9 and the anomaly map of model inputs x (N, s, s, 3) in [-1, 1], as graph ops (used by the Scorer
    and by the exported model)."""
    z = encoder(x, training=False)
    reconstruction = generator(z, training=False)
    error_map = tf.add_n(tf.unstack(tf.abs(x - reconstruction), axis=-1))  # the channel sum; 2x reduce_sum's speed
    reconstruction_error = tf.reduce_sum(error_map, axis=[1, 2])                         # eq. 8
    feature_difference = critic.feature_difference(x, reconstruction, z, feature_layer)
    feature_error = tf.reduce_sum(tf.abs(tf.cast(feature_difference, tf.float32)), axis=1)  # eq. 9
    scores = {"reconstruction_error": reconstruction_error, "feature_error": feature_error, "error_map": error_map}
    if keep_reconstruction:
        scores["reconstruction"] = reconstruction
    return scores


class Scorer:
    """Scores batches of model inputs with (E, G) = the EMA or last weights and the critic's features.

    streams > 1: a batch of at least that many inputs is cut into `streams` parts, scored by independent copies
    of the graph inside one tf.function call; TensorFlow runs them side by side (runtime_threads.py). The
    numbers are those of one stream (each input is scored on its own; tests/models/test_scoring.py).
    """

    def __init__(self, model, weights="ema", feature_layer="first_conv", streams=SCORING_STREAMS):
        self.encoder, self.generator = model.networks(weights)
        self.critic = model.critic
        self.feature_layer = feature_layer
        self.streams = max(1, int(streams))
        self._spec = tf.TensorSpec([None, model.image_size, model.image_size, 3], tf.float32)
        self._functions = {}  # (parts, keep_reconstruction) -> tf.function, each traced once

    def _function(self, parts, keep_reconstruction):
        """A tf.function: batch -> a list of `parts` dicts (one per stream, in batch order)."""
        key = (parts, keep_reconstruction)
        if key not in self._functions:
            def score(x):
                return [score_graph(self.encoder, self.generator, self.critic, part, self.feature_layer,
                                    keep_reconstruction) for part in _split(x, parts)]
            self._functions[key] = tf.function(score, input_signature=[self._spec])
        return self._functions[key]

    def _score_parts(self, x, keep_reconstruction):
        x = tf.convert_to_tensor(x, tf.float32)
        parts = self.streams if int(x.shape[0]) >= self.streams else 1
        return self._function(parts, bool(keep_reconstruction))(x)

    def score_batch(self, x, keep_reconstruction=False):
        """Eq. 8, 9 and the maps of one batch (N, s, s, 3) in [-1, 1]: a dict of tensors as score_graph's."""
        parts = self._score_parts(x, keep_reconstruction)
        return {name: tf.concat([part[name] for part in parts], 0) for name in parts[0]}

    def score_inputs(self, inputs, batch_size=64, keep_reconstructions=False):
        """Score an array (N, s, s, 3) in [-1, 1] in batches; returns numpy arrays keyed as score_graph."""
        outputs = {}
        for start in range(0, len(inputs), batch_size):
            for part in self._score_parts(inputs[start:start + batch_size], keep_reconstructions):
                for key, value in part.items():
                    outputs.setdefault(key, []).append(value.numpy())
        return {key: np.concatenate(values) for key, values in outputs.items()}

    def score_images(self, image_patches, image_size, lambdas=DEFAULT_LAMBDAS, batch_size=64,
                     keep_reconstructions=False):
        """Score images given as patch grids (N, P, p, p, 3) (P = 1 for objects).

        Returns per image: reconstruction_error and feature_error (max over patches), "scores" {lambda: (N,)}
        (max over patches of eq. 7), "anomaly_map" (N, image_size, image_size) stitched, and optionally the
        stitched "reconstruction" (N, image_size, image_size, 3).
        """
        n_images, n_patches = image_patches.shape[:2]
        flat = image_patches.reshape((-1,) + image_patches.shape[2:])
        out = self.score_inputs(flat, batch_size, keep_reconstructions)
        per_patch_r = out["reconstruction_error"].reshape(n_images, n_patches)
        per_patch_f = out["feature_error"].reshape(n_images, n_patches)
        result = {
            "reconstruction_error": per_patch_r.max(axis=1),
            "feature_error": per_patch_f.max(axis=1),
            "scores": {lam: combine(per_patch_r, per_patch_f, lam).max(axis=1) for lam in lambdas},
            "anomaly_map": _stitch_all(out["error_map"][..., None], n_images, n_patches, image_size)[..., 0],
        }
        if keep_reconstructions:
            result["reconstruction"] = _stitch_all(out["reconstruction"], n_images, n_patches, image_size)
        return result


def _stitch_all(patches, n_images, n_patches, image_size):
    patches = patches.reshape((n_images, n_patches) + patches.shape[1:])
    if n_patches == 1:
        return patches[:, 0]
    return stitch_patches(patches, image_size)


def _split(x, parts):
    """x cut along the batch into `parts` pieces as equal as possible (all non-empty when len(x) >= parts)."""
    if parts == 1:
        return [x]
    n = tf.shape(x)[0]
    sizes = tf.stack([n // parts + tf.cast(i < n % parts, tf.int32) for i in range(parts)])
    return tf.split(x, sizes, num=parts)
