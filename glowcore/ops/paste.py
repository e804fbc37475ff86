"""Putting an edited face back into the full-size photo ("detail transfer").

The change an edit made (the edited decode minus the exact reconstruction, both at the model's
resolution) is enlarged to the face's size in the photo with the inverse of the alignment
transform and added to the photo's own pixels inside a feathered round mask that follows the
face (hair included). The photo keeps its own resolution, background and detail;
only the change is at the model's resolution.

Guarantees (tested): pixels outside the mask (:func:`paste_mask` is 0) are bit-identical to the
input; an all-zero change returns the input bit-identical everywhere; colours are clipped to
0..255, never wrapped. Only the face's bounding region is warped, so the cost does not grow with
the photo's size (benchmarks/paste_benchmark.py).

Example::

    from glowcore.ops.align import align
    from glowcore.ops.paste import edit_photo
    result, aligned = edit_photo(model, "me.jpg", {"Smiling": 1.0})  # (H, W, 3) uint8, full size
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .align import AlignedFace, align, read_photo, warp_matrix
from .alignnet import FRAME, apply, compose, invert

__all__ = ["paste", "paste_mask", "face_mask", "edit_photo", "seam_ratio", "mask_to_face", "paste_fill", "spread_change", "spread_margin", "SPREAD", "MASK_CENTRE", "MASK_RADII", "MASK_POWER"]

#: The mask in the 64x64 frame: the rounded square |x|^4 + |y|^4 = 1 inscribed in it (face, hair
#: and the background between them; it fades to zero at the frame's edge, so the edge never
#: shows). The judge sees the same drop in a pasted edit as in the photo's own 64-px face plus the
#: masked change, and none without the mask (benchmarks/photo_edit_check.py): the mask alone
#: weakens edits. With the inscribed circle (power 2) Blond_Hair was judged on in 48% of pasted
#: photos against 87% of 64-px edits; with this rounded square, 63%, at the same seam figures
#: (docs/latent_ops.md); a narrower feather gains more but draws a visible edge on some photos.
MASK_CENTRE = (32.0, 32.0)
MASK_RADII = (31.5, 31.5)
#: The mask's shape: |x|^p + |y|^p = 1 (2: an ellipse; larger: towards the frame's square).
MASK_POWER = 4.0
#: Fraction of the radius over which the mask fades to zero (raised cosine).
FEATHER = 0.3
#: The change is enlarged to this many times the model's resolution before the final warp.
UPSAMPLE = 4


def face_mask(side: int, feather: float = FEATHER) -> np.ndarray:
    """The feathered mask (by default the rounded square inscribed in the frame, see
    :data:`MASK_POWER`) on a ``side`` x ``side`` grid covering the frame, float32 in [0, 1],
    exactly 0 outside it."""
    k = side / FRAME
    c = (np.arange(side, dtype=np.float64) + 0.5) / k
    x = np.abs(c[None, :] - MASK_CENTRE[0]) / MASK_RADII[0]
    y = np.abs(c[:, None] - MASK_CENTRE[1]) / MASK_RADII[1]
    r = (x**MASK_POWER + y**MASK_POWER) ** (1.0 / MASK_POWER)
    t = np.clip((1.0 - r) / feather, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _as_image(a: Any, what: str) -> np.ndarray:
    """uint8 (H, W, 3) or float [0, 1] arrays, or torch tensors (C, H, W) / (1, C, H, W) in [0, 1]
    -> float32 (H, W, 3) in 0..255."""
    if hasattr(a, "detach"):
        t = a.detach().float().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"{what}: expected one image, got a batch of {t.shape[0]}")
            t = t[0]
        a = t.permute(1, 2, 0).numpy()
    arr = np.asarray(a)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(f"{what}: expected an (H, W, 3) image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32)
    else:
        out = np.nan_to_num(arr.astype(np.float32), nan=0.5) * 255.0
    return np.repeat(out, 3, 2) if out.shape[2] == 1 else out


def _region(aligned: AlignedFace, width: int, height: int, margin: float = 0.0) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) in the photo of the mask's shape (with ``margin``: of the
    frame widened by that many frame pixels on every side), clipped to the photo."""
    inv = invert(aligned.transform)
    if margin:
        pts = np.array([[-margin, -margin], [FRAME + margin, -margin], [-margin, FRAME + margin], [FRAME + margin, FRAME + margin]])
    else:
        a = np.linspace(0, 2 * np.pi, 128, endpoint=False)
        c, sn = np.cos(a), np.sin(a)  # the shape's outline: |x|^p + |y|^p = 1
        e = 2.0 / MASK_POWER
        pts = np.stack([MASK_CENTRE[0] + MASK_RADII[0] * np.sign(c) * np.abs(c) ** e,
                        MASK_CENTRE[1] + MASK_RADII[1] * np.sign(sn) * np.abs(sn) ** e], 1)
    p = apply(inv, pts)
    pad = 2.0 + 2.0 / math.hypot(aligned.transform[0, 0], aligned.transform[1, 0])  # polygon vs the curve, interpolation
    x0, y0 = (max(0, int(math.floor(v - pad))) for v in p.min(0))
    x1, y1 = min(width, int(math.ceil(p[:, 0].max() + pad))), min(height, int(math.ceil(p[:, 1].max() + pad)))
    return x0, y0, max(x0, x1), max(y0, y1)


def _warp_to_region(src: np.ndarray, aligned: AlignedFace, box: tuple[int, int, int, int], margin: float = 0.0) -> np.ndarray:
    """``src`` (a grid over the frame, widened by ``margin`` frame pixels on every side) warped
    into the photo's ``box``; zero outside the grid."""
    import cv2

    x0, y0, x1, y1 = box
    k = src.shape[0] / (FRAME + 2 * margin)
    region_to_src = compose(np.array([[k, 0, k * margin], [0, k, k * margin]]),
                            compose(aligned.transform, np.array([[1.0, 0, x0], [0, 1.0, y0]])))
    return cv2.warpAffine(src, warp_matrix(region_to_src), (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def paste_mask(aligned: AlignedFace, feather: float = FEATHER, spread: bool = True) -> np.ndarray:
    """The mask :func:`paste` uses, over the whole photo: ``(H, W)`` float32 in [0, 1]. Where it
    is 0 the pasted photo is bit-identical to the input. With ``spread`` (the default): the weight
    a uniform change gets (1 over the frame, fading past it); without: the feathered face mask."""
    import cv2

    w, h = aligned.photo_size
    out = np.zeros((h, w), np.float32)
    margin = 0.0
    if spread:
        cells, margin = spread_margin(aligned.size)
        grid = spread_change(np.ones((aligned.size, aligned.size, 1), np.float32), cells)[..., 0]
        side = UPSAMPLE * grid.shape[0]
        src = cv2.resize(grid, (side, side), interpolation=cv2.INTER_LINEAR)
    else:
        src = face_mask(UPSAMPLE * aligned.size, feather)
    box = _region(aligned, w, h, margin)
    if box[2] > box[0] and box[3] > box[1]:
        out[box[1] : box[3], box[0] : box[2]] = _warp_to_region(src, aligned, box, margin)
    return out


#: ``spread``: how far past the frame (a fraction of its side, on every side) the change reaches.
SPREAD = 0.25


def spread_margin(size: int) -> tuple[int, float]:
    """How far a spread change reaches past the frame of a ``size``-px face: in model pixels
    (the grid :func:`spread_change` adds on every side) and in frame units."""
    cells = max(1, round(SPREAD * size))
    return cells, cells * FRAME / size


def spread_change(change: np.ndarray, margin: int, iterations: int = 120) -> np.ndarray:
    """``change`` (``(n, n, C)`` float, over the frame) on a grid ``margin`` pixels wider on every
    side: unchanged inside the frame, the harmonic continuation outside (each pixel the mean of its
    neighbours: no edge, no ripple), falling to zero at the grid's edge. Red-black over-relaxation,
    started from the frame's edge pixels carried outwards and faded linearly."""
    n, c = change.shape[0], change.shape[2]
    size = n + 2 * margin
    out = np.zeros((size, size, c), np.float32)
    out[margin : margin + n, margin : margin + n] = change
    idx = np.clip(np.arange(size) - margin, 0, n - 1)
    edge = change[idx][:, idx]  # nearest frame pixel
    d = np.maximum(np.abs(np.arange(size) - (margin + (n - 1) / 2.0)) - (n - 1) / 2.0, 0.0)
    dist = np.maximum(d[:, None], d[None, :])
    fade = np.clip(1.0 - dist / margin, 0.0, 1.0).astype(np.float32)[..., None]
    free = dist > 0
    free[0, :] = free[-1, :] = free[:, 0] = free[:, -1] = False
    out[free] = (edge * fade)[free]
    yy, xx = np.mgrid[0:size, 0:size]
    # each colour's over-relaxation weight (1.9 on its free pixels, 0 elsewhere): whole-array
    # arithmetic, five times faster than indexing the pixels of each colour
    weights = [np.float32(1.9) * np.broadcast_to((free & ((yy + xx) % 2 == k))[..., None], out.shape).astype(np.float32) for k in (0, 1)]
    nb, step = np.empty_like(out), np.empty_like(out)
    for _ in range(iterations):
        for wk in weights:
            nb[0] = 0
            nb[1:] = out[:-1]
            nb[:-1] += out[1:]
            nb[:, 1:] += out[:, :-1]
            nb[:, :-1] += out[:, 1:]
            np.multiply(nb, np.float32(0.25), out=step)
            step -= out
            step *= wk
            out += step
    return out


def paste(aligned: AlignedFace, edited: Any, reconstruction: Any, photo: Any, *, feather: float = FEATHER, strength: float = 1.0,
          spread: bool = True) -> np.ndarray:
    """The photo with the face's change put back: ``photo + warp(edited - reconstruction) * mask``.

    ``spread=True`` (the default): the whole change inside the frame, continued smoothly past it
    (:func:`spread_change`, :data:`SPREAD` of the frame's side) and fading to nothing there: the
    photo gets exactly the change the model's edit made, and a hair edit carries on into the hair
    beyond the frame; a change the edit makes to the background around the head (Blond_Hair
    brightens it) spreads as far. ``spread=False``: the change times the feathered face mask
    (:func:`face_mask`), which keeps the background but weakens edits whose change reaches the
    frame's edge (docs/latent_ops.md has the judge's figures for both).

    ``aligned``: from :func:`glowcore.ops.align.align` on this photo; ``edited`` and
    ``reconstruction``: the edited and the unedited decode of the face at the model's resolution
    (uint8 ``(H, W, 3)``, float arrays in [0, 1], or torch tensors ``(C, H, W)`` in [0, 1]);
    ``photo``: the full photo (array or anything :func:`read_photo` takes), of
    ``aligned.photo_size``. Returns a new ``(H, W, 3)`` uint8 array.
    """
    import cv2

    img = read_photo(photo)
    h, w = img.shape[:2]
    if (w, h) != tuple(aligned.photo_size):
        raise ValueError(f"the photo is {w}x{h} but the face was aligned on a {aligned.photo_size[0]}x{aligned.photo_size[1]} photo")
    e, r = _as_image(edited, "edited"), _as_image(reconstruction, "reconstruction")
    if e.shape != r.shape or e.shape[0] != e.shape[1]:
        raise ValueError(f"edited {e.shape} and reconstruction {r.shape} must be the same square size")
    diff = (e - r) * np.float32(strength)
    out = img.copy()
    if not diff.any():
        return out
    margin = 0.0
    if spread:
        cells, margin = spread_margin(e.shape[0])
        diff = spread_change(diff, cells)
    side = UPSAMPLE * diff.shape[0]
    big = cv2.resize(diff, (side, side), interpolation=cv2.INTER_CUBIC)
    if not spread:
        big *= face_mask(side, feather)[..., None]
    else:  # past the frame, linear (bicubic would ring around the smooth continuation)
        lo, hi = UPSAMPLE * cells, side - UPSAMPLE * cells
        linear = cv2.resize(diff, (side, side), interpolation=cv2.INTER_LINEAR)
        linear[lo:hi, lo:hi] = big[lo:hi, lo:hi]
        big = linear
    box = _region(aligned, w, h, margin)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return out
    delta = _warp_to_region(big, aligned, box, margin)
    sub = out[y0:y1, x0:x1]
    np.rint(delta, out=delta)
    delta += sub
    np.clip(delta, 0, 255, out=delta)
    sub[...] = delta.astype(np.uint8)
    return out


def mask_to_face(aligned: AlignedFace, mask: Any) -> np.ndarray:
    """A mask painted over the whole photo (``(H, W)`` bool or 0..255, the photo's size) carried
    into the face's frame at the model's resolution: ``(size, size)`` bool, True where any
    quarter of a model pixel is painted."""
    import cv2

    m = np.asarray(mask)
    w, h = aligned.photo_size
    if m.shape[:2] != (h, w):
        raise ValueError(f"the mask is {m.shape[1]}x{m.shape[0]} but the photo is {w}x{h}")
    m = (m.reshape(h, w, -1)[..., 0] > (0 if m.dtype == bool else 127)).astype(np.float32)
    size = aligned.size
    big = UPSAMPLE * size
    k = FRAME / big
    big_to_photo = compose(invert(aligned.transform), np.array([[k, 0, 0], [0, k, 0]]))
    up = cv2.warpAffine(m, warp_matrix(big_to_photo), (big, big), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.resize(up, (size, size), interpolation=cv2.INTER_AREA) > 0.25


def paste_fill(aligned: AlignedFace, filled: Any, photo: Any, mask: Any, feather: float = 1.5) -> np.ndarray:
    """Put a fill made at the model's resolution (``filled``: the completed face, uint8 or float
    [0, 1] or a tensor) into the painted part of the full photo (``mask``: ``(H, W)``, painted =
    True / > 127). The painted pixels get the enlarged fill; around them it is blended into the
    photo's own pixels over ``feather`` model pixels; everywhere else the photo is bit-identical.
    Painted pixels outside the face's frame keep the photo's pixels (the model did not see them)."""
    import cv2

    img = read_photo(photo)
    h, w = img.shape[:2]
    if (w, h) != tuple(aligned.photo_size):
        raise ValueError(f"the photo is {w}x{h} but the face was aligned on a {aligned.photo_size[0]}x{aligned.photo_size[1]} photo")
    m = np.asarray(mask)
    if m.shape[:2] != (h, w):
        raise ValueError(f"the mask is {m.shape[1]}x{m.shape[0]} but the photo is {w}x{h}")
    painted = (m.reshape(h, w, -1)[..., 0] > (0 if m.dtype == bool else 127)).astype(np.uint8)
    out = img.copy()
    if not painted.any():
        return out
    f = _as_image(filled, "filled")
    px = aligned.face_side / f.shape[0] * feather  # feather in photo pixels
    pad = int(math.ceil(3 * px)) + 2
    ys, xs = np.nonzero(painted)
    x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
    x1, y1 = min(w, xs.max() + 1 + pad), min(h, ys.max() + 1 + pad)
    box = (int(x0), int(y0), int(x1), int(y1))
    side = UPSAMPLE * f.shape[0]
    up = cv2.resize(f, (side, side), interpolation=cv2.INTER_CUBIC)
    fill = _warp_to_region(up, aligned, box)
    inside = _warp_to_region(np.ones((side, side), np.float32), aligned, box)  # the frame's coverage
    r = max(1, int(round(px)))
    grown = cv2.dilate(painted[y0:y1, x0:x1], cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    alpha = np.maximum(cv2.GaussianBlur(grown.astype(np.float32), (0, 0), max(0.5, px / 2)), painted[y0:y1, x0:x1])
    alpha *= (inside >= 0.999).astype(np.float32)
    sub = out[y0:y1, x0:x1]
    res = sub.astype(np.float32)
    res += alpha[..., None] * (fill - res)
    np.clip(np.rint(res), 0, 255, out=res)
    sub[...] = np.where(alpha[..., None] > 0, res, sub).astype(np.uint8)
    return out


def seam_ratio(before: np.ndarray, after: np.ndarray, mask: np.ndarray, band: tuple[float, float] = (0.02, 0.5)) -> float:
    """Gradient energy of ``after`` over the mask's border band (``band[0] < mask < band[1]``,
    the outer half of the feather) divided by that of ``before`` there: about 1 when the paste
    adds no seam, well above 1 when it draws an edge."""
    sel = (mask > band[0]) & (mask < band[1])
    if not sel.any():
        return float("nan")

    def energy(a: np.ndarray) -> float:
        f = a.astype(np.float32).mean(2)
        gx = np.zeros_like(f)
        gy = np.zeros_like(f)
        gx[:, 1:] = np.diff(f, axis=1)
        gy[1:] = np.diff(f, axis=0)
        return float((gx[sel] ** 2 + gy[sel] ** 2).mean())

    return energy(after) / max(energy(before), 1e-9)


def edit_photo(
    model,
    photo: Any,
    amounts: Mapping[str, Any],
    *,
    aligned: AlignedFace | None = None,
    fixed=None,
    levels=None,
    box=None,
    face: int = 0,
    spread: bool = True,
    bounded: bool = True,
) -> tuple[np.ndarray, AlignedFace]:
    """Align, encode, edit along named directions, decode, and paste back into the full photo
    (``spread``: see :func:`paste`). Returns ``(photo, aligned)``; see
    :func:`glowcore.ops.directions.edit` for ``amounts``, ``fixed`` (``None``: each direction's
    default conditioning) and ``bounded`` (the directions' bounds)."""
    import torch

    from .directions import edit

    img = read_photo(photo)
    if aligned is None:
        aligned = align(img, model.config.image_size, box=box, face=face, name=photo if isinstance(photo, str) else None)
    latent = model.encode(aligned.face[None])
    edited = edit(model, latent, dict(amounts), fixed=fixed, levels=levels, bounded=bounded)
    with torch.inference_mode():
        both = model.decode(type(latent).cat([latent, edited]))
    return paste(aligned, both[1], both[0], img, spread=spread), aligned
