"""Building blocks of the paper's Fig. 3: the residual block used by E, G and D, and its layer factories."""
import keras
from keras import layers

from models.options import ACTIVATIONS, NORMALIZATIONS, UPSAMPLINGS
from models.upsample_conv import upsample_conv

# Bilinear up-blocks with at most this many filters compute conv1(upsample(x)) in inference as one sub-pixel
# convolution of x (models/upsample_conv.py): the generator's last block (c filters), where its forward measured
# 1.5-2x faster (docs/PERFORMANCE.md); in wider blocks it was no faster in the scorer. Training keeps the direct
# form (with gradients it would save about 2% of an update).
FOLDED_UPSAMPLING_MAX_FILTERS = 4


def make_normalization(kind, name=None):
    """A normalization layer, or None for 'none'. 'instance' is GroupNormalization(groups=-1), the exact
    replacement of tensorflow-addons' InstanceNormalization (epsilon 1e-3, its default)."""
    if kind == "none":
        return None
    if kind == "batch":
        return layers.BatchNormalization(name=name)
    if kind == "layer":
        return layers.LayerNormalization(name=name)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=1e-3, name=name)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}")


def make_activation(kind, name=None):
    if kind == "lrelu":
        return layers.LeakyReLU(negative_slope=0.2, name=name)
    if kind == "relu":
        return layers.ReLU(name=name)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {kind!r}")


class ResidualBlock(layers.Layer):
    """skip = norm(conv1x1(n)); main = conv3x3 -> norm -> act -> conv3x3 -> norm -> act -> conv1x1;
    out = act(norm(main + skip)).

    resample: None, "up" (2x upsampling of the input first, generator) or "down" (2x2 average pooling of the
    output last, encoder and critic). use_bias applies to the skip conv and both 3x3 convs; the last 1x1 conv
    always has a bias, as in the authors' models.
    """

    def __init__(self, filters, resample=None, normalization="none", activation="lrelu",
                 upsampling="bilinear", use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.resample = resample
        if resample == "up":
            if upsampling == "bilinear":
                self.upsample = layers.UpSampling2D(2, interpolation="bilinear")
            elif upsampling == "transpose":
                self.upsample = None  # built in build(): it needs the input's channel count
            else:
                raise ValueError(f"upsampling must be one of {UPSAMPLINGS}, got {upsampling!r}")
        self.upsampling = upsampling
        self.skip_conv = layers.Conv2D(filters, 1, use_bias=use_bias, name="skip_conv")
        self.skip_norm = make_normalization(normalization, "skip_norm")
        self.conv1 = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, name="conv1")
        self.norm1 = make_normalization(normalization, "norm1")
        self.act1 = make_activation(activation)
        self.conv2 = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, name="conv2")
        self.norm2 = make_normalization(normalization, "norm2")
        self.act2 = make_activation(activation)
        self.conv3 = layers.Conv2D(filters, 1, use_bias=True, name="conv3")
        self.out_norm = make_normalization(normalization, "out_norm")
        self.out_act = make_activation(activation)
        self.pool = layers.AveragePooling2D(2) if resample == "down" else None

    def build(self, input_shape):
        if self.resample == "up" and self.upsampling == "transpose":
            # 1x1 transposed convolution with stride 2 (the authors' option); keeps the input's channels.
            self.upsample = layers.Conv2DTranspose(input_shape[-1], 1, strides=2, use_bias=False,
                                                   name="upsample")
        super().build(input_shape)

    def call(self, x, training=False, return_first_conv=False):
        if self._folded_upsampling(training):
            # The same numbers without the 2x image: skip_conv(up(x)) = up(skip_conv(x)) (a 1x1 convolution
            # and bilinear weights that sum to 1 commute), conv1(up(x)) = one sub-pixel convolution of x.
            skip = _norm(self.skip_norm, self.upsample(self.skip_conv(x)), training)
            first_conv = upsample_conv(x, keras.ops.cast(self.conv1.kernel, self.conv1.compute_dtype))
            if self.conv1.use_bias:
                first_conv = first_conv + keras.ops.cast(self.conv1.bias, self.conv1.compute_dtype)
        else:
            if self.resample == "up":
                x = self.upsample(x)
            skip = _norm(self.skip_norm, self.skip_conv(x), training)
            first_conv = self.conv1(x)
        main = self.act1(_norm(self.norm1, first_conv, training))
        main = self.act2(_norm(self.norm2, self.conv2(main), training))
        main = self.conv3(main)
        out = self.out_act(_norm(self.out_norm, main + skip, training))
        if self.pool is not None:
            out = self.pool(out)
        if return_first_conv:
            return out, first_conv
        return out

    def _folded_upsampling(self, training):
        """Inference through a built (not symbolic-building) thin bilinear up-block."""
        return (self.resample == "up" and self.upsampling == "bilinear" and not training and self.conv1.built
                and self.filters <= FOLDED_UPSAMPLING_MAX_FILTERS)


def _norm(layer, x, training):
    return x if layer is None else layer(x, training=training)
