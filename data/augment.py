"""Rotation augmentation in core TF ops (replaces tfa.image.rotate, which does not import on TF >= 2.16).

`rotate` uses tf.raw_ops.ImageProjectiveTransformV3 with tfa's angles_to_projective_transforms matrix, so the
output equals tfa.image.rotate: rotation about the image centre ((W-1)/2, (H-1)/2), counterclockwise on screen
for positive angles (a +90 degree rotation of a square image equals np.rot90(image, k=1)).

Defaults: BILINEAR interpolation and NEAREST fill (the uncovered corners repeat the edge pixels), which is what
the authors' object augmentation does (Keras RandomRotation(fill_mode='nearest') with its default bilinear
interpolation) and what config.py's rotation_interpolation / rotation_fill default to. Rotate float32 images:
the op casts its interpolated result to the input dtype, so on uint8 images it TRUNCATES (a bilinear mix of
equal values that comes out as 99.99998 becomes 99), darkening rotated images on average; data/streams.py keeps
the training images in float32 for this reason.

Texture training samples (`random_rotated_crop`): a random angle in [0, max_degrees] degrees applied CLOCKWISE
(as the paper says; the authors' code drew an angle of 2*pi*U(0, 45) radians, i.e. any angle), then a random
crop drawn only from the largest axis-aligned square inscribed in the rotated image, so no blank corner pixel
can enter the crop.
The crop is computed directly by ImageProjectiveTransformV3 with the crop offset folded into the transform
(output_shape = crop): identical pixels to rotating the whole image and then cropping, at a fraction of the cost.

All randomness is stateless (tf.random.stateless_uniform with an explicit [2] seed): the same seed gives the
same angles and crops.
"""
import math

import tensorflow as tf

# Pixels kept between the crop and the edge of the inscribed square: guards against float rounding and against
# bilinear interpolation mixing in fill values at the very border.
CROP_SAFETY_MARGIN = 1.0

DEFAULT_INTERPOLATION = "BILINEAR"  # the authors' (Keras RandomRotation default); config.rotation_interpolation
DEFAULT_FILL = "NEAREST"            # the authors' fill_mode='nearest'; config.rotation_fill


def angles_to_projective_transforms(angles, image_height, image_width):
    """tfa.image.angles_to_projective_transforms: (N, 8) transforms rotating about the centre by `angles` (rad)."""
    angles = tf.reshape(tf.cast(angles, tf.float32), [-1])
    h = tf.cast(image_height, tf.float32)
    w = tf.cast(image_width, tf.float32)
    cos, sin = tf.math.cos(angles), tf.math.sin(angles)
    x_offset = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
    y_offset = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
    zeros = tf.zeros_like(angles)
    return tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zeros, zeros], axis=1)


def _transform(images, transforms, output_shape, interpolation, fill_mode, fill_value):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.cast(output_shape, tf.int32),
        fill_value=tf.cast(fill_value, tf.float32), interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper())


def rotate(images, angles_rad, interpolation=DEFAULT_INTERPOLATION, fill_mode=DEFAULT_FILL, fill_value=0.0):
    """Rotate an image (H, W, C) or a batch (N, H, W, C) by angles in radians (scalar or one per image).

    Same output as tfa.image.rotate(images, angles, interpolation, fill_mode, fill_value). Any dtype the op
    accepts (uint8, float32, ...); the result keeps the input's dtype and shape (uint8 results are truncated,
    see the module doc).
    """
    images = tf.convert_to_tensor(images)
    single = images.shape.rank == 3
    batch = images[None] if single else images
    shape = tf.shape(batch)
    transforms = angles_to_projective_transforms(angles_rad, shape[1], shape[2])
    out = _transform(batch, transforms, shape[1:3], interpolation, fill_mode, fill_value)
    return out[0] if single else out


def inscribed_half_side(angles_rad, image_height, image_width):
    """Half side (pixels, from the centre) of the largest axis-aligned square inside the image rotated by angle.

    Output pixel (x, y) reads input (cx, cy) + R(x - cx, y - cy): the square |x - cx|, |y - cy| <= a stays inside
    the input when a * (|cos| + |sin|) <= (min(H, W) - 1) / 2.
    """
    angles = tf.cast(angles_rad, tf.float32)
    side = tf.cast(tf.minimum(image_height, image_width), tf.float32)
    return (side - 1.0) / 2.0 / (tf.abs(tf.math.cos(angles)) + tf.abs(tf.math.sin(angles)))


def max_crop_for_angle(max_degrees, image_size):
    """Largest crop side guaranteed free of blank corners for any angle up to max_degrees (python float)."""
    worst = math.radians(min(abs(float(max_degrees)), 45.0))
    a = (image_size - 1) / 2.0 / (math.cos(worst) + math.sin(worst)) - CROP_SAFETY_MARGIN
    return int(math.floor(2 * a + 1))


def rotated_crops(images, angles_rad, offsets_x, offsets_y, crop_size, interpolation=DEFAULT_INTERPOLATION,
                  fill_mode=DEFAULT_FILL, fill_value=0.0):
    """Batch (N, H, W, C): crop [oy:oy+crop, ox:ox+crop] of each image rotated by its angle (as `rotate`)."""
    shape = tf.shape(images)
    t = angles_to_projective_transforms(angles_rad, shape[1], shape[2])
    ox = tf.reshape(tf.cast(offsets_x, tf.float32), [-1])
    oy = tf.reshape(tf.cast(offsets_y, tf.float32), [-1])
    # Output (x, y) of the crop is (x + ox, y + oy) of the full rotated image.
    a2 = t[:, 0] * ox + t[:, 1] * oy + t[:, 2]
    b2 = t[:, 3] * ox + t[:, 4] * oy + t[:, 5]
    t = tf.stack([t[:, 0], t[:, 1], a2, t[:, 3], t[:, 4], b2, t[:, 6], t[:, 7]], axis=1)
    return _transform(images, t, [crop_size, crop_size], interpolation, fill_mode, fill_value)


def _crop_offset_range(size, crop_size, half_side):
    """Integer offsets [lo, hi] along one axis of length `size` keeping the crop inside the inscribed square."""
    centre = (tf.cast(size, tf.float32) - 1.0) / 2.0
    a = half_side - CROP_SAFETY_MARGIN
    lo = tf.math.ceil(centre - a)
    hi = tf.math.floor(centre + a) - (crop_size - 1)
    # A crop larger than the inscribed square (not reachable with validated specs) is centred instead.
    centred = tf.math.floor((tf.cast(size, tf.float32) - crop_size) / 2.0)
    ok = hi >= lo
    return tf.where(ok, lo, centred), tf.where(ok, hi, centred)


def random_rotated_crop(image, max_degrees, crop_size, seed, interpolation=DEFAULT_INTERPOLATION,
                        fill_mode=DEFAULT_FILL, fill_value=0.0, clockwise=True):
    """Random rotation in [0, max_degrees] degrees (clockwise by default), then a random crop_size square crop
    from inside the rotated content (no blank corners). `image` is (H, W, C) or a batch (N, H, W, C), in which
    case every image gets its own angle and crop. `seed`: int [2] tensor/tuple for stateless random ops.
    """
    image = tf.convert_to_tensor(image)
    single = image.shape.rank == 3
    batch = image[None] if single else image
    shape = tf.shape(batch)
    n, h, w = shape[0], shape[1], shape[2]
    u = tf.random.stateless_uniform([n, 3], seed=seed, dtype=tf.float32)
    degrees = u[:, 0] * float(max_degrees)
    angles = degrees * (math.pi / 180.0) * (-1.0 if clockwise else 1.0)
    half = inscribed_half_side(angles, h, w)
    lo_x, hi_x = _crop_offset_range(w, crop_size, half)
    lo_y, hi_y = _crop_offset_range(h, crop_size, half)
    ox = tf.minimum(lo_x + tf.math.floor(u[:, 1] * (hi_x - lo_x + 1.0)), hi_x)
    oy = tf.minimum(lo_y + tf.math.floor(u[:, 2] * (hi_y - lo_y + 1.0)), hi_y)
    out = rotated_crops(batch, angles, ox, oy, crop_size, interpolation, fill_mode, fill_value)
    return out[0] if single else out


def random_rotation(images, max_degrees, seed, interpolation=DEFAULT_INTERPOLATION, fill_mode=DEFAULT_FILL,
                    fill_value=0.0):
    """Object augmentation: each image (N, H, W, C) rotated by a uniform angle in [-max_degrees, max_degrees]."""
    images = tf.convert_to_tensor(images)
    single = images.shape.rank == 3
    batch = images[None] if single else images
    n = tf.shape(batch)[0]
    degrees = tf.random.stateless_uniform([n], seed=seed, minval=-float(max_degrees), maxval=float(max_degrees))
    out = rotate(batch, degrees * (math.pi / 180.0), interpolation, fill_mode, fill_value)
    return out[0] if single else out
