"""Image grids saved as PNG, JPEG or WebP (sample grids of training runs, the CLI, the model card)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .fileio import atomic_path
from ..base.limits import check_output_size
from ..base.images import to_uint8


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


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format an output image's suffix asks for (ValueError for any other suffix)."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: an output image must end in {', '.join(IMAGE_FORMATS)}")
    return fmt


def grid_size(n: int, h: int, w: int, ncol: int, pad: int = 2, scale: int = 1) -> tuple[int, int]:
    """(width, height) of the grid of ``n`` images of ``h`` x ``w`` that make_grid makes."""
    ncol = max(1, min(ncol, n))
    nrow = (n + ncol - 1) // ncol
    return ncol * (w * scale + pad) + pad, nrow * (h * scale + pad) + pad


def save_grid(images: Tensor, path: str | os.PathLike, ncol: int = 8, pad: int = 2, scale: int = 1, finite: bool = False) -> None:
    """Save images (B, C, H, W) in [0, 1] as one grid, in the format of ``path``'s suffix (PNG,
    JPEG, WebP). Refuses grids over :data:`glowcore.base.limits.MAX_OUTPUT_PIXELS` and, with
    ``finite``, non-finite pixels (a model that blew up), naming the file."""
    from PIL import Image

    fmt = image_format(path)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{path}: scale must be a whole number >= 1, got {scale!r}")
    check_output_size(path, *grid_size(images.shape[0], images.shape[-2], images.shape[-1], ncol, pad, scale))
    if finite and not torch.isfinite(images).all():
        raise ValueError(f"{path}: not written: the model gave non-finite pixels (NaN or infinity); its weights or inputs are out of range")
    grid = make_grid(images, ncol, pad, scale)
    options = {"quality": 95} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format=fmt, **options)
