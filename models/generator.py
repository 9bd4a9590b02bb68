"""G(z): latent code -> image in [-1, 1] (the paper's Fig. 3)."""
import keras
from keras import layers

from models.blocks import ResidualBlock
from models.geometry import GENERATOR_MULTIPLIERS, generator_plan


class Generator(keras.Model):
    def __init__(self, image_size=128, channels=3, latent_size=64, normalization="none", activation="lrelu",
                 upsampling="bilinear", use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.latent_size = latent_size
        start, upsamples = generator_plan(image_size)
        width = 16 * channels
        self.project = layers.Dense(start * start * width, use_bias=use_bias, name="project")
        self.reshape = layers.Reshape((start, start, width))
        self.blocks = [
            ResidualBlock(channels * m, resample="up" if up else None, normalization=normalization,
                          activation=activation, upsampling=upsampling, use_bias=use_bias, name=f"block{i}")
            for i, (m, up) in enumerate(zip(GENERATOR_MULTIPLIERS, upsamples))
        ]
        self.to_image = layers.Conv2D(3, 1, activation="tanh", dtype="float32", name="to_image")
        self.build((None, latent_size))

    def build(self, input_shape):
        self.call(keras.KerasTensor(input_shape))
        self.built = True

    def call(self, z, training=False):
        x = self.reshape(self.project(z))
        for block in self.blocks:
            x = block(x, training=training)
        return self.to_image(x)
