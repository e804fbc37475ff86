"""The data order of a run: which images each step takes, whether they are mirrored, and the seed of
their dequantisation noise, each a function of the run's seed, the step (or epoch) and the rank, so
that a resumed run continues exactly as the uninterrupted one would have."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__: list[str] = []


def _noise_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + rank * 0x94D049BB133111EB + 0x2545F491) % (2**63 - 1)


def _flip_mask(seed: int, step: int, rank: int, n: int) -> np.ndarray:
    """Which of a step's ``n`` images are mirrored (--hflip): a function of the seed, the step and
    the rank, so a resumed run flips what the uninterrupted one would have."""
    return np.random.default_rng([seed, step, rank, 0xF11B]).random(n) < 0.5


def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x61C8]).permutation(n)


def _as_batch(images: np.ndarray | Tensor, idx: np.ndarray | Tensor, device: torch.device) -> Tensor:
    """uint8 (B, C, H, W) tensor on ``device`` for the chosen rows of a (N, H, W, C) array."""
    if isinstance(images, Tensor):
        return images.index_select(0, idx).permute(0, 3, 1, 2)
    rows = np.sort(np.asarray(idx)) if isinstance(idx, np.ndarray) else idx
    t = torch.from_numpy(np.ascontiguousarray(images[rows])).permute(0, 3, 1, 2)
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    return t
