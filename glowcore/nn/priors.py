"""The priors of a multi-scale flow: the split prior between levels, the learned Gaussian at the top,
and the standard normal log density the latent is measured under."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .coupling import CouplingNet, ZeroConv2d
from .flows import FlowLayer, _sum_per_item
from ..base.limits import number_in

__all__ = ["SplitPrior", "TopPrior", "FittedNoise", "standard_normal_logp"]


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


class FittedNoise:
    """A Gaussian fitted to where real faces put one level's standardised noise, to *sample* that
    level from (the model's density, encoding and decoding do not use it).

    A trained flow's top level is meant to be standard normal, but the encodings of real faces
    need not be (on the bundled model their covariance has eigenvalues from 0.14 to 8.5). This is
    probabilistic PCA fitted to those encodings (Tipping & Bishop, 1999): ``mean + factor @ a +
    sigma * e`` with ``a`` (rank) and ``e`` (every value) standard normal. :meth:`sample` scales the
    spread around the mean by the temperature, so temperature 0 gives the mean and 1 the fitted
    spread. Whether it gives better samples is a measurement per model (docs/sampling.md: on the
    bundled model it did not, so that model has none).
    """

    def __init__(self, mean: Tensor, factor: Tensor, sigma: float):
        mean = mean.detach().float().reshape(-1).cpu().contiguous()
        factor = factor.detach().float().cpu().contiguous()  # (one layout: the same sums after a save and a load)
        if factor.ndim != 2 or factor.shape[0] != mean.numel() or not 0 < factor.shape[1] <= mean.numel():
            raise ValueError(f"the factor must be ({mean.numel()}, rank) with 1 <= rank <= {mean.numel()}, got {tuple(factor.shape)}")
        sigma = number_in("sigma", sigma, 1e-6, 10.0)
        if not (torch.isfinite(mean).all() and torch.isfinite(factor).all()):
            raise ValueError("the mean and factor must be finite")
        self.mean, self.factor, self.sigma = mean, factor, sigma

    @property
    def rank(self) -> int:
        return int(self.factor.shape[1])

    @classmethod
    def fit(cls, eps: Tensor, rank: int) -> "FittedNoise":
        """The maximum-likelihood PPCA of ``eps`` (N, D): the top ``rank`` principal directions
        carry their variance beyond the rest's mean, ``sigma**2``."""
        x = eps.detach().double().reshape(eps.shape[0], -1)
        if not 0 < rank < x.shape[1]:
            raise ValueError(f"rank must be from 1 to {x.shape[1] - 1}, got {rank}")
        if x.shape[0] <= rank:
            raise ValueError(f"need more than rank ({rank}) encodings, got {x.shape[0]}")
        mean = x.mean(0)
        evals, evecs = torch.linalg.eigh(torch.cov((x - mean).T))
        evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
        sigma2 = float(evals[rank:].mean())
        factor = evecs[:, :rank] * torch.sqrt((evals[:rank] - sigma2).clamp_min(0))
        return cls(mean, factor, math.sqrt(sigma2))

    def sample(self, e: Tensor, a: Tensor, temperature: float) -> Tensor:
        """``mean + temperature * (factor @ a + sigma * e)`` for standard normal ``e`` (N, ...) in
        the level's shape and ``a`` (N, rank)."""
        spread = a.float() @ self.factor.T + self.sigma * e.float().reshape(e.shape[0], -1)
        return (self.mean + temperature * spread).reshape(e.shape)

    def log_prob(self, eps: Tensor) -> Tensor:
        """Log density of encodings ``eps`` (N, ...) under the fitted Gaussian, per item (for
        measuring the fit against the standard normal, ``standard_normal_logp``)."""
        x = eps.detach().double().reshape(eps.shape[0], -1) - self.mean.double()
        d = x.shape[1]
        f = self.factor.double()
        cov = f @ f.T + self.sigma**2 * torch.eye(d, dtype=torch.float64)
        chol = torch.linalg.cholesky(cov)
        y = torch.linalg.solve_triangular(chol, x.T, upper=False).T
        return -0.5 * (y**2).sum(1) - torch.log(torch.diagonal(chol)).sum() - 0.5 * d * math.log(2 * math.pi)
