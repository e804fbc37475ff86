"""Writing pictures from the GUI thread safely: a temporary file beside the target, then a rename
(``glowcore.io.fileio.atomic_path``, which imports no torch: glowcore's top level is lazy)."""

from __future__ import annotations

from PySide6.QtGui import QImage

__all__ = ["save_image_atomic"]


def save_image_atomic(image: QImage, path: str) -> None:
    """Write ``image`` to ``path`` (format from the suffix) through a temporary file and a rename;
    on failure the file at ``path`` stays as it was and no temporary file is left."""
    from glowcore.io.fileio import atomic_path  # (torch-free; imported when first needed)

    with atomic_path(path) as tmp:
        fmt = (tmp.suffix.lstrip(".") or "png").upper()
        if not image.save(str(tmp), fmt):
            raise OSError(f"{path}: could not be written as {fmt}")
