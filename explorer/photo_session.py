"""A user's photo edited at its own size, on the worker's side (numpy; glowcore imported lazily).

:class:`PhotoSession` holds the full photo (EXIF orientation applied), its alignment
(:func:`glowcore.ops.align.align`: face box, landmarks, the similarity transform to CelebA's framing)
and the exact reconstruction of its face. :func:`composite` pastes an edited face back with
glowcore's detail transfer (:func:`glowcore.ops.paste.paste`): outside the feathered face mask the
photo's pixels are untouched. :func:`save` writes the full-size result atomically (same format
as the input by default; JPEG quality; EXIF kept with the orientation reset, ICC profile kept).

Used by :class:`explorer.engine.Engine` in the worker thread only; the GUI gets the results as
:class:`explorer.protocol.PhotoOpened` and ``PhotoComposite`` messages.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["PhotoSession", "read", "align_face", "composite", "save", "SAVE_FORMATS", "same_file"]

#: Output formats by suffix (Pillow's names).
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


@dataclass
class PhotoSession:
    array: np.ndarray  # (H, W, 3) uint8, the photo as shown (EXIF orientation applied)
    aligned: Any  # glowcore.ops.align.AlignedFace
    latent_id: int
    reconstruction: np.ndarray  # the exact decode of the face, uint8 (size, size, 3)
    path: Optional[str]  # the file it came from (None: pasted or dropped pixels)
    label: str
    message: str
    found: bool  # a face was found or given (False: the centre square was used)
    icc: Optional[bytes] = None
    exif: Optional[bytes] = None  # with orientation reset to 1 (the pixels are upright)
    frame: tuple = ()  # the corners of the face's frame in photo pixels (set by open)


def read(source: Any) -> tuple[np.ndarray, Optional[bytes], Optional[bytes]]:
    """The photo (path or bytes) as an upright uint8 array, with its ICC profile and EXIF
    (orientation reset) where it has them."""
    import io

    from glowcore.ops.align import read_photo

    arr = read_photo(source)
    icc = exif = None
    try:
        from PIL import Image

        fp: Any = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
        with Image.open(fp) as im:
            icc = im.info.get("icc_profile")
            ex = im.getexif()
            if len(ex):
                ex[0x0112] = 1
                exif = ex.tobytes()
    except Exception:  # metadata is a nicety: never fail the photo over it
        pass
    return arr, icc, exif


def centre_frame(width: int, height: int) -> np.ndarray:
    """The photo -> frame transform of the centre square (the model's framing of a photo with no face)."""
    from glowcore.ops.alignnet import FRAME

    side = float(min(width, height))
    x0, y0 = (width - side) / 2.0, (height - side) / 2.0
    k = FRAME / side
    return np.array([[k, 0.0, -x0 * k], [0.0, k, -y0 * k]])


def align_face(arr: np.ndarray, size: int, label: str, box: Optional[tuple] = None, centre_crop: bool = False, face: int = 0) -> tuple[Any, bool]:
    """Align the face (or the given ``box``; or the centre square when asked, or when no usable
    face is found). Returns ``(aligned, found)``; ``aligned.message`` says what was done in one line."""
    from glowcore.ops.align import AlignedFace, align, render_face

    if not centre_crop:
        try:
            return align(arr, size, box=box, face=face, name=label), True
        except ValueError as e:
            if box is not None or not ("no face found" in str(e) or "too small" in str(e)):
                raise
            why = re.sub(r" \(looked for [^)]*\)", "", str(e).split("; give the face box")[0])
    else:
        why = f"{label}: centre square asked for"
    h, w = arr.shape[:2]
    m = centre_frame(w, h)
    side = min(w, h)
    out = AlignedFace(face=render_face(arr, m, size), transform=m, box=((w - side) / 2, (h - side) / 2, side, side), photo_size=(w, h))
    out.message = f"{why}; used the centre square. Draw the face box on the photo to place it."
    return out, False


def frame_corners(aligned: Any) -> list[tuple[float, float]]:
    """The corners of the face's frame in photo pixels (a turned square)."""
    from glowcore.ops.alignnet import FRAME, apply, invert

    pts = apply(invert(aligned.transform), np.array([[0, 0], [FRAME, 0], [FRAME, FRAME], [0, FRAME]], dtype=np.float64))
    return [(float(x), float(y)) for x, y in pts]


def face_region(session: PhotoSession, spread: bool = True) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the face's frame in the photo with a margin, clipped to the photo. The
    paste mask lies inside the frame (with ``spread``, the change reaches the frame widened by
    glowcore.ops.paste.SPREAD on every side), so nothing outside this region ever changes."""
    import math

    pts = np.array(session.frame, dtype=np.float64)
    m = session.aligned.transform
    if spread:
        from glowcore.ops.alignnet import FRAME, apply, invert
        from glowcore.ops.paste import spread_margin

        e = spread_margin(session.aligned.size)[1]
        pts = apply(invert(m), np.array([[-e, -e], [FRAME + e, -e], [FRAME + e, FRAME + e], [-e, FRAME + e]], dtype=np.float64))
    pad = 4.0 + 2.0 / math.hypot(m[0, 0], m[1, 0])
    h, w = session.array.shape[:2]
    x0, y0 = (max(0, int(math.floor(v - pad))) for v in pts.min(0))
    x1, y1 = min(w, int(math.ceil(pts[:, 0].max() + pad))), min(h, int(math.ceil(pts[:, 1].max() + pad)))
    return x0, y0, max(x0, x1), max(y0, y1)


def composite_patch(session: PhotoSession, edited: Optional[np.ndarray], scale: float = 1.0, spread: bool = True) -> Optional[tuple[int, int, int, int, np.ndarray]]:
    """The edited face pasted back, as the changed region only: ``(x0, y0, x1, y1, pixels)``, or None for
    no change. Pasting into the face's region costs the same for any photo size, and only the
    region travels to the GUI (which draws it over the photo). ``scale`` < 1: the region is
    reduced by it first (area filter) and pasted at that resolution, for a display that shows the
    photo reduced; the pixels then cover the region's size in the photo, not their own."""
    if edited is None:
        return None
    from dataclasses import replace

    from glowcore.ops.paste import paste

    x0, y0, x1, y1 = face_region(session, spread)
    if x1 <= x0 or y1 <= y0:
        return None
    region = session.array[y0:y1, x0:x1]
    sx = sy = 1.0
    if scale < 1.0:
        import cv2

        w, h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        region = cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA)
        sx, sy = w / (x1 - x0), h / (y1 - y0)
    m = session.aligned.transform.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)  # region coordinates -> frame
    m[:, 0] /= sx
    m[:, 1] /= sy
    crop = replace(session.aligned, transform=m, photo_size=(region.shape[1], region.shape[0]))
    return x0, y0, x1, y1, paste(crop, edited, session.reconstruction, region, spread=spread)


def composite(session: PhotoSession, edited: Optional[np.ndarray], spread: bool = True) -> np.ndarray:
    """The full photo with the edited face pasted back (``None``: the photo itself, unchanged)."""
    patch = composite_patch(session, edited, spread=spread)  # full resolution
    if patch is None:
        return session.array
    x0, y0, x1, y1, pixels = patch
    out = session.array.copy()
    out[y0:y1, x0:x1] = pixels
    return out


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def save(image: np.ndarray, path: str, session: PhotoSession, quality: int = 95, overwrite_input: bool = False) -> str:
    """Write ``image`` (the full-size result) to ``path``; refuses the input file itself unless
    ``overwrite_input``. Returns a one-line message."""
    from PIL import Image

    from glowcore.io.fileio import atomic_path

    dst = Path(path)
    fmt = SAVE_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise ValueError(f"{dst.name}: the file name must end in {', '.join(SAVE_FORMATS)}")
    if session.path and not overwrite_input and dst.exists() and same_file(str(dst), session.path):
        raise ValueError(f"{dst.name}: is the photo you opened; choose another name (or confirm overwriting it)")
    opts: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        opts["quality"] = int(min(100, max(1, quality)))
    if session.icc and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        opts["icc_profile"] = session.icc
    if session.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        opts["exif"] = session.exif
    with atomic_path(dst, suffix=dst.suffix) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **opts)
    h, w = image.shape[:2]
    q = f", quality {opts['quality']}" if "quality" in opts else ""
    return f"saved {dst.name} ({w}x{h}{q})"
