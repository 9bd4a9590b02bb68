"""conv3x3(bilinear_2x(x)) without forming the 2x image first: a sub-pixel convolution on x.

The generator's residual blocks upsample x 2x (bilinear, half-pixel centres, as keras UpSampling2D) and apply a
3x3 'same' convolution. Both are linear, so each of the four output phases (row parity p, column parity q) is a
3x3 convolution of x itself with a kernel folded from the conv kernel and the interpolation weights:

    out[2m+p, 2n+q] = sum_{a,b in -1..1} K_pq[a, b] . x[m+a, n+b],   K_pq = sum_{u,v} A[p,u,a] A[q,v,b] w[u, v]

One convolution of x with the four K_pq stacked as output channels, then depth_to_space, gives all phases.
Edges: bilinear resizing clamps at the border and the convolution zero-pads the 2x image; neither is a padding
of x. The folded form on x without padding gives exactly the inner output pixels (all but a 2-pixel ring); the
ring is computed the direct way on 2-pixel strips of x: a strip's resize equals the full resize on its two outer
output rows (or columns), which is all the ring needs.
Equal to the direct form up to float rounding (tests/models/test_upsample_conv.py).
"""
import numpy as np
import tensorflow as tf


def _interpolation_taps():
    """A[p, u + 1, a + 1]: weight of x[m + a] in the 2x image's pixel 2m + p + u (u in -1..1)."""
    taps = np.zeros((2, 3, 3), np.float32)
    for p in range(2):
        for u in (-1, 0, 1):
            m, parity = divmod(p + u, 2)  # 2x pixel 2m + parity, source coordinate m - 0.25 or m + 0.25
            weights = {m - 1: 0.25, m: 0.75} if parity == 0 else {m: 0.75, m + 1: 0.25}
            for a, weight in weights.items():
                taps[p, u + 1, a + 1] += weight
    return taps


TAPS = _interpolation_taps()


def folded_kernel(kernel):
    """(3, 3, in, out) 3x3 kernel -> (3, 3, in, 4 * out) kernel of the four phases, in depth_to_space order
    (channel (2p + q) * out + o)."""
    taps = tf.constant(TAPS, kernel.dtype)
    folded = tf.einsum("pua,qvb,uvio->abipqo", taps, taps, kernel)
    shape = tf.shape(kernel)
    return tf.reshape(folded, [3, 3, shape[2], 4 * shape[3]])


def direct(x, kernel):
    """The definition: 3x3 'same' convolution of the 2x bilinear upsampling of x (NHWC)."""
    size = 2 * tf.shape(x)[1:3]
    up = tf.cast(tf.image.resize(x, size, "bilinear"), x.dtype)
    return tf.nn.conv2d(up, kernel, 1, "SAME")


def upsample_conv(x, kernel):
    """conv2d(bilinear_2x(x), kernel, 'SAME') of x (N, H, W, C) with static H, W; kernel (3, 3, C, out)."""
    if x.shape[1] < 3 or x.shape[2] < 3:  # all ring
        return direct(x, kernel)
    # the folded convolution without padding gives exactly the output rows and columns 2 .. 2H-3 (2W-3)
    inner = tf.nn.depth_to_space(tf.nn.conv2d(x, folded_kernel(kernel), 1, "VALID"), 2)
    n = tf.shape(x)[0]
    rows = direct(tf.concat([x[:, :2], x[:, -2:]], 0), kernel)       # top and bottom strips in one batch
    top, bottom = rows[:n, :2], rows[n:, -2:]
    # left and right strips as rows of the transposed image with the transposed kernel (the CPU kernels are
    # slow on 2-pixel-wide images)
    columns = tf.transpose(tf.concat([x[:, :, :2], x[:, :, -2:]], 0), [0, 2, 1, 3])
    columns = tf.transpose(direct(columns, tf.transpose(kernel, [1, 0, 2, 3]))[:, :, 2:-2], [0, 2, 1, 3])
    left, right = columns[:n, :, :2], columns[n:, :, -2:]
    return tf.concat([top, tf.concat([left, inner, right], 2), bottom], 1)
