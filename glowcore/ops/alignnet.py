"""The face-alignment network and the similarity-transform helpers it needs (no Qt, no OpenCV).

Coordinates are continuous: pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)`` and its centre is
``(i + 0.5, j + 0.5)``. A transform is a 2x3 float64 matrix ``M`` mapping photo coordinates to the
64x64 *frame* (CelebA's aligned framing: the box 15,35,163,183 of a 178x218 aligned original).

The network looks at a 64x64 window sampled from the photo through the current estimate and
predicts the residual similarity transform ``Q`` (window -> frame) as ``(angle, log scale, dx, dy)``
about the frame's centre; the estimate is refined as ``M <- Q @ M`` (see :mod:`glowcore.ops.align`).
It is trained by ``scripts/train_align.py`` on CelebA 64x64 faces under random similarity
transforms and shipped as ``assets/models/align/align.safetensors`` with ``align.json``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["AlignNet", "FRAME", "EYES", "MOUTH", "REF_POINTS", "params_to_matrix", "params_to_matrix_torch", "compose", "invert", "apply"]

#: Side of the frame the transforms map to (CelebA's 64x64 training images).
FRAME = 64
#: Mean eye centres (left, right as seen) and mouth centre of CelebA's aligned faces in the 64x64
#: frame (CelebA's published mean landmarks of the aligned originals, 178x218: eyes near (69, 111)
#: and (108, 111), mouth corners near (72, 152) and (106, 152); mapped through the crop box).
EYES = ((23.35, 32.86), (40.22, 32.86))
MOUTH = (32.0, 50.6)
REF_POINTS = np.array([EYES[0], EYES[1], MOUTH], dtype=np.float64)
#: Parameters are predicted in these units: radians/0.3, log-scale/0.2, pixels/8.
PARAM_SCALE = (0.3, 0.2, 8.0, 8.0)


def params_to_matrix(angle: float, log_scale: float, dx: float, dy: float, centre: float = FRAME / 2) -> np.ndarray:
    """The 3x3 similarity ``x -> c + s R(angle) (x - c) + (dx, dy)`` with ``c = (centre, centre)``."""
    s = math.exp(log_scale)
    c, si = s * math.cos(angle), s * math.sin(angle)
    a = np.array([[c, -si], [si, c]])
    t = np.array([centre, centre]) - a @ np.array([centre, centre]) + np.array([dx, dy])
    m = np.eye(3)
    m[:2, :2], m[:2, 2] = a, t
    return m


def params_to_matrix_torch(p: torch.Tensor, centre: float = FRAME / 2) -> torch.Tensor:
    """Batched :func:`params_to_matrix` for ``(B, 4)`` parameters -> ``(B, 2, 3)``."""
    s = torch.exp(p[:, 1])
    c, si = s * torch.cos(p[:, 0]), s * torch.sin(p[:, 0])
    tx = centre - (c * centre - si * centre) + p[:, 2]
    ty = centre - (si * centre + c * centre) + p[:, 3]
    return torch.stack([torch.stack([c, -si, tx], 1), torch.stack([si, c, ty], 1)], 1)


def _h(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.shape == (3, 3):
        return m
    out = np.eye(3)
    out[:2] = m
    return out


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a after b`` as a 2x3 matrix."""
    return (_h(a) @ _h(b))[:2]


def invert(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix."""
    return np.linalg.inv(_h(m))[:2]


def apply(m: np.ndarray, pts) -> np.ndarray:
    """Apply a 2x3 matrix to ``(N, 2)`` points."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    m = _h(m)
    return pts @ m[:2, :2].T + m[:2, 2]


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AlignNet(nn.Module):
    """A compact CNN: a 64x64 RGB window in [0, 1] -> ``(angle, log scale, dx, dy)`` of the residual
    transform (window -> frame), in :data:`PARAM_SCALE` units (``predict`` returns plain units)."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(3, w, 2),  # 32
            _block(w, 2 * w, 2),  # 16
            _block(2 * w, 2 * w, 1),
            _block(2 * w, 4 * w, 2),  # 8
            _block(4 * w, 4 * w, 1),
            _block(4 * w, 4 * w, 2),  # 4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, 4 * w), nn.ReLU(inplace=True), nn.Linear(4 * w, 4))
        self.register_buffer("mean", torch.tensor([0.5, 0.42, 0.38]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - self.mean) * 4.0))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Parameters in radians, natural log, pixels."""
        return self.forward(x) * torch.tensor(PARAM_SCALE, dtype=x.dtype, device=x.device)
