"""The non-overlapping patch grid of a texture image, and stitching patch-level maps back.

Patch order is row-major: patch k covers rows (k // g) * p ... and columns (k % g) * p ..., g = image_size // p.
Both functions accept a single item or a batch; channels may be absent for stitching (anomaly maps).
"""
import numpy as np
import tensorflow as tf


def to_patches(image, patch_size: int):
    """(H, W, C) -> (N, p, p, C); a batch (B, H, W, C) -> (B, N, p, p, C). H and W must be multiples of p.

    Pure reshapes/transposes (tf ops): works inside tf.function, any dtype.
    """
    image = tf.convert_to_tensor(image)
    single = image.shape.rank == 3
    batch = image[None] if single else image
    p = int(patch_size)
    shape = tf.shape(batch)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    tf.debugging.assert_equal(h % p, 0, message="image height is not a multiple of the patch size")
    tf.debugging.assert_equal(w % p, 0, message="image width is not a multiple of the patch size")
    gh, gw = h // p, w // p
    x = tf.reshape(batch, [b, gh, p, gw, p, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    x = tf.reshape(x, [b, gh * gw, p, p, c])
    if batch.shape[-1] is not None:
        x = tf.ensure_shape(x, [None, None, p, p, batch.shape[-1]])
    return x[0] if single else x


def stitch_patches(patches, image_size: int):
    """Inverse of to_patches for square images: (N, p, p[, C]) -> (S, S[, C]); a batch (B, N, p, p[, C]) ->
    (B, S, S[, C]). numpy in -> numpy out, tf in -> tf out. The grid side is image_size // p.
    """
    is_numpy = not tf.is_tensor(patches)
    x = tf.convert_to_tensor(patches)
    rank = x.shape.rank
    if rank not in (3, 4, 5):
        raise ValueError(f"stitch_patches expects (N, p, p[, C]) or (B, N, p, p, C), got rank {rank}")
    # Rank 3: (N, p, p) single map; rank 4: (N, p, p, C) single image; rank 5: batch with channels.
    single = rank in (3, 4)
    no_channels = rank == 3
    if no_channels:
        x = x[..., None]
    if single:
        x = x[None]
    shape = tf.shape(x)
    b, p, c = shape[0], shape[2], shape[4]
    g = int(image_size) // x.shape[2] if x.shape[2] is not None else int(image_size) // p
    x = tf.reshape(x, [b, g, g, p, p, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    x = tf.reshape(x, [b, g * p, g * p, c])
    if no_channels:
        x = x[..., 0]
    if single:
        x = x[0]
    return x.numpy() if is_numpy else x


def to_patches_numpy(image: np.ndarray, patch_size: int) -> np.ndarray:
    """numpy twin of to_patches for a single (H, W, C) image."""
    h, w, c = image.shape
    p = patch_size
    x = image.reshape(h // p, p, w // p, p, c).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(x.reshape(-1, p, p, c))
