"""Tiny image trees in MVTec AD layout, generated in temporary folders (no images are stored in the repo)."""
import os
from typing import Dict, Optional

import numpy as np
from PIL import Image

# (extension, PIL mode) cycled through by make_category so one tree covers every accepted kind of file.
VARIANTS = (
    ("png", "RGB"), ("png", "L"), ("png", "RGBA"), ("png", "I;16"), ("jpg", "RGB"), ("jpeg", "L"),
    ("bmp", "RGB"), ("PNG", "P"),
)


def pattern(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 RGB image with structure (gradients plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(h + w - 2, 1)], -1)
    return np.clip(base + rng.integers(-20, 21, size=(h, w, 3)), 0, 255).astype(np.uint8)


def save_image(path: str, rgb: np.ndarray, mode: str = "RGB") -> None:
    """Save an RGB uint8 array as `mode` (RGB, L, RGBA, I;16, P) in the format given by the extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if mode == "RGB":
        img = Image.fromarray(rgb, "RGB")
    elif mode == "L":
        img = Image.fromarray(rgb[..., 0], "L")
    elif mode == "RGBA":
        alpha = np.full(rgb.shape[:2] + (1,), 77, np.uint8)
        img = Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA")
    elif mode == "I;16":
        img = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    elif mode == "P":
        img = Image.fromarray(rgb, "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    else:
        raise ValueError(mode)
    img.save(path)


def save_mask(path: str, mask: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(path)


def make_category(root: str, name: str = "widget", train: int = 6, test: Optional[Dict[str, int]] = None,
                  masks: bool = True, sizes=((40, 56), (64, 64), (33, 47)), variants=VARIANTS) -> str:
    """Write <root>/<name>/{train/good, test/<defect>, ground_truth/<defect>} and return the category folder.

    Files cycle through `variants` (format x mode) and `sizes` (h, w), so trees are mixed-size and non-square.
    Masks (when `masks`) have a rectangle of defect pixels and the size of their image.
    """
    test = {"good": 2, "crack": 2, "hole": 1} if test is None else test
    cat = os.path.join(root, name)
    k = 0

    def next_file(folder, stem):
        nonlocal k
        ext, mode = variants[k % len(variants)]
        h, w = sizes[k % len(sizes)]
        k += 1
        path = os.path.join(folder, f"{stem}.{ext}")
        save_image(path, pattern(h, w, seed=k), mode)
        return path, h, w

    for i in range(train):
        next_file(os.path.join(cat, "train", "good"), f"{i:03d}")
    for defect, count in test.items():
        for i in range(count):
            _, h, w = next_file(os.path.join(cat, "test", defect), f"{i:03d}")
            if masks and defect != "good":
                mask = np.zeros((h, w), bool)
                mask[h // 4:h // 2, w // 4:w // 2] = True
                save_mask(os.path.join(cat, "ground_truth", defect, f"{i:03d}_mask.png"), mask)
    return cat
