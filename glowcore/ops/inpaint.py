"""Inpainting with a Glow prior: MAP completion in latent space (Asim et al., ICML 2020).

Given an image ``y`` and a mask of unknown pixels, find the latent ``z`` whose decoding ``G(z)``
matches the known pixels, under a Gaussian prior on the latent:

    minimise  sum_known (G(z) - y)^2 / (2 sigma^2)  +  |z|^2 / (2 T^2)

over the full latent (every level), with Adam (``method="map"``) or L-BFGS (``method="lbfgs"``).
Asim et al. found that a prior on the latent's norm works better than the image log-density
(which favours flat, over-smooth images). The known pixels are then pasted back, so they come
out exactly as they went in.

Starting points (all candidates are optimised together, as one batch): the encoding of a coarse
fill of the hole (OpenCV's Telea inpainting, or the mean of the known pixels), with the latent
entries whose cells overlap the hole (on every level, at that level's resolution) reset:

* candidate 0: reset to 0, the prior's mode; with Glow's conditional split priors this is the
  prior's mean of the hole given the coarser levels, already a far better fill than Telea's;
* the other candidates: reset to noise at ``temperature`` (seeded), i.e. a sample of the hole's
  content; the optimisation then makes each consistent with the known pixels, so they differ.

The optimisation uses Adam with a cosine-decayed step size (``lr`` at first, a tenth at the end).
The objective is evaluated through a damped reverse pass (``damping``, by default
``glowcore.decoding.stable.LADDER[1]``: coupling scales >= 0.3, activations soft-clamped at 8-12), so the
search cannot wander into latents whose exact decoding blows up (starts whose coarse cells were
reset often do, on a well-trained model, and their gradients there are useless); it changes
nothing where the decoding stays in the data's range. The completion itself is decoded with
``Glow.decode`` (exact, repaired where blown). On a CelebA model this raised the hole PSNR by
1.7 dB (centre 32x32) and 0.8 dB (eye band) over the undamped objective.
The candidates come back best first (lowest final objective). ``sigma`` (the known pixels' noise
level) and ``temperature`` (the prior's spread, ``T``) set the balance between matching the
border and staying likely. An empty mask returns the image unchanged; a full mask amounts to
sampling at ``temperature``.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..base.images import to_tensor, to_uint8
from ..model import Glow
from ..latent import Latent
from ..io import imagefiles
from ..base.progress import CancelToken, ProgressFn, check_cancel, report
from ..decoding.stable import LADDER, Damping, damped_reverse

__all__ = ["METHODS", "INITS", "DEFAULT_STEPS", "InpaintResult", "load_mask", "coarse_fill", "latent_hole_mask", "inpaint"]

METHODS = ("map", "lbfgs")
INITS = ("telea", "mean")
BLENDS = ("poisson", "paste")
DEFAULT_STEPS = {"map": 20, "lbfgs": 15}
#: The reverse pass the objective is evaluated through (see the module docstring).
OPTIMISATION_DAMPING = LADDER[1]


@dataclass
class InpaintResult:
    """Details of an inpainting run (``inpaint(..., return_info=True)``)."""

    images: Tensor
    objective: list[float] = field(default_factory=list)
    start_objective: list[float] = field(default_factory=list)
    steps: int = 0
    method: str = "map"


# -------------------------------------------------------------------------------- inputs
def _image_tensor(model: Glow, image: Any) -> Tensor:
    c, s = model.config.channels, model.config.image_size
    if isinstance(image, np.ndarray) and image.ndim == 2 and c == 1:
        image = image[..., None]
    try:
        x = to_tensor(image, c)
    except (TypeError, ValueError) as e:
        raise ValueError(f"image: {e}") from None
    if x.shape[0] != 1:
        raise ValueError(f"inpaint takes one image, got a batch of {x.shape[0]}")
    if tuple(x.shape[2:]) != (s, s):
        raise ValueError(
            f"image is {x.shape[3]}x{x.shape[2]} but the model takes {s}x{s}; "
            "frame a photo first with glowcore.ops.photo.load_photo"
        )
    if not torch.isfinite(x).all():
        raise ValueError("image contains NaN or infinite values")
    return x.clamp(0, 1)


def load_mask(mask: Any, height: int, width: int) -> np.ndarray:
    """A mask -> bool ``(height, width)``, True = unknown (to be filled).

    ``mask`` is an array or tensor (nonzero = unknown; ``(H, W)``, ``(H, W, C)`` or ``(1, H, W)``),
    a ``PIL.Image``, or the path of an image file (painted = unknown: where the image has
    transparency, the opaque pixels; otherwise the light ones, gray level >= 128). Masks of
    another size are resized (nearest neighbour).
    """
    from PIL import Image

    if isinstance(mask, (str, os.PathLike)):
        p = imagefiles.check_image_file(mask, "mask")
        try:
            with Image.open(p) as im:
                if im.width * im.height > imagefiles.MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{im.width}x{im.height} pixels")
                im.load()
                arr = _painted(im)
        except Image.DecompressionBombError as e:
            raise ValueError(f"{p}: refused, the mask image is too large ({e}; possible decompression bomb)") from None
        except Exception as e:  # UnidentifiedImageError, OSError, ValueError, TypeError (bad TIFF tags), ...
            raise ValueError(f"{p}: the mask is not an image Pillow can read ({e.__class__.__name__})") from None
    elif isinstance(mask, Image.Image):
        arr = _painted(mask)
    elif isinstance(mask, (np.ndarray, Tensor)):
        a = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError(f"mask array must be boolean or numeric, got dtype {a.dtype}")
        if a.ndim == 3 and a.shape[0] == 1:
            a = a[0]
        if a.ndim == 3:
            a = (a != 0).any(axis=2)
        if a.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {a.shape}")
        if a.size == 0:
            raise ValueError("mask is empty (zero size)")
        arr = a != 0
    else:
        raise ValueError(f"mask must be an image file, a PIL image or an array, got {type(mask).__name__}")
    if arr.shape != (height, width):
        im = Image.fromarray(arr.astype(np.uint8) * 255)
        arr = np.asarray(im.resize((width, height), Image.Resampling.NEAREST)) >= 128
    return arr


def _painted(im) -> np.ndarray:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        alpha = np.asarray(im.convert("RGBA"))[:, :, 3]
        if alpha.min() < 255:
            return alpha >= 128
    return np.asarray(im.convert("L")) >= 128


def coarse_fill(image: Tensor, unknown: np.ndarray, init: str = "telea") -> Tensor:
    """A quick fill of the hole to start from: OpenCV's Telea inpainting or the known pixels' mean."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    m = torch.from_numpy(unknown).to(image.device)
    if init == "mean":
        known = ~m
        mean = image[..., known].mean(dim=-1, keepdim=True)  # (1, C, 1)
        out = image.clone()
        out[..., m] = mean.expand(-1, -1, int(m.sum()))
        return out
    import cv2

    arr = to_uint8(image[0])
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    filled = cv2.inpaint(np.ascontiguousarray(arr), unknown.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    return to_tensor(filled, image.shape[1]).to(image.device)


def latent_hole_mask(unknown: np.ndarray, shapes) -> Tensor:
    """Flat bool mask ``(D,)`` of the latent entries whose cells overlap the hole, on every level
    (a level of spatial size ``h`` covers the image with cells of ``H / h`` pixels)."""
    import torch.nn.functional as F

    m = torch.from_numpy(np.ascontiguousarray(unknown)).float()[None, None]
    height = m.shape[2]
    parts = []
    for c, h, w in shapes:
        k = height // h
        cell = F.max_pool2d(m, k) > 0 if k > 1 else m > 0
        parts.append(cell.expand(1, c, h, w).reshape(-1))
    return torch.cat(parts)


def poisson_blend(x: Tensor, y: Tensor, unknown: Tensor, iterations: int = 300) -> Tensor:
    """Gradient-domain paste (Perez et al. 2003): inside the hole, the result keeps the gradients of
    ``x`` (the model's decoding, ``(B, C, H, W)``) but meets the known pixels of ``y`` at the hole's
    border, so no seam shows where the decoding's colours drift from the photo's. Solved with
    conjugate gradients on the 5-point Laplacian; pixels outside the hole are ``y``'s."""
    omega = unknown.to(x.dtype)[None, None]  # 1 inside the hole
    ones = torch.ones_like(omega)

    def neighbours(t: Tensor) -> Tensor:  # sum over the in-image 4-neighbours
        p = F.pad(t, (1, 1, 1, 1))
        return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]

    degree = neighbours(ones)
    y = y.expand_as(x)
    g = x
    # b = sum of known neighbours' values + sum of guidance differences (g_p - g_q)
    b = (neighbours(y * (1 - omega)) + degree * g - neighbours(g)) * omega

    def apply(f: Tensor) -> Tensor:
        return (degree * f - neighbours(f * omega)) * omega

    f = g * omega
    r = b - apply(f)
    d = r.clone()
    rr = (r * r).flatten(1).sum(1)
    for _ in range(iterations):
        ad = apply(d)
        alpha = rr / (d * ad).flatten(1).sum(1).clamp_min(1e-20)
        f = f + alpha.view(-1, 1, 1, 1) * d
        r = r - alpha.view(-1, 1, 1, 1) * ad
        rr_new = (r * r).flatten(1).sum(1)
        if float(rr_new.max()) < 1e-10:
            break
        d = r + (rr_new / rr.clamp_min(1e-30)).view(-1, 1, 1, 1) * d
        rr = rr_new
    return f * omega + y * (1 - omega)


# -------------------------------------------------------------------------------- the solver
class _FrozenEval:
    """Eval mode and no parameter gradients during the optimisation; restored afterwards."""

    def __init__(self, model: Glow):
        self.model = model

    def __enter__(self) -> None:
        self.training = self.model.training
        self.flags = [p.requires_grad for p in self.model.parameters()]
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p, flag in zip(self.model.parameters(), self.flags):
            p.requires_grad_(flag)
        self.model.train(self.training)


def inpaint(
    model: Glow,
    image: Any,
    mask: Any,
    candidates: int = 4,
    steps: int | None = None,
    temperature: float = 0.7,
    seed: int = 0,
    method: str = "map",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    *,
    sigma: float = 0.25,
    lr: float = 0.05,
    lr_decay: bool = True,
    init: str = "telea",
    reset_hole: bool = True,
    damping: Damping | None = OPTIMISATION_DAMPING,
    blend: str = "poisson",
    return_info: bool = False,
) -> Tensor | InpaintResult:
    """Fill the unknown pixels of ``image`` with completions the model finds likely.

    ``image``: uint8 ``(H, W, C)`` or a float tensor ``(C, H, W)`` / ``(1, C, H, W)`` in [0, 1], at
    the model's size. ``mask``: see :func:`load_mask` (nonzero / painted = unknown). Returns
    ``(candidates, C, H, W)`` floats in [0, 1], best first; known pixels equal the input's.
    ``steps`` defaults to :data:`DEFAULT_STEPS` (a few seconds on a CPU for one 64x64 face with
    the bundled model). ``return_info`` returns an :class:`InpaintResult` with the objectives.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    if not isinstance(candidates, (int, np.integer)) or candidates < 1:
        raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    steps = DEFAULT_STEPS[method] if steps is None else int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    device = model.device
    y = _image_tensor(model, image).to(device)
    _, c, h, w = y.shape
    unknown = load_mask(mask, h, w)
    n = int(candidates)
    if not unknown.any():
        out = y.repeat(n, 1, 1, 1)
        return InpaintResult(out, method=method) if return_info else out
    if unknown.all():
        with torch.inference_mode():
            out = model.sample(n, temperature, seed).to(device)
        return InpaintResult(out, method=method) if return_info else out

    check_cancel(cancel)
    unk = torch.from_numpy(unknown).to(device).view(1, 1, h, w)
    known = (~unk).to(y.dtype)
    # Starting points: the coarse fill's encoding, its hole cells reset (see the module docstring).
    shapes = model.latent_shapes
    plain = model.encode(coarse_fill(y, unknown, init)).flatten().clone().repeat(n, 1)
    starts = plain
    inv_var = 1.0 / (sigma * sigma)
    inv_t2 = 1.0 / (temperature * temperature)
    if reset_hole:
        cells = latent_hole_mask(unknown, shapes).to(device)
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((n - 1, int(cells.sum())), generator=gen).to(device) * float(temperature)
        starts = plain.clone()
        starts[:, cells] = torch.cat([torch.zeros(1, noise.shape[1], device=device), noise])

    def objective(z: Tensor) -> Tensor:
        with damped_reverse(damping) if damping is not None else contextlib.nullcontext():
            x = model.decode_tensor(Latent.from_flat(z, shapes))
        data = ((x - y) ** 2 * known).flatten(1).sum(1) * (0.5 * inv_var)
        prior = (z * z).sum(1) * (0.5 * inv_t2)
        return data + prior

    with _FrozenEval(model), torch.inference_mode(False), torch.enable_grad():
        z = starts.detach().clone().requires_grad_(True)
        with torch.no_grad():
            start = objective(z)
        start_obj = start.tolist()
        # Far from the data the reverse pass can blow up and give non-finite values or gradients:
        # keep each candidate's best finite point, zero non-finite gradients, and step back from
        # non-finite points to the best one.
        best_z = starts.detach().clone()
        best_obj = torch.where(torch.isfinite(start), start, torch.full_like(start, float("inf")))

        def remember(obj: Tensor) -> None:
            better = torch.isfinite(obj) & (obj < best_obj)
            best_obj[better] = obj[better].detach()
            best_z[better] = z.detach()[better]

        def sanitize() -> None:
            if z.grad is not None:
                torch.nan_to_num_(z.grad, nan=0.0, posinf=0.0, neginf=0.0)

        def recover() -> None:
            with torch.no_grad():
                bad = ~torch.isfinite(z).all(1)
                if bool(bad.any()):
                    z[bad] = best_z[bad]

        if method == "map":
            opt = torch.optim.Adam([z], lr=lr)
            for i in range(steps):
                check_cancel(cancel)
                if lr_decay:  # cosine decay to a tenth: big moves first, then settle
                    opt.param_groups[0]["lr"] = lr * (0.1 + 0.45 * (1 + math.cos(math.pi * i / max(1, steps))))
                opt.zero_grad(set_to_none=True)
                loss = objective(z)
                remember(loss)
                finite = torch.isfinite(loss)
                if bool(finite.any()):
                    loss[finite].sum().backward()
                sanitize()
                opt.step()
                recover()
                report(progress, i + 1, steps, "inpainting")
        elif steps > 0:
            opt_l = torch.optim.LBFGS([z], lr=1.0, max_iter=1, history_size=10, line_search_fn="strong_wolfe")
            for i in range(steps):
                check_cancel(cancel)

                def closure() -> Tensor:
                    opt_l.zero_grad(set_to_none=True)
                    obj = objective(z)
                    remember(obj)
                    total = torch.where(torch.isfinite(obj), obj, torch.zeros_like(obj)).sum() / n
                    total.backward()
                    sanitize()
                    return total

                opt_l.step(closure)
                recover()
                report(progress, i + 1, steps, "inpainting")
        check_cancel(cancel)
        with torch.no_grad():
            remember(objective(z.detach()))
            z_final = best_z
            final_obj = best_obj
        x = model.decode(Latent.from_flat(z_final, shapes))  # guarded against blow-ups (glowcore.decoding.stable)
    order = torch.argsort(final_obj.cpu(), stable=True)
    x = x[order.to(x.device)]
    if blend == "poisson":
        out = poisson_blend(x, y, unk[0, 0]).clamp(0, 1)
        out = torch.where(unk, out, y).detach()
    else:
        out = torch.where(unk, x, y).detach()
    if return_info:
        return InpaintResult(out, [float(final_obj[i]) for i in order], [start_obj[i] for i in order.tolist()], steps, method)
    return out
