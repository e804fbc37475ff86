"""Interpolation between keyframe latents: linear or spherical, with ease curves, loop, ping-pong.

The path visits the keyframes in order. With ``pingpong`` it comes back the same way
(A B C B A); with ``loop`` it is closed (the last frame leads back into the first, so a video
that repeats plays seamlessly: the first keyframe is not repeated at the end). The ease curve
is applied within each segment, so the motion slows into and out of every keyframe.

Spherical interpolation (``mode="slerp"``) works level by level: it moves along the great circle
between the two latents' directions and interpolates their lengths linearly, so an interpolated
latent keeps the typical length of a Gaussian sample instead of shrinking towards the mean face
half-way, as linear interpolation of two random latents does.

Frames at a keyframe's time are exact copies of the keyframe.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..latent import Latent

__all__ = ["MODES", "EASES", "ease_curve", "interpolation_times", "interpolate", "slerp"]

MODES = ("linear", "slerp")
EASES = ("linear", "smooth", "ease-in-out", "ease-in", "ease-out")


def ease_curve(u: np.ndarray, ease: str = "linear") -> np.ndarray:
    """Map local times ``u`` in [0, 1] through an ease curve (0 -> 0, 1 -> 1 exactly).

    ``smooth``: smoothstep ``3u^2 - 2u^3``; ``ease-in-out``: cubic, slower at both ends;
    ``ease-in`` / ``ease-out``: quadratic, slow at the start / at the end.
    """
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    if ease == "linear":
        return u
    if ease == "smooth":
        return u * u * (3.0 - 2.0 * u)
    if ease == "ease-in-out":
        return np.where(u < 0.5, 4.0 * u**3, 1.0 - (-2.0 * u + 2.0) ** 3 / 2.0)
    if ease == "ease-in":
        return u * u
    if ease == "ease-out":
        return 1.0 - (1.0 - u) ** 2
    raise ValueError(f"ease must be one of {', '.join(EASES)}, got {ease!r}")


def _sequence(n_keyframes: int, loop: bool, pingpong: bool) -> list[int]:
    seq = list(range(n_keyframes))
    if pingpong:
        seq = seq + seq[-2::-1]  # A B C -> A B C B A
    elif loop:
        seq = seq + [0]  # A B C -> A B C A
    return seq


def interpolation_times(
    n_keyframes: int,
    frames: int,
    ease: str = "linear",
    loop: bool = False,
    pingpong: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: the keyframe index it starts from, the keyframe index it goes to, and the eased
    local time ``u`` in [0, 1] between them (``u == 0`` exactly at keyframes).

    Open paths (no ``loop``) end on the last keyframe of the sequence; closed paths (``loop``)
    stop one frame before returning to the first keyframe.
    """
    if not isinstance(n_keyframes, int) or n_keyframes < 1:
        raise ValueError(f"need at least one keyframe, got {n_keyframes!r}")
    if not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    ease_curve(np.zeros(1), ease)  # validates the name
    seq = _sequence(n_keyframes, loop, pingpong)
    segments = len(seq) - 1
    if segments == 0:  # one keyframe: a still
        zeros = np.zeros(frames, dtype=np.int64)
        return zeros, zeros.copy(), np.zeros(frames)
    i = np.arange(frames, dtype=np.float64)
    if loop:
        t = i * segments / frames
    else:
        t = i * segments / (frames - 1) if frames > 1 else np.zeros(1)
    # Snap times that are keyframes up to rounding (e.g. 2 * 1/3 * 3) onto the keyframe.
    nearest = np.round(t)
    t = np.where(np.abs(t - nearest) < 1e-9, nearest, t)
    seg = np.minimum(np.floor(t).astype(np.int64), segments - 1)
    u = t - seg
    seq_arr = np.asarray(seq)
    return seq_arr[seg], seq_arr[seg + 1], ease_curve(u, ease)


def slerp(a: Tensor, b: Tensor, u: Tensor) -> Tensor:
    """Spherical interpolation between flattened rows ``a`` and ``b`` (``(N, d)``) at ``u``
    (``(N,)``): great-circle motion of the directions, linear motion of the lengths. Falls back
    to linear interpolation for (nearly) parallel or zero rows."""
    a64, b64, u64 = a.double(), b.double(), u.double().unsqueeze(1)
    na = a64.norm(dim=1, keepdim=True)
    nb = b64.norm(dim=1, keepdim=True)
    ua = a64 / na.clamp_min(1e-30)
    ub = b64 / nb.clamp_min(1e-30)
    cos = (ua * ub).sum(1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    safe = (so > 1e-6) & (na > 0) & (nb > 0)
    so_safe = torch.where(safe, so, torch.ones_like(so))
    direction = (torch.sin((1 - u64) * omega) * ua + torch.sin(u64 * omega) * ub) / so_safe
    length = (1 - u64) * na + u64 * nb
    spherical = direction * length
    linear = (1 - u64) * a64 + u64 * b64
    return torch.where(safe, spherical, linear).to(a.dtype)


def interpolate(
    keyframes: Latent,
    frames: int,
    mode: str = "linear",
    ease: str = "linear",
    loop: bool = False,
    pingpong: bool = False,
) -> Latent:
    """A path of ``frames`` latents through the keyframes (the items of ``keyframes``, in order).

    ``mode``: ``"linear"`` or ``"slerp"`` (per level, see the module docstring); ``ease``: one of
    :data:`EASES`; ``loop`` closes the path; ``pingpong`` goes there and back. The first frame
    is the first keyframe exactly, and an open path's last frame is its last keyframe exactly.
    """
    if not isinstance(keyframes, Latent):
        raise TypeError(f"keyframes must be a Latent, got {type(keyframes).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    src, dst, u = interpolation_times(keyframes.batch_size, frames, ease, loop, pingpong)
    device = keyframes.device
    src_t = torch.from_numpy(src).to(device)
    dst_t = torch.from_numpy(dst).to(device)
    u_t = torch.from_numpy(u).to(device)
    exact_a = u_t == 0
    exact_b = u_t == 1
    levels = []
    for level in keyframes.levels:
        a = level[src_t].reshape(len(src), -1)
        b = level[dst_t].reshape(len(dst), -1)
        if mode == "slerp":
            mixed = slerp(a, b, u_t)
        else:
            w = u_t.to(torch.float64).unsqueeze(1)
            mixed = ((1 - w) * a.double() + w * b.double()).to(a.dtype)
        mixed = torch.where(exact_a.unsqueeze(1), a, mixed)
        mixed = torch.where(exact_b.unsqueeze(1), b, mixed)
        levels.append(mixed.reshape(len(src), *level.shape[1:]))
    return Latent(levels)

