"""ActNorm: per-channel affine normalisation, initialised from the data."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .flows import FlowLayer

__all__ = ["ActNorm"]


class ActNorm(FlowLayer):
    """Per-channel affine normalisation ``y = (x + bias) * exp(logs)``.

    Initialised from the first batch seen in training mode so that the output has zero mean and
    unit variance per channel. The ``initialized`` flag is a registered buffer, saved with the
    weights, so a loaded model is never re-initialised.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.logs = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent initialisation from a batch ``x`` of shape (B, C, H, W)."""
        flat = x.detach().transpose(0, 1).reshape(x.shape[1], -1).to(torch.float64)
        mean = flat.mean(1)
        std = flat.std(1, unbiased=False)
        self.bias.copy_((-mean).to(self.bias.dtype))
        self.logs.copy_(torch.log(1.0 / (std + 1e-6)).to(self.logs.dtype))
        self.initialized.fill_(1)
        self.__dict__["_seen_initialized"] = True

    def maybe_initialize(self, x: Tensor) -> None:
        # Reading the buffer is a host sync on a GPU: remember once it has been seen set.
        if not self.training or self.__dict__.get("_seen_initialized", False):
            return
        if bool(self.initialized):
            self.__dict__["_seen_initialized"] = True
        else:
            self.initialize(x)

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.__dict__.pop("_seen_initialized", None)
        super()._load_from_state_dict(*args, **kwargs)

    def logdet_per_pixel(self) -> Tensor:
        return self.logs.sum()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.maybe_initialize(x)
        y = (x + self.bias.view(1, -1, 1, 1)) * torch.exp(self.logs).view(1, -1, 1, 1)
        ld = (self.logdet_per_pixel() * (x.shape[2] * x.shape[3])).expand(x.shape[0])
        return y, ld

    def reverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.logs).view(1, -1, 1, 1) - self.bias.view(1, -1, 1, 1)
