"""Loading a user's photo and framing it like the training faces.

:func:`load_photo` reads any image Pillow can open (a path, raw bytes, a file object or a
``PIL.Image``), applies the EXIF orientation, converts it to RGB, and crops a square around the face
so that the face sits where CelebA's aligned faces sit in the 64x64 training images; then resizes.

Framing. CelebA's training images are the 148x148 box (15, 35, 163, 183) of the 178x218 aligned
originals. Running OpenCV's bundled frontal-face Haar cascade on 288 of those originals (12 had no
detection) gives, relative to the detected box (side ``w``, centre ``cx, cy``), a crop box of side
``1.41 w`` (median; spread 0.15) centred at ``(cx, cy - 0.138 w)`` (median; spread 0.021 w
horizontally, 0.046 w vertically): :data:`FACE_BOX_SCALE` and :data:`FACE_BOX_OFFSET`. A crop box
that sticks out of the photo is filled by repeating the border pixels. A photo that is already
framed (the crop box covers almost the whole square photo) is used as it is, so most of CelebA's
own 64x64 faces come back unchanged (936 of the first 1000 of celeba64; the rest are recropped:
``benchmarks/align_benchmark.py``). No face found: the centre square, and the message says so.
For a photo larger than the model, :func:`glowcore.ops.align.align` frames the face with rotation.

Large photos are reduced before they are fully decoded (``Image.draft`` for JPEG, then
``Image.reduce``), so a 100-megapixel photo never needs its full-size pixels in memory. Images
above :data:`glowcore.io.imagefiles.MAX_PIXELS` are refused as possible decompression bombs.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..io import imagefiles
from ..io.imagefiles import to_rgb

__all__ = [
    "FACE_BOX_SCALE",
    "FACE_BOX_OFFSET",
    "FramedPhoto",
    "open_image",
    "frame_photo",
    "load_photo",
    "load_photos",
    "detect_faces",
]

#: Side of the training crop box divided by the side of the Haar cascade's face box.
FACE_BOX_SCALE = 1.41
#: Centre of the crop box minus the centre of the face box, in units of the face box's side.
FACE_BOX_OFFSET = (0.0, -0.138)
#: The longest side face detection works at; larger photos are reduced first.
WORK_SIDE = 1024
#: A crop box whose IoU with the whole (square) photo reaches this means "already framed".
ALREADY_FRAMED_IOU = 0.8

PhotoSource = Any  # str | os.PathLike | bytes | BinaryIO | PIL.Image.Image


@dataclass
class FramedPhoto:
    """A framed photo: the ``(size, size, C)`` uint8 ``image``, a human-readable ``message``,
    the crop ``box`` (left, top, right, bottom) in the full-resolution oriented photo's pixel
    coordinates, that photo's ``source_size`` (width, height), and whether a face was ``found``."""

    image: np.ndarray
    message: str
    box: tuple[float, float, float, float]
    source_size: tuple[int, int]
    found: bool


def _describe(source: PhotoSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "image data"
    name = getattr(source, "filename", None) or getattr(source, "name", None)
    return str(name) if name else "image"


def open_image(source: PhotoSource, max_side: int | None = None, channels: int = 3):
    """Open ``source`` as an oriented RGB (or L for ``channels=1``) ``PIL.Image``.

    With ``max_side``, large images are reduced while decoding (JPEG's DCT scaling, then
    ``reduce``, then a bicubic thumbnail) to at most ``max_side`` pixels on the longest side, so
    memory stays bounded. Raises ``FileNotFoundError`` for a missing file and ``ValueError``
    naming the source and the problem for anything that is not a readable image or is too large.
    """
    return _open(source, max_side, channels)[0]


def _open(source: PhotoSource, max_side: int | None, channels: int):
    """:func:`open_image`, also returning the oriented full-resolution size (width, height)."""
    from PIL import Image, UnidentifiedImageError

    where = _describe(source)
    if isinstance(source, Image.Image):
        im = source
        opened = False
    else:
        if isinstance(source, (str, os.PathLike)):
            fp: Any = imagefiles.check_image_file(source)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            fp = io.BytesIO(bytes(source))
        elif hasattr(source, "read"):
            fp = source
        else:
            raise TypeError(f"expected a path, bytes, a file object or a PIL image, got {type(source).__name__}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(fp)
        except Image.DecompressionBombError as e:
            raise ValueError(f"{where}: refused, the image is too large ({e})") from None
        except UnidentifiedImageError:
            raise ValueError(f"{where}: not an image (Pillow cannot identify it; supported: JPEG, PNG, WebP, BMP, GIF, TIFF)") from None
        except Exception as e:  # Pillow's plugins raise many kinds (e.g. ValueError "Truncated IHDR chunk")
            raise ValueError(f"{where}: cannot be read ({e})") from None
        opened = True
    w, h = im.size
    if w < 1 or h < 1:
        raise ValueError(f"{where}: empty image ({w}x{h})")
    if w * h > imagefiles.MAX_PIXELS:
        raise ValueError(
            f"{where}: refused, {w}x{h} = {w * h / 1e6:.0f} megapixels is more than the "
            f"{imagefiles.MAX_PIXELS / 1e6:.0f}-megapixel limit (possible decompression bomb)"
        )
    try:
        orientation = int(im.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF: ignore it, as viewers do
        orientation = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if max_side is not None and opened and max(w, h) > 2 * max_side:
                # JPEG: decode at 1/2, 1/4 or 1/8 scale directly (never below the requested size).
                k = max(w, h) / max_side
                im.draft(None, (max(1, int(w / k)), max(1, int(h / k))))
            im.load()
            im = to_rgb(im, channels)
            if max_side is not None:
                factor = max(im.size) // max_side
                if factor >= 2:
                    im = im.reduce(factor)
            im = _apply_orientation(im, orientation)
    except Exception as e:  # OSError, ValueError, EOFError, TypeError (bad TIFF tags), struct.error, ...
        raise ValueError(f"{where}: cannot be decoded ({type(e).__name__}: {e}); the file may be truncated or corrupted") from None
    if max_side is not None and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    full = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    return im, full


def _apply_orientation(im, orientation: int):
    """Apply an EXIF orientation (1..8) to ``im`` (used when ``reduce`` dropped the EXIF data)."""
    from PIL import Image

    T = Image.Transpose
    ops = {
        2: [T.FLIP_LEFT_RIGHT],
        3: [T.ROTATE_180],
        4: [T.FLIP_TOP_BOTTOM],
        5: [T.TRANSPOSE],
        6: [T.ROTATE_270],
        7: [T.TRANSVERSE],
        8: [T.ROTATE_90],
    }
    for op in ops.get(int(orientation), []):
        im = im.transpose(op)
    return im


# ----------------------------------------------------------------------------- face detection
_CASCADE = None


def _cascade():
    """OpenCV's bundled frontal-face Haar cascade, loaded once; ``None`` when unavailable."""
    global _CASCADE
    if _CASCADE is None:
        try:
            import cv2

            path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
            cascade = cv2.CascadeClassifier(path)
            _CASCADE = cascade if not cascade.empty() else False
        except (ImportError, AttributeError):  # OpenCV without the bundled cascades (5.x)
            _CASCADE = False
    return _CASCADE or None


def detect_faces(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces in a uint8 grayscale image as ``(x, y, w, h)`` boxes, largest first.

    Raises ``RuntimeError`` when OpenCV's Haar cascade is not available.
    """
    cascade = _cascade()
    if cascade is None:
        raise RuntimeError("face detection needs OpenCV's bundled Haar cascades (opencv-python-headless < 5)")
    h, w = gray.shape[:2]
    min_side = max(20, min(h, w) // 12)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    boxes = [tuple(int(v) for v in f) for f in (faces if len(faces) else [])]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)  # type: ignore[return-value]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre_square(w: int, h: int) -> tuple[float, float, float, float]:
    s = min(w, h)
    left, top = (w - s) / 2, (h - s) / 2
    return (left, top, left + s, top + s)


def _crop_resize(im, box: Sequence[float], size: int):
    """Crop ``box`` (may extend past the borders: edges repeated) and resize to ``size``."""
    from PIL import Image

    w, h = im.size
    left, top, right, bottom = box
    pad_l = max(0, int(np.ceil(-left)))
    pad_t = max(0, int(np.ceil(-top)))
    pad_r = max(0, int(np.ceil(right - w)))
    pad_b = max(0, int(np.ceil(bottom - h)))
    if pad_l or pad_t or pad_r or pad_b:
        arr = np.asarray(im)
        widths = ((pad_t, pad_b), (pad_l, pad_r)) + (((0, 0),) if arr.ndim == 3 else ())
        im = Image.fromarray(np.pad(arr, widths, mode="edge"), im.mode)
        left, right = left + pad_l, right + pad_l
        top, bottom = top + pad_t, bottom + pad_t
    W, H = im.size
    fbox = (max(0.0, left), max(0.0, top), min(float(W), right), min(float(H), bottom))
    return im.resize((size, size), Image.Resampling.BICUBIC, box=fbox)


def frame_photo(
    source: PhotoSource,
    size: int,
    frame_face: bool = True,
    *,
    channels: int = 3,
    work_side: int = WORK_SIDE,
) -> FramedPhoto:
    """Read ``source`` and frame it like the training faces; see :func:`load_photo`.

    Also returns the crop box, so that a mask painted over the same photo can be cropped alike
    (:func:`crop_like`).
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    where = _describe(source)
    name = Path(where).name if isinstance(source, (str, os.PathLike)) else where
    im, full = _open(source, max(work_side, 4 * size), channels)
    w, h = im.size
    found = False
    if not frame_face:
        box = _centre_square(w, h)
        message = f"{name}: centre crop (face framing off)"
    else:
        gray = np.asarray(im.convert("L"))
        try:
            faces = detect_faces(gray)
            reason = "no face found"
        except RuntimeError:
            faces, reason = [], "face detection unavailable (OpenCV Haar cascade missing)"
        if faces:
            x, y, fw, fh = faces[0]
            side = FACE_BOX_SCALE * fw
            cx = x + fw / 2 + FACE_BOX_OFFSET[0] * fw
            cy = y + fh / 2 + FACE_BOX_OFFSET[1] * fw
            box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
            found = True
            more = f" ({len(faces)} faces; used the largest)" if len(faces) > 1 else ""
            if w == h and _iou(box, (0, 0, w, h)) >= ALREADY_FRAMED_IOU:
                box = (0.0, 0.0, float(w), float(h))
                message = f"{name}: face found, photo already framed{more}"
            else:
                message = f"{name}: face found at x={x} y={y} size {fw} px{more}; framed like the training faces"
        else:
            box = _centre_square(w, h)
            message = f"{name}: {reason}; used a centre crop"
    out = _crop_resize(im, box, size)
    arr = np.array(out, dtype=np.uint8)  # a writable copy
    if arr.ndim == 2:
        arr = arr[..., None]
    k = full[0] / w  # the box in the full-resolution photo's coordinates
    return FramedPhoto(np.ascontiguousarray(arr), message, tuple(float(v) * k for v in box), full, found)  # type: ignore[arg-type]


def load_photo(source: PhotoSource, size: int, frame_face: bool = True, *, channels: int = 3) -> tuple[np.ndarray, str]:
    """Read a photo and frame it like the training faces.

    ``source`` is a path, raw bytes, a binary file object or a ``PIL.Image`` of any format Pillow
    reads (JPEG, PNG, WebP, BMP, ...); grayscale, RGBA (composited on white), palette and 16-bit
    images are converted; the EXIF orientation is applied; very large photos are reduced while
    decoding. With ``frame_face`` the largest face found by OpenCV's Haar cascade is cropped where
    CelebA faces sit; with no face (or ``frame_face=False``) the centre square is used.

    Returns the ``(size, size, channels)`` uint8 image (``channels`` 3 by default, 1 for gray
    models) and a one-line message saying what was done (e.g. that no face was found).
    Raises ``FileNotFoundError`` or ``ValueError`` naming the file and the problem.
    """
    framed = frame_photo(source, size, frame_face, channels=channels)
    return framed.image, framed.message


def crop_like(image_or_mask, framed: FramedPhoto, size: int, resample: str = "nearest") -> np.ndarray:
    """Crop and resize another image of the photo's (oriented) size with the same box as
    ``framed`` (e.g. a mask painted over the original photo)."""
    from PIL import Image

    im = image_or_mask if isinstance(image_or_mask, Image.Image) else Image.fromarray(np.asarray(image_or_mask))
    if im.size != framed.source_size:
        raise ValueError(f"expected an image of {framed.source_size[0]}x{framed.source_size[1]}, got {im.size[0]}x{im.size[1]}")
    w, h = im.size
    left, top, right, bottom = framed.box
    # Pad with edge values like the photo, then crop with the chosen filter.
    filt = Image.Resampling.NEAREST if resample == "nearest" else Image.Resampling.BICUBIC
    pad = [max(0, int(np.ceil(v))) for v in (-left, -top, right - w, bottom - h)]
    if any(pad):
        arr = np.asarray(im)
        widths = ((pad[1], pad[3]), (pad[0], pad[2])) + (((0, 0),) if arr.ndim == 3 else ())
        im = Image.fromarray(np.pad(arr, widths, mode="edge"))
        left, right, top, bottom = left + pad[0], right + pad[0], top + pad[1], bottom + pad[1]
    W, H = im.size
    box = (max(0.0, left), max(0.0, top), min(float(W), right), min(float(H), bottom))
    return np.asarray(im.resize((size, size), filt, box=box))


def load_photos(
    sources: str | os.PathLike | Iterable[PhotoSource],
    size: int,
    frame_face: bool = True,
    *,
    channels: int = 3,
    skip_bad: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    cancel=None,
) -> tuple[np.ndarray, list[str]]:
    """Load many photos (a folder, or a list of sources) framed with :func:`load_photo`.

    Returns ``(N, size, size, channels)`` uint8 and one message per photo. With ``skip_bad``
    unreadable files are skipped (their message says so) instead of raising.
    """
    from ..base.progress import check_cancel, report

    items: list[Any]
    if isinstance(sources, (str, os.PathLike)):
        items = list(imagefiles.list_images(sources)) if Path(sources).is_dir() else [sources]
    else:
        items = list(sources)
    if not items:
        raise ValueError("no images given")
    out: list[np.ndarray] = []
    messages: list[str] = []
    for i, src in enumerate(items):
        check_cancel(cancel)
        try:
            img, msg = load_photo(src, size, frame_face, channels=channels)
            out.append(img)
            messages.append(msg)
        except (ValueError, FileNotFoundError) as e:
            if not skip_bad:
                raise
            messages.append(f"skipped: {e}")
        report(progress, i + 1, len(items), "loading photos")
    if not out:
        raise ValueError("none of the images could be read: " + "; ".join(messages[:3]))
    return np.stack(out), messages
