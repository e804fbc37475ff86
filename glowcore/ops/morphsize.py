"""Morphs exported at a chosen size, with the keyframe photos' own detail near each photo.

The model's faces are 64 px. A morph exported at, say, 512 px is each decoded frame enlarged
(bicubic) to 512, plus *detail transfer* near the keyframes that are photos: the photo's aligned
face at 512 px minus the enlarged reconstruction of its 64-px face (what the model cannot hold:
pores, hair strands, sharp eyes) is added to the frames close to that keyframe, fading out with a
smoothstep over the first ``reach`` of the way to the next keyframe (default half, so no frame
carries two photos' detail and nothing ghosts). A frame *at* a photo keyframe is the photo's
aligned face at full size; in between, the frames are the model's, enlarged. Keyframes that are
samples (``seed:N``) or latent files have no photo and give no detail.

:func:`photo_keyframe` aligns a photo (with rotation, :func:`glowcore.ops.align.align`) and returns
its latent and its detail; :func:`sized_frames` turns decoded 64-px frames into sized frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

__all__ = ["MIN_SIZE", "MAX_SIZE", "REACH", "PhotoKeyframe", "photo_keyframe", "photo_detail", "detail_weights", "resize", "sized_frames", "check_size"]

MIN_SIZE = 16
#: Larger frames than this take minutes per second of video and, for GIF/WebP (collected before
#: writing), gigabytes of memory.
MAX_SIZE = 1024
#: How far towards the next keyframe (in eased local time) a photo's detail reaches.
REACH = 0.5


def check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"the morph's size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    return int(size)


def resize(face: np.ndarray, size: int) -> np.ndarray:
    """A uint8 (h, w, 3) face enlarged (or reduced) to (size, size, 3) float32, bicubic."""
    from PIL import Image

    if face.shape[0] == size and face.shape[1] == size:
        return face.astype(np.float32)
    return np.asarray(Image.fromarray(face).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)


@dataclass
class PhotoKeyframe:
    """A photo as a morph keyframe: its latent (batch 1), its detail at ``size`` (float32
    ``(size, size, 3)``: the aligned photo minus the enlarged reconstruction) and the line that
    says how it was aligned."""

    latent: Any
    detail: np.ndarray
    message: str


def photo_keyframe(model, photo: Any, size: int, *, name: Optional[str] = None, box=None, face: int = 0) -> PhotoKeyframe:
    """Align ``photo`` (a path, bytes, PIL image or uint8 array) to the model's framing, encode
    it, and measure its detail at ``size`` px. ``ValueError`` names the photo when no face is found."""
    import torch

    from .align import align, read_photo
    from ..base.images import to_uint8

    size = check_size(size)
    arr = read_photo(photo)
    aligned = align(arr, model.config.image_size, box=box, face=face, name=name)
    latent = model.encode(aligned.face[None])
    with torch.inference_mode():
        recon = to_uint8(model.decode(latent))[0]
    return PhotoKeyframe(latent, photo_detail(arr, aligned.transform, recon, size), aligned.message)


def photo_detail(photo: np.ndarray, transform: np.ndarray, reconstruction: np.ndarray, size: int) -> np.ndarray:
    """A photo's detail at ``size`` px: its face cut out through ``transform`` (photo -> frame) at
    that size, minus the model's reconstruction of the face (uint8) enlarged to it; float32."""
    from .align import render_face

    size = check_size(size)
    return render_face(photo, transform, size).astype(np.float32) - resize(reconstruction, size)


def _fade(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def detail_weights(src: np.ndarray, dst: np.ndarray, u: np.ndarray, reach: float = REACH) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (from :func:`glowcore.ops.interpolate.interpolation_times`): the weight of the detail
    of the keyframe it leaves (``src``) and of the one it goes to (``dst``): 1 at the keyframe,
    fading to 0 at ``reach`` of the way."""
    if not 0.0 < reach <= 0.5:
        raise ValueError(f"reach must be in (0, 0.5], got {reach!r}")
    u = np.asarray(u, dtype=np.float64)
    return _fade(1.0 - u / reach), _fade(1.0 - (1.0 - u) / reach)


def sized_frames(
    frames: Iterable[np.ndarray],
    src: np.ndarray,
    dst: np.ndarray,
    u: np.ndarray,
    details: Sequence[Optional[np.ndarray]],
    size: int,
    reach: float = REACH,
) -> Iterator[np.ndarray]:
    """Decoded uint8 frames (h, w, 3), in path order, -> uint8 (size, size, 3) frames with the
    keyframe photos' detail added near them (``details[k]`` for keyframe ``k``; None: no photo).
    Colours that the detail pushes out of range are clipped, never wrapped."""
    size = check_size(size)
    for k, d in enumerate(details):
        if d is not None and d.shape != (size, size, 3):
            raise ValueError(f"keyframe {k}'s detail is {d.shape}, not ({size}, {size}, 3)")
    wa, wb = detail_weights(src, dst, u, reach)
    for i, frame in enumerate(frames):
        out = resize(np.asarray(frame), size)
        for k, w in ((int(src[i]), float(wa[i])), (int(dst[i]), float(wb[i]))):
            d = details[k] if k < len(details) else None
            if d is not None and w > 0.0:
                out += w * d
        yield np.clip(np.rint(out), 0, 255).astype(np.uint8)
