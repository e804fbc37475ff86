"""Invertible 1x1 convolutions: a free weight (:class:`InvConv1x1`) or its LU form (:class:`InvConv1x1LU`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .flows import FlowLayer, _full_precision, _full_precision_conv1x1

__all__ = ["InvConv1x1", "InvConv1x1LU"]


class _InvConvBase(FlowLayer):
    """Shared code of the invertible 1x1 convolutions: ``y = W x`` at every pixel."""

    def weight_and_logdet(self) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """The (C, C) matrix and ``log|det W|`` (per pixel), differentiable in training."""
        raise NotImplementedError

    def _sources(self) -> tuple[Tensor, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse_weight(self) -> Tensor:
        """``W^-1`` computed in float64, cached in eval mode."""

        def build() -> Tensor:
            w, _ = self.weight_and_logdet()
            return torch.linalg.inv(w.detach().to(torch.float64)).to(w.dtype)

        return self._cached("inverse", self._sources(), build)  # type: ignore[return-value]

    def forward_weight(self) -> tuple[Tensor, Tensor]:
        return self._cached("forward", self._sources(), self.weight_and_logdet)  # type: ignore

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        w, ld = self.forward_weight()
        y = _full_precision_conv1x1(x, w.unsqueeze(-1).unsqueeze(-1))
        return y, (ld * (x.shape[2] * x.shape[3])).expand(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return _full_precision_conv1x1(y, self.inverse_weight().unsqueeze(-1).unsqueeze(-1))


def _random_rotation(channels: int, generator: torch.Generator | None = None) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator, dtype=torch.float64))
    return q


class InvConv1x1(_InvConvBase):
    """Invertible 1x1 convolution with a free (C, C) weight, initialised to a random rotation."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(_random_rotation(channels).float())

    def _sources(self) -> tuple[Tensor, ...]:
        return (self.weight,)

    @_full_precision
    def weight_and_logdet(self) -> tuple[Tensor, Tensor]:
        w = self.weight
        ld = torch.linalg.slogdet(w.to(torch.float64))[1].to(w.dtype)
        return w, ld


class InvConv1x1LU(_InvConvBase):
    """Invertible 1x1 convolution in LU form ``W = P L (U + diag(sign * exp(log_s)))``.

    ``P`` (a permutation) and ``sign`` are fixed buffers; ``L`` (unit lower), ``U`` (strict upper)
    and ``log_s`` are learned, which makes ``log|det W| = sum(log_s)`` free to compute.
    """

    def __init__(self, channels: int):
        super().__init__()
        w = _random_rotation(channels)
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter((lower * torch.tril(torch.ones_like(lower), -1)).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def _sources(self) -> tuple[Tensor, ...]:
        return (self.lower, self.upper, self.log_s, self.perm, self.sign_s)

    @_full_precision
    def weight_and_logdet(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.lower.shape[0], device=self.lower.device, dtype=self.lower.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        w = self.perm @ lower @ upper
        return w, self.log_s.sum()
