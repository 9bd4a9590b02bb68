"""Numpy reference operations the model tests compare TensorFlow's against."""
import numpy as np


def conv3x3_same(x, kernel, bias=None):
    """Plain numpy 'same' 3x3 convolution (cross-correlation, as Keras): x (N, H, W, Ci), kernel (3, 3, Ci, Co)."""
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("nhwc,co->nhwo", padded[:, dy:dy + h, dx:dx + w], kernel[dy, dx].astype(np.float64))
    return out if bias is None else out + bias
