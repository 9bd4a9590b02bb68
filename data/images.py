"""Decoding PNG/JPEG/BMP files (gray, RGB, RGBA, palette; 8 or 16 bit) to uint8 RGB, and resizing.

Decisions:
- 16-bit samples (PIL modes I;16*, I) are scaled to 8 bit as round(v / 257), the exact inverse of the usual
  8 -> 16 bit expansion v * 257 (0 -> 0, 65535 -> 255). Pillow itself opens 16-bit RGB(A) PNGs as 8-bit RGB(A).
- Alpha is dropped (not composited); palette images are expanded through their palette; gray is repeated 3x.
- Resizing is the authors' (keras.utils.image_dataset_from_directory): tf.image.resize(method="bilinear",
  antialias=False) of the float32 image, NOT rounded: the model input is float32 on the 0..255 scale (then
  x / 127.5 - 1). Without antialiasing a downscaled pixel is the bilinear interpolation of the 4 source pixels
  around its centre (no low-pass filter: a 900 px MVTec image shrunk to 128 keeps more fine detail and some
  aliasing, as in their training). Every path does this: training, evaluation, predict.py, the held-out
  threshold images and the exported model's graph (where it is one ResizeBilinear op; the antialiased resize
  was a ScaleAndTranslate op, which TFLite cannot convert).
- Masks: nonzero = defect. They are resized like the images (bilinear, antialias=False) and thresholded at 0.5,
  giving float32 {0, 1}: a model pixel is a defect when the mask interpolated at that pixel's sampling point
  is at least 0.5, i.e. the label describes the same point of the original image that the model's input pixel
  was interpolated from (the antialiased filter would label the pixel's area instead, which the unfiltered
  image does not average over).
- uint8 versions of resized images (to_uint8) are for pictures only (previews, example plots, heatmaps).
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from data.files import display_path
from errors import DatasetError


def _one_line(text) -> str:
    return " ".join(display_path(text).split())


def _unreadable(path, error):
    if isinstance(error, FileNotFoundError):
        return DatasetError(f"image file {display_path(path)} does not exist")
    reason = _one_line(error) or type(error).__name__
    return DatasetError(f"cannot decode image {display_path(path)} (corrupt, truncated or unsupported: {reason}); "
                        "fix or remove the file")


def _open_loaded(path):
    path = os.fspath(path)
    try:
        img = Image.open(path)
        img.load()
        return img
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, EOFError, struct.error, ... on bad data
        raise _unreadable(path, e) from None


def image_size(path):
    """(width, height) of the image file at path, read from its header without decoding the pixels; its data is
    checked as far as that is possible without decoding (PNG: every chunk's CRC up to the end chunk, so a
    truncated or damaged PNG fails; JPEG and BMP: the header only). DatasetError naming the file, as
    read_image."""
    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            size = img.size
            img.verify()
        return size
    except Exception as e:  # noqa: BLE001  (as _open_loaded)
        raise _unreadable(path, e) from None


def check_category_files(files, workers=4):
    """Every image of a category (data.files.CategoryFiles: train/good, test, masks) readable as far as
    image_size checks, and every mask the size of its image: a run's bad file is found when it starts, not at
    its first monitoring step or after its last step. DatasetError naming the first bad file (in the order
    train, test, masks). Cost: the headers and, for PNG, one read of each file (no decoding). Returns the
    (width, height) of the train and test images, in that order."""
    masked = [item for item in files.test_items if item.mask_path is not None]
    paths = list(files.train_paths) + [item.path for item in files.test_items] + [i.mask_path for i in masked]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        sizes = dict(zip(paths, pool.map(image_size, paths)))
    for item in masked:
        _check_sizes(sizes[item.mask_path], sizes[item.path], item.mask_path, item.path)
    return [sizes[path] for path in paths[:len(paths) - len(masked)]]


def non_square_note(sizes, side):
    """One line for the user when some images (sizes: (width, height) of the train and test images) are not
    square: every image is resized to side x side, which stretches them. None when all are square."""
    odd = [(w, h) for w, h in sizes if w != h]
    if not odd:
        return None
    w, h = max(set(odd), key=odd.count)
    return (f"note: {len(odd)} of {len(sizes)} images are not square (most often {w}x{h} px); each is resized to "
            f"{side}x{side}, which changes its aspect ratio (crop or pad them beforehand to keep it)")


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
            raise DatasetError(f"cannot convert image {display_path(path)} (mode {mode}) to RGB: "
                               f"{_one_line(e)}") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DatasetError(f"image {display_path(path)} decodes to an unusable shape {arr.shape}")
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
    _check_sizes((mask.shape[1], mask.shape[0]), (image.shape[1], image.shape[0]), mask_path, image_path)


def _check_sizes(mask_size, image_size_, mask_path, image_path):
    """mask_size, image_size_: (width, height)."""
    if tuple(mask_size) != tuple(image_size_):
        raise DatasetError(f"mask {display_path(mask_path)} is {mask_size[0]}x{mask_size[1]} but its image "
                           f"{display_path(image_path)} is {image_size_[0]}x{image_size_[1]} (width x height): "
                           "masks must match their image")


def resize_image(image, size: int) -> np.ndarray:
    """uint8 (or float) H x W x C -> float32 size x size x C on the 0..255 scale: tf.image.resize(bilinear,
    antialias=False) of the float32 image, not rounded (the authors' resize). Bilinear weights are convex, so
    the values stay in [0, 255]."""
    import tensorflow as tf

    out = tf.image.resize(tf.cast(np.asarray(image), tf.float32), (size, size), method="bilinear", antialias=False)
    return np.asarray(out.numpy(), dtype=np.float32)


INTENSITY_MODES = ("none", "per_image")
TARGET_MEAN, TARGET_STD = 128.0, 40.0  # per_image: each image's intensities are mapped to this mean and std


def standardize_intensity(image) -> np.ndarray:
    """Image (uint8 or float, 0..255 scale) -> float32 image whose mean is TARGET_MEAN and standard deviation
    TARGET_STD (over all pixels and channels; a flat image becomes flat TARGET_MEAN), clipped to [0, 255] and
    not rounded. Removes differences of overall brightness and contrast between images (uneven lighting),
    keeping the pattern within an image. Equal channels stay equal (one mean and scale for all channels)."""
    x = np.asarray(image, dtype=np.float64)
    std = x.std()
    scale = TARGET_STD / std if std > 1e-3 else 0.0
    return np.clip((x - x.mean()) * scale + TARGET_MEAN, 0.0, 255.0).astype(np.float32)


def prepare_image(image, size: int, intensity: str = "none") -> np.ndarray:
    """What every path (training, test, predict) does to a decoded image: resize_image to size x size (float32,
    0..255 scale, unrounded), then the intensity mode ("none" or "per_image": standardize_intensity)."""
    if intensity not in INTENSITY_MODES:
        raise ValueError(f"intensity must be one of {INTENSITY_MODES}, got {intensity!r}")
    resized = resize_image(image, size)
    return standardize_intensity(resized) if intensity == "per_image" else resized


def to_uint8(images) -> np.ndarray:
    """0..255-scale floats -> uint8, rounded and clipped: for pictures of inputs only, never as model input."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float32)), 0, 255).astype(np.uint8)


def resize_mask(mask, size: int) -> np.ndarray:
    """bool/0-1 H x W -> float32 {0, 1} size x size: bilinear resize without antialiasing (as the images), then
    >= 0.5 (see the module doc)."""
    import tensorflow as tf

    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape[0] == size and mask.shape[1] == size:
        return (mask > 0).astype(np.float32)
    out = tf.image.resize(mask[:, :, None], (size, size), method="bilinear", antialias=False)[:, :, 0]
    return (out.numpy() >= 0.5).astype(np.float32)


def to_model_range(images):
    """0..255-scale images (uint8 or float; numpy or tf) -> float32 in [-1, 1] as x / 127.5 - 1 (a tf tensor)."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_model_range_numpy(images):
    """0..255-scale array (uint8 or float) -> float32 numpy array in [-1, 1], the same x / 127.5 - 1 as
    to_model_range."""
    return np.asarray(images).astype(np.float32) / 127.5 - 1.0


def from_model_range_numpy(images):
    """[-1, 1] floats -> uint8, rounded and clipped (for pictures of inputs and reconstructions)."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)
