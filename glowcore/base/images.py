"""Conversions between the image forms the library accepts and returns.

* uint8 numpy arrays, ``(H, W, C)`` or ``(B, H, W, C)`` (``(H, W)`` / ``(B, H, W)`` for one
  channel): the form of files and of the GUI.
* float tensors in ``[0, 1]``, ``(C, H, W)`` or ``(B, C, H, W)``; uint8 tensors in the same layout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_tensor", "to_uint8", "to_uint8_tensor"]


def to_tensor(images, channels: int | None = None, device=None) -> Tensor:
    """Any accepted image form -> float32 tensor (B, C, H, W) in [0, 1] on ``device``."""
    if isinstance(images, np.ndarray):
        arr = images
        if arr.dtype != np.uint8:
            raise TypeError(f"numpy images must be uint8, got {arr.dtype}")
        if arr.ndim == 2 or (arr.ndim == 3 and channels == 1 and arr.shape[-1] != 1):
            arr = arr[..., None]  # (H, W) or (B, H, W) grayscale
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4:
            raise ValueError(f"expected an image array (H, W, C) or (B, H, W, C), got shape {images.shape}")
        arr = np.ascontiguousarray(arr)
        if not arr.flags.writeable:  # (read-only memory, e.g. a memory-mapped data set: copy, torch would warn)
            arr = arr.copy()
        t = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
    elif isinstance(images, Tensor):
        t = images
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4:
            raise ValueError(f"expected an image tensor (C, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")
        t = t.float().div(255.0) if t.dtype == torch.uint8 else t.float()
    else:
        raise TypeError(f"expected a numpy uint8 array or a torch tensor, got {type(images).__name__}")
    if channels is not None and t.shape[1] != channels:
        raise ValueError(f"expected {channels} channel(s), got {t.shape[1]} (image shape {tuple(t.shape)})")
    return t.to(device) if device is not None else t


def to_uint8_tensor(images: Tensor) -> Tensor:
    """Float tensor in [0, 1] -> uint8 tensor, same layout, rounded and clipped."""
    return torch.nan_to_num(images, nan=0.0).clamp(0, 1).mul(255.0).round_().to(torch.uint8)


def to_uint8(images: Tensor) -> np.ndarray:
    """Float tensor (B, C, H, W) or (C, H, W) in [0, 1] -> uint8 numpy (B, H, W, C) or (H, W, C)."""
    t = to_uint8_tensor(images.detach()).cpu()
    if t.ndim == 4:
        return t.permute(0, 2, 3, 1).numpy()
    return t.permute(1, 2, 0).numpy()
