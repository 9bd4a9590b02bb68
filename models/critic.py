"""D(x, z): the WGAN critic of (image, latent) pairs (the paper's Fig. 3), with named intermediate features for
the anomaly score's L_fD term (eq. 9)."""
import keras
from keras import layers

from models.blocks import make_activation
from models.encoder import ImageTrunk
from models.geometry import check_input_side
from models.options import FEATURE_LAYERS


class Critic(keras.Model):
    def __init__(self, image_size=128, channels=3, latent_size=64, normalization="none", activation="lrelu",
                 use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.image_size = check_input_side(image_size)
        self.latent_size = latent_size
        self.trunk = ImageTrunk(channels, normalization, activation, use_bias, name="image_path")
        self.latent_dense = [layers.Dense(512, use_bias=use_bias, name=f"latent{i}") for i in range(3)]
        self.latent_acts = [make_activation(activation) for _ in range(3)]
        self.concat = layers.Concatenate()
        self.joint = layers.Dense(16 * channels, use_bias=use_bias, name="joint")
        self.joint_act = make_activation(activation)
        self.score = layers.Dense(1, dtype="float32", name="score")
        self.build([(None, image_size, image_size, 3), (None, latent_size)])

    def build(self, input_shape):
        self.call([keras.KerasTensor(input_shape[0]), keras.KerasTensor(input_shape[1])])
        self.built = True

    def call(self, inputs, training=False):
        return self.score(self._joint_features(inputs, training))[:, 0]

    def _joint_features(self, inputs, training=False):
        x, z = inputs
        image_features = self.trunk(x, training=training)
        for dense, act in zip(self.latent_dense, self.latent_acts):
            z = act(dense(z))
        return self.joint_act(self.joint(self.concat([image_features, z])))

    def features(self, x, z, layer="first_conv", training=False):
        """f_D(x, z) of eq. 9, flattened per sample.

        first_conv: output of the image path's first 3x3 convolution (before activation; H x W x c); the
        authors' choice, it ignores z. joint: the Dense(16c) features after concatenating both paths (after
        its activation), just before the final Dense(1).
        """
        if layer == "first_conv":
            first_conv = self.trunk.blocks[0].conv1(x)
            return keras.ops.reshape(first_conv, (keras.ops.shape(x)[0], -1))
        if layer == "joint":
            return self._joint_features([x, z], training)
        raise ValueError(f"feature layer must be one of {FEATURE_LAYERS}, got {layer!r}")

    def feature_difference(self, x, x_other, z, layer="first_conv"):
        """f_D(x, z) - f_D(x_other, z), flattened per sample: the vector whose L1 norm is eq. 9.

        first_conv is linear in x (a convolution; its bias, if any, cancels in the difference), so it is
        computed as one convolution of x - x_other: half the work of two feature passes, equal up to float
        rounding. joint: two passes, one batch.
        """
        if layer == "first_conv":
            conv = self.trunk.blocks[0].conv1
            difference = keras.ops.cast(x, conv.compute_dtype) - keras.ops.cast(x_other, conv.compute_dtype)
            out = keras.ops.conv(difference, keras.ops.cast(conv.kernel, conv.compute_dtype), strides=1,
                                 padding="same")
            return keras.ops.reshape(out, (keras.ops.shape(x)[0], -1))
        features = self.features(keras.ops.concatenate([x, x_other], 0), keras.ops.concatenate([z, z], 0),
                                 layer)
        real, other = keras.ops.split(features, 2)
        return real - other
