"""Preview pictures as PNG (previews/) and TensorBoard images: inputs, reconstructions, error maps, samples.

Each picture is a labelled matplotlib figure (title, row labels, column titles, a colour bar for the error maps)
rendered to a uint8 RGB array: the same array is written as previews/<name>_<step>.png and logged to TensorBoard.
The *_figure functions return the Figure itself (tests inspect its titles, labels and colour bar).
"""
import os

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

from data.images import from_model_range_numpy

_INFERNO = colormaps["inferno"]
ROW_LABELS = ("input", "reconstruction\nG(E(x))", "error map\n|x - G(E(x))|")
ERROR_LABEL = "per-pixel L1 error\n(sum over RGB)"
DPI = 100


def colorize(maps, vmax=None):
    """Non-negative maps (N, H, W) -> uint8 RGB with the inferno colormap, one shared scale (vmax)."""
    maps = np.asarray(maps, np.float32)
    vmax = float(vmax if vmax is not None else max(np.percentile(maps, 99.5), 1e-6))
    return (_INFERNO(np.clip(maps / vmax, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def shared_vmax(maps):
    """The top of the shared colour scale of a set of error maps: their 99.5th percentile (at least 1e-6)."""
    return float(max(np.percentile(np.asarray(maps, np.float32), 99.5), 1e-6))


def grid(rows, pad=2):
    """rows: list of lists of uint8 HxWx3 images of one size -> one uint8 image (no labels)."""
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            canvas[top:top + h, left:left + w] = image
    return canvas


def _tile_inches(size):
    """Tiles at the images' own resolution, between 96 and 256 px (labels stay legible, files stay small)."""
    return min(max(int(size), 96), 256) / DPI


def _image_grid_figure(rows, row_labels, column_titles, title, colorbar_row=None, vmax=1.0):
    """A labelled grid: rows of pictures (uint8 RGB images or 2-D maps drawn with inferno on [0, vmax]); fixed
    margins in inches so every tile has the same size; a colour bar beside colorbar_row."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    size = rows[0][0].shape[0]
    tile, gap = _tile_inches(size), 0.06
    left, right, top, bottom = 1.0, (1.05 if colorbar_row is not None else 0.15), 0.55, 0.12
    width = left + n_cols * tile + (n_cols - 1) * gap + right
    height = top + n_rows * tile + (n_rows - 1) * gap + bottom
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    norm = Normalize(0.0, vmax)
    for i, row in enumerate(rows):
        y = height - top - (i + 1) * tile - i * gap
        for j, picture in enumerate(row):
            x = left + j * (tile + gap)
            axes = figure.add_axes((x / width, y / height, tile / width, tile / height))
            if picture.ndim == 2:
                axes.imshow(picture, cmap=_INFERNO, norm=norm, interpolation="nearest")
            else:
                axes.imshow(picture, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if i == 0:
                axes.set_title(column_titles[j], fontsize=8)
            if j == 0:
                axes.set_ylabel(row_labels[i], fontsize=8)
        if i == colorbar_row:
            x = left + n_cols * tile + (n_cols - 1) * gap + 0.1
            bar_axes = figure.add_axes((x / width, y / height, 0.12 / width, tile / height))
            bar = figure.colorbar(ScalarMappable(norm=norm, cmap=_INFERNO), cax=bar_axes)
            bar.set_label(ERROR_LABEL, fontsize=7)
            bar.ax.tick_params(labelsize=7)
    figure.suptitle(title, fontsize=9, x=0.5, y=1.0 - 0.08 / height, va="top")
    return figure


def reconstruction_figure(inputs, reconstructions, error_maps, title="", column_titles=None):
    """Three labelled rows (input, reconstruction, error map; columns = samples) with the error maps on one
    shared colour scale (0 to their 99.5th percentile) and its colour bar. inputs and reconstructions: float in
    [-1, 1], (N, S, S, 3); error_maps: (N, S, S)."""
    n = len(inputs)
    column_titles = list(column_titles) if column_titles is not None else [f"sample {i + 1}" for i in range(n)]
    maps = np.asarray(error_maps, np.float32)
    rows = [list(from_model_range_numpy(inputs)), list(from_model_range_numpy(reconstructions)), list(maps)]
    return _image_grid_figure(rows, ROW_LABELS, column_titles, title or "inputs, reconstructions, error maps",
                              colorbar_row=2, vmax=shared_vmax(maps))


def samples_figure(samples, title=""):
    """One labelled row of generated images G(z) (float in [-1, 1], (N, S, S, 3))."""
    rows = [list(from_model_range_numpy(samples))]
    return _image_grid_figure(rows, ("generated\nG(z)",), [f"z {i + 1}" for i in range(len(samples))],
                              title or "samples G(z), z ~ N(0, I)")


def to_array(figure):
    """A Figure rendered to uint8 RGB (H, W, 3)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def reconstruction_grid(inputs, reconstructions, error_maps, title="", column_titles=None):
    """reconstruction_figure rendered to uint8 RGB (for previews/*.png and TensorBoard)."""
    return to_array(reconstruction_figure(inputs, reconstructions, error_maps, title, column_titles))


def samples_grid(samples, title=""):
    """samples_figure rendered to uint8 RGB."""
    return to_array(samples_figure(samples, title))


def save_png(image, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path)
    return path
