"""Stable decoding far from the data: no NaN, no Inf, no blown-up blotches.

Why decoding blows up. An affine coupling's reverse divides by ``scale = sigmoid(raw + 2)``. On
a face model measured here (CelebA 64x64, L=4 K=4), the smallest scale any coupling used on 500
real faces was 0.07 and activations stayed within +-12. A latent moved far along an attribute
direction (amount 3) or sampled at temperature 1.2 leads a coupling network, fed activations only
2-3x beyond that range, to output scales of 1e-6 and below; the next layers amplify further and
a region of the image decodes to saturated high-contrast noise (blotches; before the clamps in
``glowcore.flows``, black squares of NaN). Tightening the scale floor or clamping activations
uniformly does not cure it without breaking exact invertibility on data: the amplification
compounds over many layers, each only moderately out of range.

What this module does (:func:`stable_reverse`, used by ``Glow.decode``):

1. decode exactly (the clamped reverse of ``glowcore.flows``: never NaN or Inf);
2. find the items with *blown* pixels: output values more than one full range outside the image
   (below -1 or above 2 for images in [0, 1]; exact decodings of real images stay in [0, 1] and
   samples at T <= 1 within a few tenths of it);
3. decode those items again with a *damped* reverse pass (:func:`damped_reverse`): every coupling's
   scale bounded below by ``min_scale`` and its outputs soft-clamped (identity up to ``knee``,
   smoothly saturating at ``limit``), trying :data:`LADDER` from mild to strong until at most
   :data:`ACCEPT_FRACTION` of the pixels are blown;
4. paste the damped decoding into the blown region (dilated by 2 px and feathered), or over the
   whole image when more than 30% of it blew up.

Exact decodings are never touched (amount-0 edits and encoded photos round-trip exactly); only
the blown regions of far-off latents get the damped decoding, which keeps the intended change
(a wide smile, sunglasses) instead of noise.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from . import flows
from .compiled import reverse_graph
from .progress import CancelToken

__all__ = ["Damping", "LADDER", "BLOWN_THRESHOLD", "damped_reverse", "blown_pixels", "stable_reverse"]

#: Preprocessed outputs (image - 0.5) beyond this magnitude count as blown: pixel values below -1
#: or above 2 for images in [0, 1].
BLOWN_THRESHOLD = 1.5
#: More than this fraction of blown pixels: use the damped decoding for the whole image.
WHOLE_IMAGE_FRACTION = 0.3
#: A damped decoding with at most this fraction of pixels beyond the threshold is accepted (a few
#: over-bright teeth or over-dark glasses), else the next, stronger rung of :data:`LADDER` is tried.
ACCEPT_FRACTION = 0.005


@dataclass(frozen=True)
class Damping:
    """Bounds for :meth:`glowcore.flows.AffineCoupling.reverse`: the coupling scale is bounded
    below by ``min_scale``, outputs are kept as they are up to ``|x| <= knee`` and smoothly
    saturate towards ``limit``."""

    min_scale: float
    knee: float
    limit: float

    @property
    def min_raw(self) -> float:
        return -math.log(1.0 / self.min_scale - 1.0)

    def soft_clamp(self, x: Tensor) -> Tensor:
        a = x.abs()
        width = self.limit - self.knee
        squashed = torch.sign(x) * (self.knee + width * torch.tanh((a - self.knee).clamp_min(0) / width))
        return torch.where(a <= self.knee, x, squashed)


#: From mild to strong. Activations are ActNorm-normalised (unit variance on data), so the knees
#: are in units of standard deviations.
LADDER = (Damping(0.1, 16.0, 24.0), Damping(0.3, 8.0, 12.0), Damping(0.5, 5.0, 8.0))


@contextlib.contextmanager
def damped_reverse(damping: Damping) -> Iterator[None]:
    """Within the block, affine couplings reverse with ``damping`` (in this thread only)."""
    with flows.thread_setting(flows.REVERSE_DAMPING, damping):
        yield


def blown_pixels(x: Tensor) -> Tensor:
    """Per-pixel mask ``(B, 1, H, W)`` of blown outputs of ``Glow.reverse`` (or non-finite ones)."""
    return (~torch.isfinite(x) | (x.abs() > BLOWN_THRESHOLD)).any(1, keepdim=True)


def stable_reverse(model, latent, cancel: CancelToken | None = None) -> Tensor:
    """``model.reverse(latent)`` with blown regions re-decoded by a damped reverse pass (see the
    module docstring). Finite everywhere; items that did not blow up are exact. ``cancel`` is
    checked between levels."""
    graph = reverse_graph(model, latent)  # frozen graphs where they are exact (glowcore.compiled)
    x = graph(latent, cancel) if graph is not None else model.reverse(latent, cancel)
    bad = blown_pixels(x)
    todo = bad.flatten(1).any(1).nonzero().flatten()
    if todo.numel() == 0:
        return x
    x = torch.nan_to_num(x, nan=0.0, posinf=BLOWN_THRESHOLD, neginf=-BLOWN_THRESHOLD)
    replacement = torch.empty_like(x[todo])
    pending = torch.arange(todo.numel(), device=x.device)
    for rung in LADDER:
        sub = latent[todo[pending]] if pending.numel() < todo.numel() else latent[todo]
        with damped_reverse(rung):
            xd = model.reverse(sub, cancel)
        xd = torch.nan_to_num(xd, nan=0.0, posinf=BLOWN_THRESHOLD, neginf=-BLOWN_THRESHOLD)
        replacement[pending] = xd
        still = blown_pixels(xd).flatten(1).float().mean(1) > ACCEPT_FRACTION
        pending = pending[still]
        if pending.numel() == 0:
            break
    mask = F.max_pool2d(bad[todo].to(x.dtype), 5, stride=1, padding=2)  # dilate by 2 px
    mask = F.avg_pool2d(mask, 5, stride=1, padding=2, count_include_pad=False)  # feather
    whole = bad[todo].flatten(1).float().mean(1) > WHOLE_IMAGE_FRACTION
    mask[whole] = 1.0
    x[todo] = x[todo] * (1 - mask) + replacement * mask
    return x.clamp(-BLOWN_THRESHOLD, BLOWN_THRESHOLD)
