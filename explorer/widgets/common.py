"""Small shared widgets: message bar, job bar, thumbnail strips."""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QWidget,
)

from ..icons import icon

__all__ = ["MessageBar", "JobBar", "ThumbStrip", "CenteredSlider", "thumb_icon"]


def thumb_icon(image: QImage, size: int) -> QIcon:
    """A QIcon of ``image`` scaled to ``size`` (GUI thread only: it makes a QPixmap)."""
    if image is None or image.isNull():
        return QIcon()
    img = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return QIcon(QPixmap.fromImage(img))


class MessageBar(QFrame):
    """An inline, dismissable message (errors in red, information in blue) with an optional action."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        self.icon = QLabel()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton()
        self.action.hide()
        self.close_btn = QToolButton()
        self.close_btn.setIcon(icon("cancel"))
        self.close_btn.setAutoRaise(True)
        self.close_btn.setToolTip("Dismiss")
        self.close_btn.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.action)
        lay.addWidget(self.close_btn)
        self._callback: Optional[Callable[[], Any]] = None
        self.action.clicked.connect(self._run_action)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.kind = ""
        self.hide()

    def show_message(self, text: str, kind: str = "error", action: Optional[tuple[str, Callable[[], Any]]] = None, timeout_ms: int = 0) -> None:
        self.kind = kind
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        if action is not None:
            self.action.setText(action[0])
            self._callback = action[1]
            self.action.show()
        else:
            self._callback = None
            self.action.hide()
        self.show()
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()

    def text(self) -> str:
        """The message shown, or "" when the bar is hidden."""
        return "" if self.isHidden() else self.label.text()

    def _run_action(self) -> None:
        self.hide()
        if self._callback is not None:
            self._callback()


class JobBar(QWidget):
    """Progress of the running job with a Cancel button; hidden when nothing runs."""

    cancel_requested = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.bar.setTextVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.setIcon(icon("cancel"))
        self.cancel.setToolTip("Stop this job (Esc)")
        self.cancel.clicked.connect(self.request_cancel)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel)
        self.job_id: Optional[int] = None
        self.hide()

    def start(self, job_id: int, title: str) -> None:
        self.job_id = job_id
        self.title = title
        self.label.setText(title + "…")
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.cancel.setEnabled(True)
        self.show()

    def update_progress(self, job_id: int, done: int, total: int, message: str) -> None:
        if job_id != self.job_id:
            return
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        self.label.setText(f"{self.title}: {message}" if message else self.title)

    def finish(self, job_id: int) -> None:
        if job_id == self.job_id:
            self.job_id = None
            self.hide()

    def request_cancel(self) -> None:
        """Ask to cancel the job shown (the Cancel button; Esc in the window)."""
        if self.job_id is not None:
            self.cancel.setEnabled(False)
            self.label.setText(self.title + ": cancelling…")
            self.cancel_requested.emit(self.job_id)


class ThumbStrip(QListWidget):
    """A horizontal strip of thumbnails; each item carries a Python payload."""

    activated_payload = Signal(object)

    def __init__(self, size: int = 64, parent: Optional[QWidget] = None, *, wrap: bool = False, reorder: bool = False) -> None:
        super().__init__(parent)
        self.thumb = size
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(wrap)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 12, size + (26 if wrap else 12)))
        self.setMovement(QListView.Movement.Snap if reorder else QListView.Movement.Static)
        if reorder:
            self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff if not wrap else Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        if not wrap:
            self.setFixedHeight(size + 26)
        self.setSpacing(2)
        self.itemClicked.connect(lambda it: self.activated_payload.emit(it.data(Qt.ItemDataRole.UserRole)))

    def add(self, image: Optional[QImage], payload: Any, tooltip: str = "", text: str = "") -> QListWidgetItem:
        if image is None:  # a blank placeholder of the right size keeps the grid even
            blank = QPixmap(self.thumb, self.thumb)
            blank.fill(QColor("#262b33"))
            ico = QIcon(blank)
        else:
            ico = thumb_icon(image, self.thumb)
        item = QListWidgetItem(ico, text)
        item.setData(Qt.ItemDataRole.UserRole, payload)
        item.setData(Qt.ItemDataRole.UserRole + 1, image)
        item.setToolTip(tooltip)
        self.addItem(item)
        return item

    def payloads(self) -> list[Any]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def images(self) -> list[Optional[QImage]]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole + 1) for i in range(self.count())]

    def find_payload(self, payload: Any) -> Optional[QListWidgetItem]:
        for i in range(self.count()):
            if self.item(i).data(Qt.ItemDataRole.UserRole) == payload:
                return self.item(i)
        return None

    def set_image(self, payload: Any, image: QImage) -> None:
        item = self.find_payload(payload)
        if item is not None:
            item.setIcon(thumb_icon(image, self.thumb))
            item.setData(Qt.ItemDataRole.UserRole + 1, image)
            self.doItemsLayout()


class CenteredSlider(QSlider):
    """A horizontal slider for signed amounts: the bar fills from 0 to the value, with a centre tick."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setMinimumHeight(22)

    def paintEvent(self, e: Any) -> None:  # noqa: N802 - Qt API
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        y = self.height() / 2
        half = handle.width() / 2
        x0, x1 = half, self.width() - half
        span = max(1, self.maximum() - self.minimum())

        def xpos(v: int) -> float:
            return x0 + (x1 - x0) * (v - self.minimum()) / span

        enabled = self.isEnabled()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#343a45"))
        p.drawRoundedRect(QRectF(x0, y - 2, x1 - x0, 4), 2, 2)
        zero = xpos(min(max(0, self.minimum()), self.maximum()))
        cur = handle.center().x()
        if self.value() != 0:
            p.setBrush(QColor("#5b9dff" if self.value() > 0 else "#e0675f") if enabled else QColor("#4a5260"))
            p.drawRoundedRect(QRectF(min(zero, cur), y - 2, abs(cur - zero), 4), 2, 2)
        p.setPen(QPen(QColor("#6b7380"), 1))
        p.drawLine(QPointF(zero, y - 6), QPointF(zero, y + 6))
        hover = self.underMouse() or self.isSliderDown()
        p.setPen(QPen(QColor("#5b9dff") if enabled else QColor("#4a5260"), 2))
        p.setBrush(QColor("#ffffff" if hover else "#d6dae0"))
        p.drawEllipse(QPointF(cur, y), 6.5, 6.5)
        p.end()
