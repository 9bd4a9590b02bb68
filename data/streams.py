"""tf.data training stream and the test stream of one category.

Training: every train/good image is decoded ONCE, resized (objects to 128, textures to 512; data/images.py:
bilinear without antialiasing, as the authors) and kept in memory as one float32 array (N, S, S, 3) on the
0..255 scale, unrounded. The stream shuffles indices into that array (seeded, reshuffled every epoch), repeats
forever, batches (drop_remainder), then augments each batch in graph ops on the float images (no py_function,
no cache) and scales to [-1, 1]:
  - objects: random rotation in [-max, +max] degrees where spec.rotate (bilinear interpolation, edge pixels
    repeated into the uncovered corners (NEAREST fill): the authors' Keras RandomRotation(fill_mode='nearest');
    both configurable), else the image as is;
  - textures: random rotation in [0, max] degrees clockwise and a random patch_size crop from the part of the
    rotated image with no blank corners (data/augment.py); without spec.rotate just a random crop.
Rotating floats loses nothing: the rotation op casts its result to the input dtype, and on uint8 it truncated
(rotated bottle images came out 0.33 grey levels darker on average than the unrotated test images).
Randomness is stateless, seeded from (seed, batch index): a seed gives the same batches every run.
Memory: the images are stored once, 4 bytes per value: 196 KB per 128x128 RGB object image (bottle's 209
images: 41 MB), 3 MB per 512x512 RGB texture image (280 images: 880 MB), four times the former uint8 storage.
Indices are shuffled rather than the images (the shuffle buffer holds int64s); the array is handed to TF through
DLPack without a copy; tf.data's default static graph rewrites are switched off because they copy captured
tensors; an all-gray training set is kept as one channel (714 magnetic tiles at 512x512: 749 MB instead of
2.2 GB). TensorFlow itself takes about 0.64 GB RSS after import.

Test: per test image in the stable order of data/files.py, a dict with
  "image"       float32 (patches_per_image, p, p, 3) in [-1, 1] (objects: 1 patch = the whole resized image),
                from the unrounded resized image: the model input
  "image_uint8" uint8 (S, S, 3) the resized image rounded, for pictures only
  "mask"        float32 (S, S) {0, 1}; zeros for good images and when the mask is missing
  "label" int (0 good, 1 anomalous), "defect_type" str, "path" str
`iter_test_samples` yields these dicts (decoding in background threads, each image once), `test_dataset` wraps
it in tf.data (from_generator), `iter_test_chunks` yields them stacked in chunks, and `test_arrays` stacks the
whole test set (memory: 4 * P * p * p * 3 bytes per image for "image", 3 MB per 512/64 texture image, 196 KB per
128 object image, plus the uint8 image and the mask; use iter_test_chunks for large texture test sets).
"""
import collections
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Optional

import numpy as np
import tensorflow as tf

from data.augment import (DEFAULT_FILL, DEFAULT_INTERPOLATION, max_crop_for_angle, random_rotated_crop,
                          random_rotation)
from data.categories import CategorySpec
from data.files import CategoryFiles, TestItem
from data.images import (check_mask_matches, prepare_image, read_image, read_mask, resize_mask, to_model_range,
                         to_model_range_numpy, to_uint8)
from data.patches import to_patches_numpy
from errors import ConfigError, DatasetError

log = logging.getLogger(__name__)

DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


def _aligned_empty(shape, dtype=np.float32, align=64) -> np.ndarray:
    """An uninitialised array whose data is `align`-byte aligned, so TF can use it without copying."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(nbytes + align, dtype=np.uint8)
    offset = (-buf.ctypes.data) % align
    return buf[offset:offset + nbytes].view(dtype).reshape(shape)


def _bounded_map(fn, items, workers):
    """Ordered map over items with at most 2 * workers results in flight (bounded memory)."""
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque()
        it = iter(items)
        for item in it:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class GrayAsRGB(np.ndarray):
    """Read-only (N, S, S, 3) view repeating a gray (N, S, S, 1) array; `.compact` is that array."""

    compact = None


def _is_gray(image: np.ndarray) -> bool:
    return bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())


def load_train_images(spec: CategorySpec, files: CategoryFiles, workers: int = DEFAULT_WORKERS,
                      verbose: bool = True) -> np.ndarray:
    """Decode every training image once, prepared as data/images.prepare_image does (resized to spec.image_size,
    the intensity mode): float32 (N, S, S, 3) on the 0..255 scale, unrounded.

    Memory (4 bytes per value, see the module doc): when every training image is gray (R == G == B, e.g.
    magnetic tiles, MVTec grid/screw/zipper; the resize and the intensity mode keep equal channels exactly
    equal) the pixels are stored once and the result is a read-only GrayAsRGB (ndarray subclass) view with
    shape (N, S, S, 3) over a (N, S, S, 1) array (a third of the memory); train_dataset then augments one
    channel and repeats it. It reads like any float32 array; np.array(x) gives a plain writable 3-channel copy.
    Otherwise a writable, 64-byte aligned (N, S, S, 3) array (shared with TF without a copy).
    """
    paths = list(files.train_paths)
    n, s = len(paths), spec.image_size
    gray = _aligned_empty((n, s, s, 1))
    rgb = None
    show = verbose and n >= 200
    for i, resized in enumerate(_bounded_map(lambda p: prepare_image(read_image(p), s, spec.intensity), paths, workers)):
        if rgb is None and not _is_gray(resized):
            rgb = _aligned_empty((n, s, s, 3))
            rgb[:i] = gray[:i]
            gray = None
        if rgb is None:
            gray[i] = resized[..., :1]
        else:
            rgb[i] = resized
        if show and ((i + 1) % 200 == 0 or i + 1 == n):
            print(f"decoded {i + 1}/{n} training images of {spec.name} ({s}x{s})", file=sys.stderr, flush=True)
    if rgb is not None:
        return rgb
    view = np.broadcast_to(gray, (n, s, s, 3)).view(GrayAsRGB)
    view.compact = gray
    return view


def _compact(images: np.ndarray) -> np.ndarray:
    """The (N, S, S, C) array to keep in TF: the 1-channel base of a broadcast gray view, else the array."""
    compact = getattr(images, "compact", None)
    if isinstance(compact, np.ndarray) and compact.shape == images.shape[:3] + (1,):
        return compact
    if images.strides[-1] == 0:
        return np.ascontiguousarray(images[..., :1])
    return images


def _shared_tensor(array: np.ndarray) -> tf.Tensor:
    """A tf.Tensor over the numpy array's memory (DLPack, no copy) when it is C-contiguous, writable and 64-byte
    aligned; otherwise an aligned copy is made first. The tensor keeps the array alive."""
    if not (array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % 64 == 0):
        copy = _aligned_empty(array.shape, array.dtype)
        copy[...] = array
        array = copy
    try:
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    except Exception:  # older numpy/TF without DLPack interop: a plain (copying) conversion
        return tf.convert_to_tensor(array)


def _check_texture_crop(spec: CategorySpec):
    if spec.type != "texture":
        return
    degrees = spec.max_rotation_degrees if spec.rotate else 0.0
    limit = max_crop_for_angle(degrees, spec.image_size)
    if spec.patch_size > limit:
        raise ConfigError(f"--patch_size {spec.patch_size} is too large for rotated crops of a "
                          f"{spec.image_size}x{spec.image_size} image (at most {limit} for rotations up to "
                          f"{degrees:g} degrees): lower --patch_size or raise --image_size")


def train_dataset(spec: CategorySpec, train_images, batch_size: int, seed: int,
                  interpolation: str = DEFAULT_INTERPOLATION, fill_mode: str = DEFAULT_FILL) -> tf.data.Dataset:
    """Infinite, seeded stream of float32 batches (batch_size, p, p, 3) in [-1, 1] (see module doc).

    train_images: float32 (N, S, S, 3) on the 0..255 scale, as load_train_images gives (uint8 is accepted and
    converted to float32 once, so the rotation still runs on floats).
    interpolation / fill_mode: of the object rotation; the defaults BILINEAR / NEAREST are the authors' (and
    config.py's). Texture crops use the same interpolation and never read outside the image, so their fill mode
    does not matter.
    """
    images = train_images
    if not isinstance(images, tf.Tensor):
        images = np.asanyarray(images)
    if images.dtype not in (np.float32, np.uint8) or len(images.shape) != 4 or images.shape[-1] != 3:
        raise ValueError(f"train_dataset expects float32 (N, S, S, 3) images, got {images.dtype} {images.shape}")
    n, s = int(images.shape[0]), int(images.shape[1])
    if n == 0:
        raise DatasetError(f"no training images for category {spec.name}")
    if s != spec.image_size or int(images.shape[2]) != spec.image_size:
        raise ValueError(f"training images are {images.shape[1]}x{images.shape[2]}, spec.image_size is "
                         f"{spec.image_size}")
    _check_texture_crop(spec)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {batch_size}")
    if isinstance(images, tf.Tensor):
        stored = tf.cast(images, tf.float32)
    else:
        compact = _compact(images)
        stored = _shared_tensor(compact if compact.dtype == np.float32 else compact.astype(np.float32))
    channels = int(stored.shape[-1])
    p = spec.patch_size
    base_seed = tf.constant(int(seed), tf.int64)
    max_degrees = float(spec.max_rotation_degrees)

    def augment(indices, step):
        batch = tf.gather(stored, indices)
        rng = tf.stack([base_seed, step])
        if spec.type == "texture":
            out = random_rotated_crop(batch, max_degrees if spec.rotate else 0.0, p, rng,
                                      interpolation=interpolation, fill_mode="REFLECT")
        elif spec.rotate and max_degrees > 0:
            out = random_rotation(batch, max_degrees, rng, interpolation=interpolation, fill_mode=fill_mode)
        else:
            out = batch
        x = to_model_range(out)
        if channels == 1:
            x = tf.repeat(x, 3, axis=-1)
        return tf.ensure_shape(x, [batch_size, p, p, 3])

    order = (tf.data.Dataset.range(n)
             .shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
             .repeat()
             .batch(batch_size, drop_remainder=True))
    ds = tf.data.Dataset.zip((order, tf.data.Dataset.counter()))
    ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    # The default static rewrites serialize the dataset graph and with it COPY the captured image tensor
    # (+2.2 GB for 714 RGB 512x512 float32 images); the pipeline is already explicitly parallel and prefetched.
    options.experimental_optimization.apply_default_optimizations = False
    options.deterministic = True
    return ds.with_options(options)


def _test_sample(spec: CategorySpec, item: TestItem) -> Dict:
    s, p = spec.image_size, spec.patch_size
    image = read_image(item.path)
    if item.mask_path is not None:
        raw_mask = read_mask(item.mask_path)
        check_mask_matches(raw_mask, image, item.mask_path, item.path)
        mask = resize_mask(raw_mask, s)
    else:
        mask = np.zeros((s, s), np.float32)
    resized = prepare_image(image, s, spec.intensity)  # float32, unrounded: the model input
    patches = to_model_range_numpy(to_patches_numpy(resized, p))
    return {"image": patches, "image_uint8": to_uint8(resized), "mask": mask, "label": int(item.label),
            "defect_type": item.defect_type, "path": item.path}


def iter_test_samples(spec: CategorySpec, files: CategoryFiles, workers: int = DEFAULT_WORKERS) -> Iterator[Dict]:
    """One dict per test image (see module doc), in the stable order of files.test_items."""
    return _bounded_map(lambda item: _test_sample(spec, item), list(files.test_items), workers)


def test_output_signature(spec: CategorySpec) -> Dict:
    s, p, n = spec.image_size, spec.patch_size, spec.patches_per_image
    return {"image": tf.TensorSpec((n, p, p, 3), tf.float32),
            "image_uint8": tf.TensorSpec((s, s, 3), tf.uint8),
            "mask": tf.TensorSpec((s, s), tf.float32),
            "label": tf.TensorSpec((), tf.int32),
            "defect_type": tf.TensorSpec((), tf.string),
            "path": tf.TensorSpec((), tf.string)}


def test_dataset(spec: CategorySpec, files: CategoryFiles, workers: int = DEFAULT_WORKERS) -> tf.data.Dataset:
    """tf.data view of iter_test_samples (strings arrive as tf.string). One element per test image, so
    .batch(k) gives k images' patches at once; element["image"] is one image's patch batch."""
    return tf.data.Dataset.from_generator(lambda: iter_test_samples(spec, files, workers),
                                          output_signature=test_output_signature(spec)).prefetch(2)


def _stack(samples: List[Dict]) -> Dict[str, np.ndarray]:
    return {"image": np.stack([x["image"] for x in samples]),
            "image_uint8": np.stack([x["image_uint8"] for x in samples]),
            "mask": np.stack([x["mask"] for x in samples]),
            "label": np.asarray([x["label"] for x in samples], np.int32),
            "defect_type": np.asarray([x["defect_type"] for x in samples], dtype=object),
            "path": np.asarray([x["path"] for x in samples], dtype=object)}


def iter_test_chunks(spec: CategorySpec, files: CategoryFiles, chunk_size: int = 32,
                     workers: int = DEFAULT_WORKERS) -> Iterator[Dict[str, np.ndarray]]:
    """The test set in stable order as dicts of stacked arrays (same keys as test_arrays), <= chunk_size each."""
    chunk: List[Dict] = []
    for sample in iter_test_samples(spec, files, workers):
        chunk.append(sample)
        if len(chunk) == chunk_size:
            yield _stack(chunk)
            chunk = []
    if chunk:
        yield _stack(chunk)


def test_arrays(spec: CategorySpec, files: CategoryFiles, workers: int = DEFAULT_WORKERS,
                limit: Optional[int] = None) -> Dict[str, np.ndarray]:
    """The whole test set stacked: "image" (N, P, p, p, 3) float32, "image_uint8" (N, S, S, 3) uint8,
    "mask" (N, S, S) float32, "label" (N,) int32, "defect_type" and "path" (N,) object arrays of str.
    `limit` keeps only the first `limit` items. See the module doc for the memory this takes."""
    items = list(files.test_items)[:limit] if limit is not None else list(files.test_items)
    sub = CategoryFiles(root=files.root, train_paths=files.train_paths, test_items=items,
                        has_masks=files.has_masks, warnings=files.warnings)
    samples = list(iter_test_samples(spec, sub, workers))
    if not samples:
        s, p, n = spec.image_size, spec.patch_size, spec.patches_per_image
        return {"image": np.zeros((0, n, p, p, 3), np.float32), "image_uint8": np.zeros((0, s, s, 3), np.uint8),
                "mask": np.zeros((0, s, s), np.float32), "label": np.zeros((0,), np.int32),
                "defect_type": np.zeros((0,), object), "path": np.zeros((0,), object)}
    return _stack(samples)


# Not pytest tests, although their names start with "test_" (test modules import them).
for _fn in (test_dataset, test_arrays, test_output_signature):
    _fn.__test__ = False
