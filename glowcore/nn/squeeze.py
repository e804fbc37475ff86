"""Space-to-depth: the squeeze between the levels of a multi-scale flow."""

from __future__ import annotations

from torch import Tensor

from .flows import FlowLayer

__all__ = ["Squeeze", "squeeze2d", "unsqueeze2d"]


def squeeze2d(x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze2d(x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, h * 2, w * 2)


class Squeeze(FlowLayer):
    """Space-to-depth: (B, C, H, W) -> (B, 4C, H/2, W/2), log-determinant 0."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"squeeze needs even height and width, got {tuple(x.shape[2:])}")
        return squeeze2d(x), x.new_zeros(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return unsqueeze2d(y)
