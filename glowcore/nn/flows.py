"""Invertible layers of a Glow normalizing flow (Kingma & Dhariwal, 2018).

Every layer follows one contract, stated on :class:`FlowLayer`:

* ``forward(x) -> (y, logdet)`` maps data toward the latent; ``logdet`` has one entry per batch
  item and is ``log |det dy/dx|``.
* ``reverse(y) -> x`` is the exact inverse of ``forward``.

This module holds that contract (:class:`FlowLayer`), the eval-mode cache every layer shares
(:class:`EvalCached`) and the precision helpers; the layers themselves are one per module beside
it: :mod:`~glowcore.nn.actnorm`, :mod:`~glowcore.nn.invconv`, :mod:`~glowcore.nn.coupling`,
:mod:`~glowcore.nn.squeeze`, :mod:`~glowcore.nn.step` (the three composed), :mod:`~glowcore.nn.priors`
and :mod:`~glowcore.nn.dequant`.

Layers whose weights are constant at inference (ActNorm, the 1x1 convolutions, the fused
ActNorm + 1x1 pair inside :class:`FlowStep`, the coupling network's zero-initialised output
scale) cache what they derive from those weights while the module is in eval mode. The cache is
keyed on the identity and version counter of every tensor it derives from, so an optimizer step,
``load_state_dict`` or ``.to(device)`` invalidates it, and ``train()`` drops it. In eval mode the
cached tensors are constants: gradients still flow to the *inputs* (inpainting uses this), not to
the parameters. Train in train mode.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EvalCached", "FlowLayer", "CHANNELS_LAST"]


class EvalCached(nn.Module):
    """Memoises tensors derived from weights while the module is in eval mode (see module doc)."""

    def train(self, mode: bool = True):
        for m in self.modules():
            m.__dict__.pop("_eval_cache", None)
        return super().train(mode)

    def _cached(self, name: str, sources: Iterable[Tensor], build: Callable[[], object]) -> object:
        """Return ``build()``, memoised in eval mode on the identity and version of ``sources``."""
        if self.training:
            return build()
        sources = tuple(sources)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        cache: dict = self.__dict__.setdefault("_eval_cache", {})
        hit = cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        # Build outside inference mode so the cached tensors can be used later in autograd
        # (e.g. optimizing a latent through decode), and without tracking parameter grads.
        with torch.inference_mode(False), torch.no_grad():
            value = build()
        cache[name] = (key, value)
        return value


class FlowLayer(EvalCached):
    """Base class of every invertible layer.

    Contract:

    * ``forward(x) -> (y, logdet)`` maps data toward the latent. ``logdet`` is a tensor of shape
      ``(batch,)`` holding ``log |det dy/dx|`` for each batch item (the Jacobian of the whole
      item, all pixels and channels).
    * ``reverse(y) -> x`` inverts ``forward`` exactly (up to floating-point rounding).

    The reverse log-determinant is ``-logdet`` of the forward pass at the same point; layers do
    not return it from ``reverse`` because decoding never needs it.

    Mixed precision: under ``torch.autocast`` only the coupling and prior networks run in the
    lower precision; the invertible arithmetic and every log-determinant stay in float32.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def reverse(self, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _full_precision_conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """A 1x1 convolution that autocast never lowers to bf16/fp16 (it must stay invertible)."""
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            x = _at_least_float32(x)
            return F.conv2d(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))
    return F.conv2d(x, weight, bias)


def _full_precision(method):
    """Run a weight-deriving method with autocast off (its matrices must stay exact)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        device_type = next(self.parameters()).device.type
        if torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):
                return method(self, *args, **kwargs)
        return method(self, *args, **kwargs)

    return wrapper


def _at_least_float32(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


CHANNELS_LAST = torch.channels_last


def _sum_per_item(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)
