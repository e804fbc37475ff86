"""One step of flow: ActNorm, an invertible 1x1 convolution and a coupling, the first two fused."""

from __future__ import annotations

import torch
from torch import Tensor

from .actnorm import ActNorm
from .coupling import make_coupling
from .flows import FlowLayer, _full_precision, _full_precision_conv1x1
from .invconv import InvConv1x1, InvConv1x1LU

__all__ = ["FlowStep"]


class FlowStep(FlowLayer):
    """One step of flow: ActNorm, invertible 1x1 convolution, coupling.

    ActNorm and the 1x1 convolution are applied as one fused 1x1 convolution with a bias
    (``y = W diag(s) x + W diag(s) b``), in training as well as at inference; in eval mode the fused
    weight, its float64 inverse and the log-determinant are computed once and cached.
    """

    def __init__(self, channels: int, hidden: int, coupling: str = "affine", lu: bool = True):
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv1x1LU(channels) if lu else InvConv1x1(channels)
        self.coupling: FlowLayer = make_coupling(coupling, channels, hidden)

    def _sources(self) -> tuple[Tensor, ...]:
        return (self.actnorm.bias, self.actnorm.logs) + self.invconv._sources()

    @_full_precision
    def _fused(self) -> tuple[Tensor, Tensor, Tensor]:
        w, ld_w = self.invconv.weight_and_logdet()
        s = torch.exp(self.actnorm.logs)
        a = w * s.view(1, -1)
        c = a @ self.actnorm.bias
        return a[:, :, None, None], c, ld_w + self.actnorm.logdet_per_pixel()

    def _fused_inverse(self) -> tuple[Tensor, Tensor]:
        def build() -> tuple[Tensor, Tensor]:
            w, _ = self.invconv.weight_and_logdet()
            w64 = w.to(torch.float64)
            s64 = torch.exp(self.actnorm.logs.to(torch.float64))
            inv = torch.linalg.inv(w64) / s64.view(-1, 1)  # (W diag(s))^-1 = diag(1/s) W^-1
            dtype = self.actnorm.logs.dtype
            # x = A^-1 y - b: one 1x1 convolution with a bias
            return inv.to(dtype)[:, :, None, None], -self.actnorm.bias.detach().clone()

        return self._cached("inverse", self._sources(), build)  # type: ignore[return-value]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.actnorm.maybe_initialize(x)
        a, c, ld = self._cached("fused", self._sources(), self._fused)  # type: ignore[misc]
        y = _full_precision_conv1x1(x, a, c)
        y, ld_c = self.coupling(y)
        return y, ld * (x.shape[2] * x.shape[3]) + ld_c

    def reverse(self, y: Tensor) -> Tensor:
        x = self.coupling.reverse(y)
        inv, bias = self._fused_inverse()
        return _full_precision_conv1x1(x, inv, bias)
