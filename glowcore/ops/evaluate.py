"""Bits/dim of a model over a set of images: the number training, ``glow eval`` and the bundled
model's card report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..model import Glow
from ..base.progress import CancelToken, ProgressFn, check_cancel, report

__all__ = ["Evaluation", "evaluate_bits_per_dim"]


@dataclass
class Evaluation:
    """Mean bits/dim over ``images`` images at the model's ``n_bits``.

    ``bits_per_dim`` is the model's own bound (under its learned dequantisation noise when it has
    one, else under uniform noise); ``uniform_noise`` is, for a model with a learned dequantiser,
    the bound under uniform noise (comparable with models without one), else ``None``.
    """

    bits_per_dim: float
    uniform_noise: Optional[float]
    images: int
    n_bits: int

    def describe(self) -> str:
        extra = "" if self.uniform_noise is None else f" ({self.uniform_noise:.4f} under uniform noise)"
        return f"{self.bits_per_dim:.4f} bits/dim{extra}, {self.n_bits}-bit, {self.images} images"


@torch.inference_mode()
def evaluate_bits_per_dim(
    model: Glow,
    images: np.ndarray,
    indices: Optional[np.ndarray] = None,
    *,
    batch_size: int = 100,
    generator: Optional[torch.Generator] = None,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelToken] = None,
) -> Evaluation:
    """Mean bits/dim of ``model`` over uint8 ``images`` (N, H, W, C), or the rows ``indices`` of
    them, in batches of ``batch_size``. The dequantisation noise comes from ``generator`` (default:
    a CPU generator seeded 0), so a call with a freshly seeded generator repeats its result. The
    model is evaluated in the mode it is in (use eval mode)."""
    rows = np.arange(len(images)) if indices is None else np.asarray(indices)
    n = len(rows)
    if n == 0:
        raise ValueError("no images to evaluate")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    learned = model.dequantizer is not None
    total, total_uniform = 0.0, 0.0
    for start in range(0, n, batch_size):
        check_cancel(cancel)
        batch = np.array(images[np.sort(rows[start : start + batch_size])])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(model.device)
        total += float(model.bits_per_dim(x, generator=gen).double().sum())
        if learned:
            total_uniform += float(model.bits_per_dim(x, generator=gen, variational=False).double().sum())
        report(progress, min(start + batch_size, n), n, "bits/dim")
    return Evaluation(total / n, total_uniform / n if learned else None, n, model.config.n_bits)
