"""Image files: which names count as images, finding them under a folder, the pixel limit that
guards against decompression bombs, and the conversion of any Pillow mode to RGB (or L).

The one source for the photo commands (:mod:`glowcore.ops.photo`), the data sets
(:mod:`glowcore.data.datasets`) and inpainting masks. Torch-free; Pillow is imported on use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .walk import list_files

__all__ = ["MAX_PIXELS", "IMAGE_SUFFIXES", "is_image_name", "image_files", "list_images", "check_image_file", "to_rgb"]

#: Images with more pixels than this are refused before decoding (twice Pillow's own bomb limit,
#: which can be switched off globally, so it is not relied on).
MAX_PIXELS = 2 * 89_478_485
#: The file name suffixes (lower case) taken as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def image_files(folder: str | os.PathLike) -> list[str]:
    """Image files under ``folder``: relative POSIX paths, recursive, sorted; hidden ones skipped;
    links followed once per real folder and file (:mod:`glowcore.io.walk`)."""
    return list_files(Path(folder), is_image_name)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted) as paths; ``ValueError`` if there are none."""
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    files = [p for p in (root / f for f in image_files(root)) if p.is_file()]
    if not files:
        raise ValueError(f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def check_image_file(path: str | os.PathLike, what: str = "image") -> Path:
    """``path`` as a Path if it is a regular file; else one error naming it: missing
    (``FileNotFoundError``), a folder, or a pipe or device, which would block or never end."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such {what} file")
    if p.is_dir():
        raise ValueError(f"{p}: the {what} is a folder, not an image")
    if not p.is_file():
        raise ValueError(f"{p}: the {what} is not a regular file (a pipe or a device?)")
    return p


def to_rgb(im, channels: int = 3):
    """Any Pillow mode -> RGB (or L for ``channels=1``): transparency composited on white,
    16/32-bit images scaled to 8 bits (Pillow's own conversion clips them)."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or (arr.size and arr.max() > 255) else 255.0
        im = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    target = "L" if channels == 1 else "RGB"
    return im.convert(target) if im.mode != target else im
