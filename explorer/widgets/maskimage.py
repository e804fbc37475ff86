"""The inpainting mask as a QImage, shared by the face canvas and the photo view: a transparent
ARGB image the size of the picture, painted in :data:`MASK_COLOR` where the model should fill in."""

from __future__ import annotations

from typing import Optional

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


class MaskLayer:
    """The mask interface of a widget that paints one (the face canvas, the photo view; the Inpaint
    tab talks to either): the widget keeps the mask in ``_mask``, has a ``mask_changed`` signal,
    and says which picture the mask covers in :meth:`_masked_picture`."""

    _mask: Optional[QImage] = None

    def _masked_picture(self) -> tuple[Optional[QImage], str]:
        """The picture the mask covers (None: nothing shown) and its name for messages."""
        raise NotImplementedError

    def _mask_edited(self) -> None:
        self.mask_changed.emit()  # type: ignore[attr-defined]
        self.update()  # type: ignore[attr-defined]

    def mask_array(self) -> np.ndarray:
        """The painted mask as bool (H, W) at the picture's size, True where the model should fill in."""
        return np.zeros((0, 0), dtype=bool) if self._mask is None else to_array(self._mask)

    def set_mask_array(self, mask: np.ndarray) -> None:
        picture, what = self._masked_picture()
        if picture is None:
            return
        self._mask = from_array(mask, picture.size(), what)
        self._mask_edited()

    def clear_mask(self) -> None:
        if self._mask is not None:
            self._mask.fill(Qt.GlobalColor.transparent)
            self._mask_edited()

    def invert_mask(self) -> None:
        if self._mask is not None:
            self.set_mask_array(~self.mask_array())
