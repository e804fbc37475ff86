"""The latent of a Glow model: every level's standardised noise, for a batch of images."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["Latent"]


@dataclass
class Latent:
    """Every level's standardised noise (eps under the learned priors) for a batch of images.

    ``levels[0]`` is the finest level (largest spatial size), ``levels[-1]`` the top (coarsest).
    A latent flattens to one vector per image (``flatten()``, shape ``(B, D)``, D = pixels x
    channels) for linear algebra, and back with :meth:`from_flat`. Arithmetic (+, -, * scalar or
    per-item weights) acts on every level.
    """

    levels: list[Tensor]

    # -- shape
    @property
    def batch_size(self) -> int:
        return self.levels[0].shape[0]

    def __len__(self) -> int:
        return self.batch_size

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per-item shape of each level."""
        return tuple(tuple(t.shape[1:]) for t in self.levels)

    @property
    def dim(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    @property
    def device(self) -> torch.device:
        return self.levels[0].device

    # -- conversion
    def flatten(self) -> Tensor:
        return torch.cat([t.reshape(t.shape[0], -1) for t in self.levels], dim=1)

    @classmethod
    def from_flat(cls, flat: Tensor, shapes: Sequence[Sequence[int]]) -> "Latent":
        if flat.ndim == 1:
            flat = flat.unsqueeze(0)
        sizes = [math.prod(s) for s in shapes]
        if flat.shape[1] != sum(sizes):
            raise ValueError(f"flat latent has {flat.shape[1]} values per item, expected {sum(sizes)}")
        parts = flat.split(sizes, dim=1)
        return cls([p.reshape(flat.shape[0], *s) for p, s in zip(parts, shapes)])

    def to(self, *args, **kwargs) -> "Latent":
        return Latent([t.to(*args, **kwargs) for t in self.levels])

    def detach(self) -> "Latent":
        return Latent([t.detach() for t in self.levels])

    def clone(self) -> "Latent":
        return Latent([t.clone() for t in self.levels])

    def numpy(self) -> np.ndarray:
        return self.flatten().detach().cpu().numpy()

    # -- batch
    def __getitem__(self, idx) -> "Latent":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return Latent([t[idx] for t in self.levels])

    @staticmethod
    def cat(latents: Iterable["Latent"]) -> "Latent":
        latents = list(latents)
        if not latents:
            raise ValueError("cannot concatenate an empty list of latents")
        return Latent([torch.cat(ts, dim=0) for ts in zip(*(lat.levels for lat in latents))])

    def repeat(self, n: int) -> "Latent":
        return Latent([t.repeat(n, *([1] * (t.ndim - 1))) for t in self.levels])

    # -- arithmetic on every level
    def _combine(self, other, op) -> "Latent":
        if isinstance(other, Latent):
            if other.shapes != self.shapes:
                raise ValueError(f"latent shapes differ: {self.shapes} vs {other.shapes}")
            return Latent([op(a, b) for a, b in zip(self.levels, other.levels)])
        if isinstance(other, Tensor) and other.ndim == 1 and other.numel() == self.batch_size and self.batch_size > 1:
            return Latent([op(a, other.view(-1, *([1] * (a.ndim - 1)))) for a in self.levels])
        return Latent([op(a, other) for a in self.levels])

    def __add__(self, other) -> "Latent":
        return self._combine(other, torch.add)

    def __sub__(self, other) -> "Latent":
        return self._combine(other, torch.sub)

    def __mul__(self, other) -> "Latent":
        return self._combine(other, torch.mul)

    __rmul__ = __mul__
    __radd__ = __add__

    def __neg__(self) -> "Latent":
        return Latent([-t for t in self.levels])

    def level_mask(self, levels: Iterable[int]) -> "Latent":
        """A latent of ones on the chosen level indices (negative counts from the top), zeros elsewhere."""
        n = len(self.levels)
        chosen = {i % n for i in levels}
        return Latent([torch.ones_like(t[:1]) if i in chosen else torch.zeros_like(t[:1]) for i, t in enumerate(self.levels)])
