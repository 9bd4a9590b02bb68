"""Decoding PNG/JPEG/BMP files (gray, RGB, RGBA, palette; 8 or 16 bit) to uint8 RGB, and resizing.

Decisions:
- 16-bit samples (PIL modes I;16*, I) are scaled to 8 bit as round(v / 257), the exact inverse of the usual
  8 -> 16 bit expansion v * 257 (0 -> 0, 65535 -> 255). Pillow itself opens 16-bit RGB(A) PNGs as 8-bit RGB(A).
- Alpha is dropped (not composited); palette images are expanded through their palette; gray is repeated 3x.
- Resizing uses tf.image.resize(method="bilinear", antialias=True) on float32 then rounds and clips to uint8;
  the exported model does the same resize in-graph, so this must not change.
- Masks: nonzero = defect. They are resized with the same antialiased bilinear filter as the images and then
  thresholded at 0.5 (a model pixel is a defect when at least half of its area is), giving float32 {0, 1}.
"""
import os

import numpy as np
from PIL import Image

from errors import DatasetError


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _open_loaded(path):
    path = os.fspath(path)
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise DatasetError(f"image file {path} does not exist") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, EOFError, struct.error, ... on bad data
        reason = _one_line(e) or type(e).__name__
        raise DatasetError(f"cannot decode image {path} (corrupt, truncated or unsupported: {reason}); "
                           "fix or remove the file") from None


def _sixteen_to_eight(arr: np.ndarray) -> np.ndarray:
    arr = np.clip(arr.astype(np.int64), 0, 65535)
    return ((arr + 128) // 257).astype(np.uint8)


def _to_rgb_array(img: Image.Image, path: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = _sixteen_to_eight(np.asarray(img))
    elif mode == "F":
        arr = np.clip(np.rint(np.asarray(img, dtype=np.float32)), 0, 255).astype(np.uint8)
    elif mode in ("1", "L"):
        arr = np.asarray(img.convert("L"))
    elif mode in ("LA", "La"):
        arr = np.asarray(img)[..., 0]
    elif mode == "RGB":
        arr = np.asarray(img)
    elif mode in ("RGBA", "RGBa", "RGBX"):
        arr = np.asarray(img)[..., :3]
    else:  # P, PA, CMYK, YCbCr, LAB, HSV, ...
        try:
            arr = np.asarray(img.convert("RGB"))
        except Exception as e:
            raise DatasetError(f"cannot convert image {path} (mode {mode}) to RGB: {_one_line(e)}") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DatasetError(f"image {path} decodes to an unusable shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def read_image(path) -> np.ndarray:
    """The image at `path` as uint8 H x W x 3. DatasetError naming the file if it cannot be decoded."""
    path = os.fspath(path)
    img = _open_loaded(path)
    try:
        return _to_rgb_array(img, path)
    finally:
        img.close()


def read_mask(path) -> np.ndarray:
    """The mask at `path` as bool H x W: any nonzero (non-alpha) channel is a defect pixel."""
    path = os.fspath(path)
    img = _open_loaded(path)
    try:
        mode = img.mode
        if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
            arr = np.asarray(img.convert("RGB"))
        elif mode in ("LA", "La"):
            arr = np.asarray(img)[..., 0]
        elif mode in ("RGBA", "RGBa", "RGBX"):
            arr = np.asarray(img)[..., :3]
        else:  # 1, L, I, I;16*, F, RGB
            arr = np.asarray(img)
    finally:
        img.close()
    if arr.ndim == 3:
        arr = (arr != 0).any(axis=2)
    return np.asarray(arr != 0, dtype=bool)


def check_mask_matches(mask: np.ndarray, image: np.ndarray, mask_path, image_path) -> None:
    """DatasetError naming both files if the mask's H x W differs from the image's."""
    if tuple(mask.shape[:2]) != tuple(image.shape[:2]):
        raise DatasetError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
                           f"{image.shape[1]}x{image.shape[0]} (width x height): masks must match their image")


def resize_uint8(image, size: int) -> np.ndarray:
    """uint8 H x W x 3 -> uint8 size x size x 3 (bilinear, antialias=True, rounded and clipped)."""
    import tensorflow as tf

    out = tf.image.resize(tf.cast(np.asarray(image), tf.float32), (size, size), method="bilinear", antialias=True)
    return np.clip(np.rint(out.numpy()), 0, 255).astype(np.uint8)


INTENSITY_MODES = ("none", "per_image")
TARGET_MEAN, TARGET_STD = 128.0, 40.0  # per_image: each image's intensities are mapped to this mean and std


def standardize_intensity(image_uint8) -> np.ndarray:
    """uint8 image -> uint8 image whose mean is TARGET_MEAN and standard deviation TARGET_STD (over all pixels
    and channels; a flat image becomes flat TARGET_MEAN), rounded and clipped to [0, 255]. Removes differences
    of overall brightness and contrast between images (uneven lighting), keeping the pattern within an image."""
    x = np.asarray(image_uint8, dtype=np.float64)
    std = x.std()
    scale = TARGET_STD / std if std > 1e-3 else 0.0
    return np.clip(np.rint((x - x.mean()) * scale + TARGET_MEAN), 0, 255).astype(np.uint8)


def prepare_image(image, size: int, intensity: str = "none") -> np.ndarray:
    """What every path (training, test, predict) does to a decoded image: resize_uint8 to size x size, then
    the intensity mode ("none" or "per_image": standardize_intensity)."""
    if intensity not in INTENSITY_MODES:
        raise ValueError(f"intensity must be one of {INTENSITY_MODES}, got {intensity!r}")
    resized = resize_uint8(image, size)
    return standardize_intensity(resized) if intensity == "per_image" else resized


def resize_mask(mask, size: int) -> np.ndarray:
    """bool/0-1 H x W -> float32 {0, 1} size x size: antialiased bilinear resize, then >= 0.5."""
    import tensorflow as tf

    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape[0] == size and mask.shape[1] == size:
        return (mask > 0).astype(np.float32)
    out = tf.image.resize(mask[:, :, None], (size, size), method="bilinear", antialias=True)[:, :, 0]
    return (out.numpy() >= 0.5).astype(np.float32)


def to_model_range(images):
    """uint8 (numpy or tf) -> float32 in [-1, 1] as x / 127.5 - 1 (a tf tensor)."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_model_range_numpy(images):
    """uint8 array -> float32 numpy array in [-1, 1], the same x / 127.5 - 1 as to_model_range."""
    return np.asarray(images).astype(np.float32) / 127.5 - 1.0


def from_model_range_numpy(images):
    """[-1, 1] floats -> uint8, rounded and clipped (for pictures of inputs and reconstructions)."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)
