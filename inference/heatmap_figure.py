"""predict.py's heatmaps (heatmaps/<input>.heatmap.png): a labelled figure of one scored image.

Two panels side by side, both in the input's own pixel coordinates: the input, and the anomaly map (per-pixel L1
error |x - G(E(x))| summed over the colour channels) resized to the input's size and blended over it, with a
colour bar of the error scale. The title gives the file, the score and the verdict at the run's threshold.
"""
import numpy as np
import tensorflow as tf
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

VERDICT_COLOURS = {"anomalous": "tab:red", "good": "tab:green"}
DPI = 100


def resize_map(anomaly_map, height, width):
    """The anomaly map (S x S) resized to height x width (bilinear, antialiased), float32."""
    return tf.image.resize(np.asarray(anomaly_map, np.float32)[:, :, None], (height, width), method="bilinear",
                           antialias=True).numpy()[:, :, 0]


def _scale(resized, vmax):
    return float(vmax) if vmax else float(max(resized.max(), 1e-12))


def _blend(image_uint8, resized, scale):
    level = np.clip(resized / scale, 0.0, 1.0)
    colour = colormaps["inferno"](level)[..., :3] * 255.0
    alpha = (0.2 + 0.5 * level)[..., None]
    blended = (1.0 - alpha) * image_uint8.astype(np.float32) + alpha * colour
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def overlay_heatmap(image_uint8, anomaly_map, vmax=None):
    """The anomaly map (S x S, per-pixel L1 error) resized to the image's H x W (bilinear, antialiased),
    scaled by vmax (default: its own maximum), coloured with inferno and blended over the image with an
    opacity growing with the error (0.2 at zero error to 0.7 at vmax): uint8 H x W x 3."""
    h, w = image_uint8.shape[:2]
    resized = resize_map(anomaly_map, h, w)
    return _blend(image_uint8, resized, _scale(resized, vmax))


def heatmap_figure(image_uint8, anomaly_map, score, threshold, verdict, vmax=None, name="", score_text=""):
    """The Figure of one scored image: input | overlay_heatmap with its colour bar; the title names the file
    (name), the score (score_text says which, e.g. "lambda 0.1") and the verdict at the threshold."""
    h, w = image_uint8.shape[:2]
    resized = resize_map(anomaly_map, h, w)
    scale = _scale(resized, vmax)
    panel = min(max(w, 256), 512) / DPI  # panel width in inches: the image's own width within 256-512 px
    figure = Figure(figsize=(2 * panel + 1.3, panel * h / w + 1.0), dpi=DPI, layout="constrained")
    left, right = figure.subplots(1, 2)
    left.imshow(image_uint8, interpolation="nearest")
    left.set_title("input", fontsize=9)
    right.imshow(_blend(image_uint8, resized, scale), interpolation="nearest")
    right.set_title("anomaly map over the input", fontsize=9)
    for axes in (left, right):
        axes.set_xlabel("x (pixels)", fontsize=8)
        axes.set_ylabel("y (pixels)", fontsize=8)
        axes.tick_params(labelsize=7)
    bar = figure.colorbar(ScalarMappable(norm=Normalize(0.0, scale), cmap="inferno"), ax=right, shrink=0.9)
    bar.set_label("per-pixel L1 error |x - G(E(x))|\n(0 to " + ("--heatmap_vmax)" if vmax else
                  "this image's maximum)"), fontsize=8)
    bar.ax.tick_params(labelsize=7)
    comparison = ">" if verdict == "anomalous" else "<="
    verdict_line = (f"{verdict}: score {score:.6g} {comparison} threshold {threshold:.6g}"
                    + (f" ({score_text})" if score_text else ""))
    if len(name) > 80:
        name = "..." + name[-77:]
    figure.suptitle((f"{name}\n" if name else "") + verdict_line, fontsize=10,
                    color=VERDICT_COLOURS.get(verdict, "black"))
    return figure


def save_heatmap(path, image_uint8, anomaly_map, score, threshold, verdict, vmax=None, name="", score_text=""):
    """heatmap_figure written to path as an RGB PNG; returns path."""
    canvas = FigureCanvasAgg(heatmap_figure(image_uint8, anomaly_map, score, threshold, verdict, vmax, name,
                                            score_text))
    canvas.draw()
    Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(path)
    return path
