"""Variational dequantisation (Ho et al., Flow++, 2019): a learned noise distribution.

A flow over continuous images is fit to discrete ones by adding noise ``u`` in ``[0, 1)`` to each
quantised value ``k``. With uniform noise, ``log P(k) >= E_u[log p(k + u)]``; with noise drawn
from a distribution ``q(u | k)`` learned alongside the model,
``log P(k) >= E_{u ~ q}[log p(k + u) - log q(u | k)]``, a bound that can be much tighter: the
model no longer has to spread its density evenly over every bin. Both are lower bounds on the
same discrete log-likelihood, so bits/dim measured either way compare directly.

The noise only matters for training and for measuring bits/dim. Encoding, decoding and sampling
never use it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .coupling import CouplingNet
from .flows import _at_least_float32
from .squeeze import squeeze2d, unsqueeze2d

__all__ = ["DEQUANT_STEPS", "Dequantizer"]

DEQUANT_STEPS = 4


class Dequantizer(nn.Module):
    """``q(u | k)``: standard normal noise ``eps`` -> ``u = Phi(f(eps; k))`` in [0, 1).

    ``f`` is :data:`DEQUANT_STEPS` affine couplings on the squeezed (2x2 -> channels) noise, each
    conditioned on the other half of the noise and on features of the quantised image; their
    log-scales are ``tanh``-bounded. All output convolutions start at zero, so a new dequantiser
    is exactly uniform noise (``u = Phi(eps)``, ``log q = 0``): a trained model grows one
    (:meth:`glowcore.model.Glow.with_dequantizer`) without changing its bits/dim.
    """

    def __init__(self, channels: int, hidden: int, steps: int = DEQUANT_STEPS):
        super().__init__()
        c4 = 4 * channels
        self.half = c4 // 2
        self.features = nn.Sequential(
            nn.Conv2d(c4, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU()
        )
        for conv in (self.features[0], self.features[2]):
            nn.init.normal_(conv.weight, 0.0, 0.05)
            nn.init.zeros_(conv.bias)
        self.nets = nn.ModuleList(CouplingNet(self.half + hidden, hidden, 2 * self.half) for _ in range(steps))

    def forward(self, k_scaled: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
        """``k_scaled``: the quantised images as bin centres in [-0.5, 0.5], (B, C, H, W); ``eps``:
        standard normal noise of the same shape. Returns ``u`` in [0, 1] and ``log q(u | k)`` per
        item (nats)."""
        feats = self.features(squeeze2d(k_scaled))
        e = squeeze2d(_at_least_float32(eps))
        z = e
        logdet = z.new_zeros(z.shape[0])
        for i, net in enumerate(self.nets):
            a, b = z[:, : self.half], z[:, self.half :]
            if i % 2:
                a, b = b, a
            shift, raw = _at_least_float32(net(torch.cat([a, feats], dim=1))).chunk(2, dim=1)
            logs = torch.tanh(raw)
            b = b * torch.exp(logs) + shift
            logdet = logdet + logs.flatten(1).sum(1)
            z = torch.cat([b, a] if i % 2 else [a, b], dim=1)
        # u = Phi(z): log q(u) = log N(eps) - logdet - log phi(z); the log(2 pi) terms cancel
        log_q = 0.5 * ((z - e) * (z + e)).flatten(1).sum(1) - logdet
        u = unsqueeze2d(torch.special.ndtr(z))
        return u, log_q
