"""Image grids saved as PNG (sample grids of training runs, the CLI, the model card)."""

from __future__ import annotations

import os

import numpy as np
from torch import Tensor

from .fileio import atomic_path
from .images import to_uint8


def make_grid(images: Tensor, ncol: int, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Float images (B, C, H, W) in [0, 1] -> one uint8 (H', W', 3) grid with ``pad`` px gaps."""
    arr = to_uint8(images)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    b, h, w, c = arr.shape
    ncol = max(1, min(ncol, b))
    nrow = (b + ncol - 1) // ncol
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
    for i in range(b):
        r, q = divmod(i, ncol)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = arr[i]
    return grid


def save_grid(images: Tensor, path: str | os.PathLike, ncol: int = 8, pad: int = 2, scale: int = 1) -> None:
    from PIL import Image

    grid = make_grid(images, ncol, pad, scale)
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
