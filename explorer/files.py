"""Writing pictures from the GUI thread safely: a temporary file, then a rename.

glowcore has the same helper (``glowcore.fileio.atomic_path``), but importing any glowcore module
imports torch today (``glowcore/__init__`` loads the model classes eagerly), and the GUI thread
never imports torch. Once glowcore's top level imports lazily, this wrapper can use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PySide6.QtGui import QImage

__all__ = ["save_image_atomic"]


def save_image_atomic(image: QImage, path: str) -> None:
    """Write ``image`` to ``path`` (format from the suffix) through a temporary file and a rename."""
    target = Path(path)
    fmt = (target.suffix.lstrip(".") or "png").upper()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=str(target.parent))
    os.close(fd)
    try:
        if not image.save(tmp, fmt):
            raise OSError(f"{path}: could not be written as {fmt}")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
