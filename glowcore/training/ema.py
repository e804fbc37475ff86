"""Polyak averaging of a model's weights (an exponential moving average, as the official Glow trains).

:class:`EMA` keeps a float32 shadow copy of every trainable parameter and, after each optimizer
step, moves it toward the live weights::

    shadow <- d * shadow + (1 - d) * param,   d = min(decay, (1 + n) / (10 + n))

where ``n`` counts the updates so far (the warm-up keeps the first averages from being dominated
by the random or starting weights). Buffers (ActNorm's flags, the LU permutations) are not
averaged: they are constant after initialisation. ``swapped(model)`` puts the averaged weights
into the model for evaluation or saving and the live ones back afterwards.

The state is plain tensors plus one count, so a checkpoint stores it as safetensors and a resumed
run continues the average exactly.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import Tensor, nn

__all__ = ["EMA", "check_decay", "warmup_decay"]


def check_decay(decay: object) -> float:
    """``decay`` as a float, or ``ValueError`` unless it is a finite number in (0, 1)."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not math.isfinite(decay) or not 0 < decay < 1:
        raise ValueError(f"ema decay must be a number in (0, 1), e.g. 0.999, got {decay!r}")
    return float(decay)


def warmup_decay(decay: float, updates: int) -> float:
    """The decay used for update number ``updates`` (0-based): ``min(decay, (1 + n) / (10 + n))``."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class EMA:
    """A running average of ``model``'s trainable parameters (see the module docstring)."""

    def __init__(self, model: nn.Module, decay: float, updates: int = 0):
        self.decay = check_decay(decay)
        self.updates = int(updates)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.shadow = [p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad]

    def _params(self, model: nn.Module) -> list[Tensor]:
        params = dict(model.named_parameters())
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ValueError(f"the model has no parameter(s) {', '.join(missing[:3])}: not the model this average was made for")
        return [params[n] for n in self.names]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model``'s current weights (call after each optimizer step)."""
        d = warmup_decay(self.decay, self.updates)
        live = [p.detach().float() for p in self._params(model)]
        torch._foreach_lerp_(self.shadow, live, 1.0 - d)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Write the averaged weights into ``model``."""
        for p, s in zip(self._params(model), self.shadow):
            p.copy_(s)

    @contextlib.contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` with the averaged weights inside the block, its own weights after it."""
        params = self._params(model)
        with torch.no_grad():
            live = [p.detach().clone() for p in params]
            self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, v in zip(params, live):
                    p.copy_(v)

    # ---------------------------------------------------------------- checkpoint state
    def state_tensors(self, prefix: str = "ema.") -> dict[str, Tensor]:
        return {prefix + n: s.detach().cpu().contiguous() for n, s in zip(self.names, self.shadow)}

    def load_state_tensors(self, tensors: dict[str, Tensor], updates: int, prefix: str = "ema.") -> None:
        missing = [n for n in self.names if prefix + n not in tensors]
        if missing:
            raise ValueError(f"the saved average lacks {len(missing)} parameter(s), e.g. {missing[0]}")
        with torch.no_grad():
            for n, s in zip(self.names, self.shadow):
                s.copy_(tensors[prefix + n].to(s.device, s.dtype))
        self.updates = int(updates)
