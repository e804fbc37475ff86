"""The face canvas: the picture scaled up, zoom and pan, before/after, and the inpainting mask brush."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from . import maskimage

__all__ = ["FaceCanvas"]



class FaceCanvas(maskimage.MaskLayer, QWidget):
    """Shows a ``QImage`` scaled to fit (times ``zoom``), smooth or pixelated.

    * ``compare``: ``"off"`` or ``"split"`` (before on the left of a draggable divider, after on the
      right); :meth:`hold_before` shows the unedited face while a key is held.
    * Mask mode: the left button paints the inpainting mask (``brush_size`` in image pixels; the
      eraser removes), shown as a translucent red overlay. :meth:`mask_array` reads it.

    ``painted(stamp)`` is emitted after each paint that put a picture on screen, with the stamp
    given to :meth:`set_image` (the benchmark measures latency with it).
    """

    painted = Signal(int)
    mask_changed = Signal()
    zoom_changed = Signal(float)
    brush_changed = Signal(float)  # Shift+wheel changed the brush size

    def __init__(self, parent: Optional[QWidget] = None, *, interactive: bool = True) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus if interactive else Qt.FocusPolicy.NoFocus)
        self._interactive = interactive
        self._image: Optional[QImage] = None
        self._before: Optional[QImage] = None
        self._stamp = 0
        self.smooth = True
        self.zoom = 1.0  # 1 = fit
        self._pan = QPointF(0, 0)
        self.compare = "off"
        self._split = 0.5
        self._holding = False
        self.placeholder = ""
        self.caption = ""
        # mask
        self.mask_mode = False
        self.brush_size = 6.0
        self.erase = False
        self.show_overlay = True
        self._mask: Optional[QImage] = None
        self._last: Optional[QPointF] = None
        self._drag: Optional[str] = None
        self._drag_origin = QPointF()
        self._pan_origin = QPointF()
        self._mouse: Optional[QPointF] = None

    # ------------------------------------------------------------------ content
    def set_image(self, image: Optional[QImage], stamp: int = 0) -> None:
        self._image = image
        self._stamp = stamp
        if image is not None and (self._mask is None or self._mask.size() != image.size()):
            self._mask = maskimage.blank(image.size())
            self.mask_changed.emit()
        self.update()

    def set_before(self, image: Optional[QImage]) -> None:
        self._before = image
        self.update()

    def image(self) -> Optional[QImage]:
        return self._image

    def has_before(self) -> bool:
        """Whether a picture before the edits is known (to compare with)."""
        return self._before is not None

    def stamp(self) -> int:
        return self._stamp

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def set_smooth(self, on: bool) -> None:
        self.smooth = bool(on)
        self.update()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = float(min(16.0, max(0.25, zoom)))
        if self.zoom <= 1.0:
            self._pan = QPointF(0, 0)
        self.zoom_changed.emit(self.zoom)
        self.update()

    def set_compare(self, mode: str) -> None:
        self.compare = mode
        self.update()

    def hold_before(self, on: bool) -> None:
        self._holding = bool(on)
        self.update()

    # ------------------------------------------------------------------ mask
    def set_mask_mode(self, on: bool) -> None:
        """Paint the mask (the Inpaint tab) or not. The window says it on every state change (every
        slider move): only a change repaints."""
        if bool(on) == self.mask_mode:
            return
        self.mask_mode = bool(on)
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.update()

    def _masked_picture(self) -> tuple[Optional[QImage], str]:
        return self._image, "picture"

    def _paint_mask(self, a: QPointF, b: QPointF) -> None:
        if self._mask is None:
            return
        maskimage.stroke(self._mask, a, b, self.brush_size, self.erase)
        self._mask_edited()

    # ------------------------------------------------------------------ geometry
    def image_rect(self) -> QRectF:
        """Where the picture is drawn, in widget coordinates."""
        if self._image is None or self._image.isNull():
            return QRectF()
        iw, ih = self._image.width(), self._image.height()
        margin = 16
        fit = min((self.width() - 2 * margin) / iw, (self.height() - 2 * margin) / ih)
        s = max(0.01, fit * self.zoom)
        w, h = iw * s, ih * s
        x = (self.width() - w) / 2 + self._pan.x()
        y = (self.height() - h) / 2 + self._pan.y()
        return QRectF(x, y, w, h)

    def to_image(self, pos: QPointF) -> QPointF:
        """Widget coordinates -> image pixel coordinates."""
        r = self.image_rect()
        if r.isEmpty() or self._image is None:
            return QPointF()
        sx = self._image.width() / r.width()
        return QPointF((pos.x() - r.x()) * sx, (pos.y() - r.y()) * sx)

    def from_image(self, pt: QPointF) -> QPoint:
        """Image pixel coordinates -> widget coordinates (integer)."""
        r = self.image_rect()
        if r.isEmpty() or self._image is None:
            return QPoint()
        s = r.width() / self._image.width()
        return QPoint(int(round(r.x() + pt.x() * s)), int(round(r.y() + pt.y() * s)))

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#121419"))
        if self._image is None or self._image.isNull():
            if self.placeholder:
                p.setPen(QColor("#8b93a1"))
                f = QFont(self.font())
                f.setPointSizeF(f.pointSizeF() * 1.2)
                p.setFont(f)
                p.drawText(self.rect().adjusted(24, 24, -24, -24), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            p.end()
            return
        r = self.image_rect()
        # soft frame behind the picture
        shadow = QPainterPath()
        shadow.addRoundedRect(r.adjusted(-6, -6, 6, 6), 8, 8)
        p.fillPath(shadow, QColor(0, 0, 0, 90))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        after = self._image
        before = self._before if self._before is not None else None
        if self._holding and before is not None:
            p.drawImage(r, before)
            self._label(p, r.topLeft() + QPointF(10, 10), "Before")
        elif self.compare == "split" and before is not None:
            xs = r.x() + r.width() * self._split
            p.save()
            p.setClipRect(QRectF(r.x(), r.y(), xs - r.x(), r.height()))
            p.drawImage(r, before)
            p.restore()
            p.save()
            p.setClipRect(QRectF(xs, r.y(), r.right() - xs, r.height()))
            p.drawImage(r, after)
            p.restore()
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(xs, r.top()), QPointF(xs, r.bottom()))
            p.setBrush(QColor("#5b9dff"))
            p.drawEllipse(QPointF(xs, r.center().y()), 7, 7)
            self._label(p, r.topLeft() + QPointF(10, 10), "Before")
            self._label(p, QPointF(r.right() - 60, r.top() + 10), "After")
        else:
            p.drawImage(r, after)
        if self.mask_mode and self.show_overlay and self._mask is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            p.setOpacity(0.5)
            p.drawImage(r, self._mask)
            p.setOpacity(1.0)
        if self.mask_mode and self._mouse is not None and r.contains(self._mouse):
            rad = self.brush_size / 2 * r.width() / self._image.width()
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor(255, 255, 255, 200), 1.2, Qt.PenStyle.DashLine if self.erase else Qt.PenStyle.SolidLine))
            p.drawEllipse(self._mouse, rad, rad)
        if self.caption:
            self._label(p, QPointF(r.x() + 10, r.bottom() - 34), self.caption)
        p.end()
        self.painted.emit(self._stamp)

    @staticmethod
    def _label(p: QPainter, at: QPointF, text: str) -> None:
        fm = p.fontMetrics()
        w = fm.horizontalAdvance(text) + 16
        h = fm.height() + 8
        path = QPainterPath()
        path.addRoundedRect(QRectF(at.x(), at.y(), w, h), 6, 6)
        p.fillPath(path, QColor(0, 0, 0, 150))
        p.setPen(QColor("white"))
        p.drawText(QRectF(at.x(), at.y(), w, h), Qt.AlignmentFlag.AlignCenter, text)

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if not self._interactive or self._image is None:
            return super().mousePressEvent(e)
        pos = e.position()
        r = self.image_rect()
        if e.button() == Qt.MouseButton.LeftButton and self.mask_mode:
            self._drag = "paint"
            pt = self.to_image(pos)
            self._last = pt
            self._paint_mask(pt, pt)
        elif e.button() == Qt.MouseButton.LeftButton and self.compare == "split" and abs(pos.x() - (r.x() + r.width() * self._split)) < 14:
            self._drag = "split"
        elif e.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton) and self.zoom > 1.0:
            self._drag = "pan"
            self._drag_origin = pos
            self._pan_origin = QPointF(self._pan)
        e.accept()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        pos = e.position()
        self._mouse = pos
        if self._drag == "paint":
            pt = self.to_image(pos)
            self._paint_mask(self._last or pt, pt)
            self._last = pt
        elif self._drag == "split":
            r = self.image_rect()
            if r.width() > 0:
                self._split = min(1.0, max(0.0, (pos.x() - r.x()) / r.width()))
            self.update()
        elif self._drag == "pan":
            self._pan = self._pan_origin + (pos - self._drag_origin)
            self.update()
        elif self.mask_mode:
            self.update()
        e.accept()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self._drag = None
        self._last = None
        e.accept()

    def leaveEvent(self, e) -> None:  # noqa: N802
        self._mouse = None
        self.update()

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        if not self._interactive or self._image is None:
            return super().wheelEvent(e)
        steps = e.angleDelta().y() / 120.0
        if self.mask_mode and e.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.brush_size = float(min(32, max(1, round(self.brush_size + steps))))
            self.brush_changed.emit(self.brush_size)
            self.update()
        else:
            self.set_zoom(self.zoom * (1.15**steps))
        e.accept()
