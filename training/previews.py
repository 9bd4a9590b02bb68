"""Preview grids as PNG (previews/) and TensorBoard images: inputs, reconstructions, error maps, samples."""
import os

import numpy as np
from matplotlib import colormaps
from PIL import Image

from data.images import from_model_range_numpy

_INFERNO = colormaps["inferno"]


def colorize(maps, vmax=None):
    """Non-negative maps (N, H, W) -> uint8 RGB with the inferno colormap, one shared scale (vmax)."""
    maps = np.asarray(maps, np.float32)
    vmax = float(vmax if vmax is not None else max(np.percentile(maps, 99.5), 1e-6))
    return (_INFERNO(np.clip(maps / vmax, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def grid(rows, pad=2):
    """rows: list of lists of uint8 HxWx3 images of one size -> one uint8 image."""
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            canvas[top:top + h, left:left + w] = image
    return canvas


def reconstruction_grid(inputs, reconstructions, error_maps):
    """Three rows: inputs, reconstructions, error maps (columns = samples)."""
    return grid([list(from_model_range_numpy(inputs)), list(from_model_range_numpy(reconstructions)), list(colorize(error_maps))])


def save_png(image, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path)
    return path
