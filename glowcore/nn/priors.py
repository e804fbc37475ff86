"""The priors of a multi-scale flow: the split prior between levels, the learned Gaussian at the top,
and the standard normal log density the latent is measured under."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .coupling import CouplingNet, ZeroConv2d
from .flows import FlowLayer, _sum_per_item

__all__ = ["SplitPrior", "TopPrior", "standard_normal_logp"]


class SplitPrior(FlowLayer):
    """Standardises the second half of the channels under a Gaussian conditioned on the first.

    The mean and log-scale come from a zero-initialised 3x3 convolution of the first half (Glow),
    plus, with ``hidden > 0``, a conv3x3-ReLU-conv1x1-ReLU-ZeroConv3x3 network of that width.

    ``forward([z1, z2]) = [z1, (z2 - mean(z1)) * exp(-logs(z1))]`` with ``logdet = -sum(logs)``:
    the output's second half is the level's eps, standard normal under the learned prior.
    """

    def __init__(self, channels: int, hidden: int = 0):
        super().__init__()
        if channels % 2:
            raise ValueError(f"split needs an even number of channels, got {channels}")
        self.conv = ZeroConv2d(channels // 2, channels)
        # hidden > 0: a coupling-style network adds to the linear 3x3 prediction. Its output
        # convolution starts at zero, so adding it to a trained model changes nothing at first
        # (Glow.with_prior_networks grows a trained model this way).
        self.net: CouplingNet | None = CouplingNet(channels // 2, hidden, channels) if hidden else None

    def _params(self, z1: Tensor) -> tuple[Tensor, Tensor]:
        p = self.conv(z1)
        if self.net is not None:
            p = p + self.net(z1)
        mean, logs = p.chunk(2, dim=1)
        return mean, logs

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z1, z2 = x.chunk(2, dim=1)
        mean, logs = self._params(z1)
        eps = (z2 - mean) * torch.exp(-logs)
        return torch.cat([z1, eps], dim=1), -_sum_per_item(logs)

    def reverse(self, y: Tensor) -> Tensor:
        z1, eps = y.chunk(2, dim=1)
        mean, logs = self._params(z1)
        return torch.cat([z1, eps * torch.exp(logs) + mean], dim=1)


class TopPrior(FlowLayer):
    """Standardises the top level under a learned Gaussian (one mean and log-scale per unit)."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(channels, size, size))
        self.logs = nn.Parameter(torch.zeros(channels, size, size))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        eps = (x - self.mean) * torch.exp(-self.logs)
        return eps, (-self.logs.sum()).expand(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(self.logs) + self.mean


LOG_2PI = math.log(2 * math.pi)


def standard_normal_logp(eps: Tensor) -> Tensor:
    """Per-item log density of ``eps`` under N(0, I)."""
    return -0.5 * _sum_per_item(eps * eps + LOG_2PI)
