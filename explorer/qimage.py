"""numpy <-> QImage conversions (no torch). Safe on any thread: QImage, never QPixmap."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage

__all__ = ["array_to_qimage", "qimage_to_array", "qimage_to_png_bytes", "mask_to_array"]


def array_to_qimage(arr: np.ndarray) -> QImage:
    """uint8 (H, W, 3) RGB or (H, W) grey numpy array -> a QImage that owns its pixels."""
    a = np.ascontiguousarray(arr)
    if a.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = np.ascontiguousarray(a[..., 0])
    if a.ndim == 2:
        h, w = a.shape
        img = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8)
    elif a.ndim == 3 and a.shape[2] == 3:
        h, w, _ = a.shape
        img = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {a.shape}")
    return img.copy()  # detach from the numpy buffer


def qimage_to_array(img: QImage) -> np.ndarray:
    """QImage -> uint8 (H, W, 3) RGB numpy array (a copy)."""
    rgb = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h = rgb.width(), rgb.height()
    bpl = rgb.bytesPerLine()
    buf = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


def mask_to_array(img: QImage) -> np.ndarray:
    """A Grayscale8 mask QImage -> bool (H, W) numpy array (True = painted)."""
    g = img.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h = g.width(), g.height()
    bpl = g.bytesPerLine()
    buf = np.frombuffer(g.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, :w] >= 128


def qimage_to_png_bytes(img: QImage) -> bytes:
    """Encode a QImage as PNG bytes (e.g. a pasted picture, to send to the worker)."""
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    buf.close()
    return bytes(data.data())
