"""The inpainting mask as a QImage, shared by the face canvas and the photo view: a transparent
ARGB image the size of the picture, painted in :data:`MASK_COLOR` where the model should fill in."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen

MASK_COLOR = QColor(255, 80, 90)


def blank(size: QSize) -> QImage:
    """An empty mask of ``size``."""
    img = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    return img


def to_array(img: QImage) -> np.ndarray:
    """The mask as bool (H, W), True where painted."""
    m = img.convertToFormat(QImage.Format.Format_ARGB32)
    w, h, bpl = m.width(), m.height(), m.bytesPerLine()
    buf = np.frombuffer(m.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl // 4, 4)[:, :w]
    return buf[..., 3] >= 128  # alpha (BGRA in memory on little-endian machines)


def from_array(mask: np.ndarray, size: QSize, what: str) -> QImage:
    """A mask image from bool (H, W) ``mask``, which must match ``size`` (``what``: the picture's
    name in the error)."""
    mask = np.asarray(mask, dtype=bool)
    h, w = size.height(), size.width()
    if mask.shape != (h, w):
        raise ValueError(f"mask shape {mask.shape} does not match the {what} ({h}, {w})")
    argb = np.zeros((h, w, 4), dtype=np.uint8)
    argb[mask] = (MASK_COLOR.blue(), MASK_COLOR.green(), MASK_COLOR.red(), 255)
    return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


def stroke(img: QImage, a: QPointF, b: QPointF, size: float, erase: bool) -> None:
    """Paint (or erase) a stroke from ``a`` to ``b`` (a dot where they are equal) of width ``size``
    in the mask's pixels."""
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    if erase:
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
    if a == b:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(MASK_COLOR)
        p.drawEllipse(a, max(0.5, size / 2), max(0.5, size / 2))
    else:
        p.setPen(QPen(MASK_COLOR, max(1.0, size), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        p.drawLine(a, b)
    p.end()
