"""E(x): image -> latent code (the paper's Fig. 3)."""
import keras
from keras import layers

from models.blocks import ResidualBlock, make_activation
from models.geometry import ENCODER_MULTIPLIERS, ENCODER_POOLED_BLOCKS, check_input_side


class ImageTrunk(layers.Layer):
    """The convolutional trunk shared in shape by E and D's image path: residual blocks with 1c, 2c, 3c, 4c, 8c
    filters (each followed by 2x2 average pooling) and 16c (not pooled), then flatten."""

    def __init__(self, channels, normalization="none", activation="lrelu", use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [
            ResidualBlock(channels * m, resample="down" if i < ENCODER_POOLED_BLOCKS else None,
                          normalization=normalization, activation=activation, use_bias=use_bias,
                          name=f"block{i}")
            for i, m in enumerate(ENCODER_MULTIPLIERS)
        ]
        self.flatten = layers.Flatten()

    def call(self, x, training=False, return_first_conv=False):
        first_conv = None
        for i, block in enumerate(self.blocks):
            if i == 0 and return_first_conv:
                x, first_conv = block(x, training=training, return_first_conv=True)
            else:
                x = block(x, training=training)
        x = self.flatten(x)
        return (x, first_conv) if return_first_conv else x


class Encoder(keras.Model):
    def __init__(self, image_size=128, channels=3, latent_size=64, normalization="none", activation="lrelu",
                 use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.image_size = check_input_side(image_size)
        self.trunk = ImageTrunk(channels, normalization, activation, use_bias, name="trunk")
        self.hidden = layers.Dense(16 * channels, use_bias=use_bias, name="hidden")
        self.hidden_act = make_activation(activation)
        self.to_latent = layers.Dense(latent_size, dtype="float32", name="to_latent")
        self.build((None, image_size, image_size, 3))

    def build(self, input_shape):
        self.call(keras.KerasTensor(input_shape))
        self.built = True

    def call(self, x, training=False):
        return self.to_latent(self.hidden_act(self.hidden(self.trunk(x, training=training))))
