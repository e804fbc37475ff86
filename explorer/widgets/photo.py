"""The whole photo beside the face: zoom and pan, the face box and landmarks, before/after, and
a rectangle drawn by hand when no face was found, and the inpainting mask painted on the photo."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QPolygonF, QWheelEvent
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ..icons import icon
from . import maskimage

__all__ = ["PhotoView", "PhotoPanel"]


class PhotoView(maskimage.MaskLayer, QWidget):
    """Shows a photo fitted to the widget (wheel: zoom at the mouse; drag: pan; double-click: fit).

    Overlays, in photo pixels: the face's ``frame`` (a turned square), the detector's ``box``
    and the ``landmarks``. ``compare`` "split" shows the photo before the edits left of the
    divider and after it right; :meth:`hold_before` shows the photo before. In box mode
    (:meth:`set_box_mode`) a drag draws a rectangle and emits ``box_drawn(x, y, w, h)``. In mask
    mode (:meth:`set_mask_mode`, the Inpaint tab) the left button paints the inpainting mask over
    the photo at its own size (``brush_size`` in screen pixels; the eraser removes; the middle
    button pans), shown as a translucent red overlay; :meth:`mask_array` reads it, the same
    interface as the face canvas's mask.
    """

    box_drawn = Signal(float, float, float, float)
    face_picked = Signal(int)  # another detected face was clicked (its index, largest first)
    painted = Signal(int)  # the stamp of the composite painted
    zoom_changed = Signal(float)
    mask_changed = Signal()
    brush_changed = Signal(float)  # Shift+wheel changed the brush size

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 200)
        self.setMouseTracking(True)
        self._before: Optional[QImage] = None
        self._patch: Optional[QImage] = None  # the edited region, drawn over the photo
        self._offset = QPointF(0, 0)
        self._patch_size = QSizeF(0, 0)  # the region's size in photo pixels
        self._stamp = 0
        self.frame: tuple = ()
        self.box: Optional[tuple[float, float, float, float]] = None
        self.faces: tuple = ()  # every detected face's box; the others are drawn grey, click one to use it
        self.face_index = 0
        self.landmarks: dict = {}
        self.show_marks = True
        self.compare = "off"
        self._holding = False
        self.zoom = 1.0  # 1 = fit
        self._centre = QPointF(0.5, 0.5)  # the photo point (fraction) at the widget's centre
        self._drag: Optional[QPointF] = None
        self.box_mode = False
        self._rubber: Optional[tuple[QPointF, QPointF]] = None
        self._fitted: Optional[tuple[tuple[int, int, int], QImage]] = None  # (key, the photo scaled to fit)
        # the inpainting mask, at the photo's size
        self.mask_mode = False
        self.brush_size = 16.0  # screen pixels
        self.erase = False
        self.show_overlay = True
        self._mask: Optional[QImage] = None
        self._painting: Optional[QPointF] = None  # the last point of the stroke being painted (photo pixels)
        self._mouse: Optional[QPointF] = None

    # ------------------------------------------------------------------ content
    def set_photo(self, image: QImage, keep_view: bool = False) -> None:
        """A new photo: shown as it is (before and after), fitted. ``keep_view``: another version
        of the same photo (a fill pasted in): zoom, pan and the mask stay."""
        same = keep_view and self._before is not None and self._before.size() == image.size()
        self._before = image
        self._fitted = None
        self._patch = None
        self._stamp = 0
        if not same:
            self.zoom = 1.0
            self._centre = QPointF(0.5, 0.5)
            self._mask = maskimage.blank(image.size())
            self.mask_changed.emit()
        self.update()

    def set_composite(self, patch: Optional[QImage], offset: tuple[int, int], size: tuple[int, int], stamp: int) -> None:
        """The edit pasted back: ``patch`` replaces ``size`` photo pixels from ``offset`` (None: none)."""
        self._patch = patch
        self._offset = QPointF(*offset)
        self._patch_size = QSizeF(*size)
        self._stamp = stamp
        self.update()
        self.painted.emit(stamp)

    def set_face(self, frame: tuple, box: Optional[tuple], landmarks: dict, faces: tuple = (), face_index: int = 0) -> None:
        self.frame, self.box, self.landmarks = tuple(frame), box, dict(landmarks)
        self.faces, self.face_index = tuple(faces), face_index
        self.update()

    def face_at(self, pos: QPointF) -> Optional[int]:
        """The index of the other detected face under ``pos`` (widget coordinates), if any."""
        pt = self.to_photo(pos)
        for i, (x, y, w, h) in enumerate(self.faces):
            if i != self.face_index and x <= pt.x() <= x + w and y <= pt.y() <= y + h:
                return i
        return None

    def before(self) -> Optional[QImage]:
        return self._before

    def image(self) -> Optional[QImage]:
        """The photo as edited (the newest composite), at full size (a patch pasted at a reduced
        resolution is enlarged into its place)."""
        if self._before is None or self._patch is None:
            return self._before
        out = self._before.convertToFormat(QImage.Format.Format_RGB888)
        p = QPainter(out)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(QRectF(self._offset, self._patch_size), self._patch)
        p.end()
        return out

    def patch_scale(self) -> float:
        """The resolution of the composite shown, as a fraction of the photo's (1: full)."""
        if self._patch is None or self._patch_size.width() <= 0:
            return 1.0
        return self._patch.width() / self._patch_size.width()

    def display_scale(self) -> float:
        """Screen pixels per photo pixel as shown now."""
        r, img = self.image_rect(), self._before
        if r.isEmpty() or img is None:
            return 1.0
        return r.width() / img.width() * self.devicePixelRatioF()

    def stamp(self) -> int:
        return self._stamp

    def set_compare(self, mode: str) -> None:
        self.compare = mode
        self.update()

    def hold_before(self, on: bool) -> None:
        self._holding = bool(on)
        self.update()

    def set_box_mode(self, on: bool) -> None:
        self.box_mode = bool(on)
        self._rubber = None
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.update()

    def set_zoom(self, zoom: float) -> None:
        old = self.zoom
        self.zoom = float(min(32.0, max(1.0, zoom)))
        if self.zoom == 1.0:
            self._centre = QPointF(0.5, 0.5)
        self.update()
        if self.zoom != old:
            self.zoom_changed.emit(self.zoom)

    # ------------------------------------------------------------------ the inpainting mask
    def set_mask_mode(self, on: bool) -> None:
        if bool(on) == self.mask_mode:  # said on every state change: only a change repaints
            return
        self.mask_mode = bool(on)
        self._painting = None
        if not self.box_mode:
            self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.update()

    def _masked_picture(self) -> tuple[Optional[QImage], str]:
        return self._before, "photo"

    def photo_brush(self) -> float:
        """The brush's diameter in photo pixels (``brush_size`` is in screen pixels)."""
        r, img = self.image_rect(), self._before
        if r.isEmpty() or img is None:
            return self.brush_size
        return max(1.0, self.brush_size * img.width() / r.width())

    def paint_mask(self, a: QPointF, b: QPointF) -> None:
        """Paint (or erase) a stroke from ``a`` to ``b``, in photo pixels, with the brush."""
        if self._mask is None:
            return
        maskimage.stroke(self._mask, a, b, self.photo_brush(), self.erase)
        self._mask_edited()

    # ------------------------------------------------------------------ geometry
    def image_rect(self) -> QRectF:
        """Where the photo is drawn, in widget coordinates."""
        img = self._before
        if img is None or img.isNull():
            return QRectF()
        s = min(self.width() / img.width(), self.height() / img.height()) * self.zoom
        w, h = img.width() * s, img.height() * s
        x = self.width() / 2 - self._centre.x() * w
        y = self.height() / 2 - self._centre.y() * h
        return QRectF(x, y, w, h)

    def to_photo(self, pos: QPointF) -> QPointF:
        r, img = self.image_rect(), self._before
        if r.isEmpty() or img is None:
            return QPointF()
        return QPointF((pos.x() - r.x()) * img.width() / r.width(), (pos.y() - r.y()) * img.height() / r.height())

    def from_photo(self, pt: QPointF) -> QPointF:
        r, img = self.image_rect(), self._before
        if r.isEmpty() or img is None:
            return QPointF()
        return QPointF(r.x() + pt.x() * r.width() / img.width(), r.y() + pt.y() * r.height() / img.height())

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        if self._before is None:
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 4)
        r = self.image_rect()
        self._draw_photo(p, r)
        if self._patch is not None and not self._holding:
            k = r.width() / self._before.width()
            o = self.from_photo(self._offset)
            p.drawImage(QRectF(o.x(), o.y(), self._patch_size.width() * k, self._patch_size.height() * k), self._patch)
        if self.compare == "split" and not self._holding:
            p.save()
            p.setClipRect(QRectF(r.x(), r.y(), r.width() / 2, r.height()))
            self._draw_photo(p, r)
            p.restore()
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(r.center().x(), r.top()), QPointF(r.center().x(), r.bottom()))
            self._label(p, QPointF(r.left() + 8, r.top() + 18), "before")
            self._label(p, QPointF(r.center().x() + 8, r.top() + 18), "after")
        elif self._holding:
            self._label(p, QPointF(r.left() + 8, r.top() + 18), "before")
        if self.mask_mode and self.show_overlay and self._mask is not None:
            p.setOpacity(0.5)
            p.drawImage(r, self._mask)
            p.setOpacity(1.0)
        if self.show_marks:
            self._paint_marks(p)
        if self.mask_mode and self._mouse is not None and r.contains(self._mouse):
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor(255, 255, 255, 200), 1.2, Qt.PenStyle.DashLine if self.erase else Qt.PenStyle.SolidLine))
            p.drawEllipse(self._mouse, self.brush_size / 2, self.brush_size / 2)
        if self._rubber is not None:
            a, b = self._rubber
            p.setPen(QPen(QColor(255, 200, 0), 2, Qt.PenStyle.DashLine))
            p.drawRect(QRectF(a, b).normalized())
        p.end()

    def _draw_photo(self, p: QPainter, r: QRectF) -> None:
        """The photo before the edits in ``r``; fitted, from a copy scaled once per size (a
        large photo scaled at every paint would slow the GUI thread)."""
        assert self._before is not None
        if self.zoom != 1.0:
            p.drawImage(r, self._before)
            return
        key = (int(self._before.cacheKey()), int(round(r.width())), int(round(r.height())))
        if self._fitted is None or self._fitted[0] != key:
            scaled = self._before.scaled(key[1], key[2], Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
            self._fitted = (key, scaled)
        p.drawImage(QPointF(round(r.x()), round(r.y())), self._fitted[1])

    def _paint_marks(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.box is not None:
            x, y, w, h = self.box
            p.setPen(QPen(QColor(255, 255, 255, 120), 1, Qt.PenStyle.DashLine))
            p.drawRect(QRectF(self.from_photo(QPointF(x, y)), self.from_photo(QPointF(x + w, y + h))))
        p.setPen(QPen(QColor(200, 200, 200, 160), 1, Qt.PenStyle.DotLine))
        for i, (x, y, w, h) in enumerate(self.faces):
            if i != self.face_index:  # another face: click it to edit that one
                p.drawRect(QRectF(self.from_photo(QPointF(x, y)), self.from_photo(QPointF(x + w, y + h))))
        if self.frame:
            p.setPen(QPen(QColor(80, 200, 255, 220), 2))
            p.drawPolygon(QPolygonF([self.from_photo(QPointF(x, y)) for x, y in self.frame]))
        p.setPen(QPen(QColor(20, 20, 20), 1))
        p.setBrush(QColor(255, 210, 60))
        for x, y in self.landmarks.values():
            p.drawEllipse(self.from_photo(QPointF(x, y)), 4, 4)

    @staticmethod
    def _label(p: QPainter, at: QPointF, text: str) -> None:
        p.setPen(QColor(0, 0, 0, 160))
        p.drawText(at + QPointF(1, 1), text)
        p.setPen(QColor(255, 255, 255))
        p.drawText(at, text)

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.MiddleButton:
            self._drag = e.position()  # pan, also while painting the mask
            return
        if e.button() != Qt.MouseButton.LeftButton:
            return
        if self.box_mode:
            self._rubber = (e.position(), e.position())
        elif self.mask_mode and self._mask is not None:
            pt = self.to_photo(e.position())
            self._painting = pt
            self.paint_mask(pt, pt)
        elif (i := self.face_at(e.position())) is not None:
            self.face_picked.emit(i)
        else:
            self._drag = e.position()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self.mask_mode:
            self._mouse = e.position()
            self.update()
        if self._painting is not None:
            pt = self.to_photo(e.position())
            self.paint_mask(self._painting, pt)
            self._painting = pt
        elif self._rubber is not None:
            self._rubber = (self._rubber[0], e.position())
            self.update()
        elif self._drag is not None and self.zoom > 1.0:
            r = self.image_rect()
            d = e.position() - self._drag
            self._drag = e.position()
            self._centre = QPointF(self._centre.x() - d.x() / r.width(), self._centre.y() - d.y() / r.height())
            self.update()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self._rubber is not None:
            a, b = self.to_photo(self._rubber[0]), self.to_photo(e.position())
            self._rubber = None
            self.update()
            x0, y0, x1, y1 = min(a.x(), b.x()), min(a.y(), b.y()), max(a.x(), b.x()), max(a.y(), b.y())
            if x1 - x0 >= 4 and y1 - y0 >= 4:
                self.box_drawn.emit(x0, y0, x1 - x0, y1 - y0)
        self._drag = None
        self._painting = None

    def leaveEvent(self, e) -> None:  # noqa: N802
        self._mouse = None
        self.update()

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.set_zoom(1.0)

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        if self._before is None:
            return
        if self.mask_mode and e.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            steps = 1 if (e.angleDelta().y() or e.angleDelta().x()) > 0 else -1
            self.brush_size = float(min(128, max(1, self.brush_size + 2 * steps)))
            self.brush_changed.emit(self.brush_size)
            self.update()
            return
        at = self.to_photo(e.position())
        self.set_zoom(self.zoom * (1.25 if e.angleDelta().y() > 0 else 0.8))
        if self.zoom > 1.0:  # keep the photo point under the mouse
            moved = self.from_photo(at) - e.position()
            r = self.image_rect()
            self._centre = QPointF(self._centre.x() + moved.x() / r.width(), self._centre.y() + moved.y() / r.height())
            self.update()


class PhotoPanel(QWidget):
    """The photo view with its bar: what was found, Draw face box, Centre square, Save photo,
    Save face, JPEG quality and Close."""

    draw_box_requested = Signal(bool)
    centre_requested = Signal()
    save_requested = Signal()
    save_face_requested = Signal()
    close_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        bar = QHBoxLayout()
        self.title = QLabel("")
        self.title.setProperty("role", "section")
        bar.addWidget(self.title)
        bar.addStretch(1)
        self.draw_box = QPushButton("Draw face box")
        self.draw_box.setCheckable(True)
        self.draw_box.setToolTip("Drag a rectangle around the face on the photo; it is aligned and encoded again")
        self.draw_box.toggled.connect(self.draw_box_requested)
        self.centre = QPushButton("Centre square")
        self.centre.setToolTip("Use the photo's centre square as the face")
        self.centre.clicked.connect(self.centre_requested)
        self.save = QPushButton(icon("save"), "Save photo…")
        self.save.setToolTip("Save the whole photo at full size with the edited face (Ctrl+S)")
        self.save.clicked.connect(self.save_requested)
        self.save_face = QPushButton("Save face…")
        self.save_face.setToolTip("Save the model-size face")
        self.save_face.clicked.connect(self.save_face_requested)
        self.spread = QCheckBox("Spread")
        self.spread.setChecked(True)
        self.spread.setToolTip("On (default): the photo gets the whole change the edit made, up to the face frame's edge,\n"
                               "continued smoothly past it (hair edits reach the hair beyond the frame; a tint the edit\n"
                               "gives the background around the head spreads too).\n"
                               "Off: the change inside a feathered mask within the frame (keeps the background; hair edits fade)")
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(95)
        self.quality.setPrefix("JPEG ")
        self.quality.setToolTip("JPEG/WebP quality of the saved photo")
        self.close_btn = QPushButton(icon("cancel"), "")
        self.close_btn.setToolTip("Close the photo (the face stays)")
        self.close_btn.clicked.connect(self.close_requested)
        for w in (self.draw_box, self.centre, self.spread, self.save, self.save_face, self.quality, self.close_btn):
            bar.addWidget(w)
        lay.addLayout(bar)
        self.view = PhotoView()
        self.view.setToolTip("Your photo, edited at its own size. Wheel: zoom at the mouse; drag: pan; double-click: fit;\n"
                             "click a dotted box to edit that face instead; Compare (Ctrl+B) or hold B: before the edits")
        lay.addWidget(self.view, 1)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setProperty("role", "hint")
        lay.addWidget(self.note)
