"""The Inpaint tab: brush tools for the mask on the canvas (or, while a photo is open, on the
full photo), run, candidates side by side, pick one."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..icons import icon
from ..protocol import InpaintParams
from .canvas import FaceCanvas
from .common import ThumbStrip

__all__ = ["InpaintPanel"]


class InpaintPanel(QWidget):
    """Controls the canvas's mask brush and asks the window to run inpainting."""

    run_requested = Signal(object)  # InpaintParams
    pick_requested = Signal(int)

    def __init__(self, canvas: FaceCanvas, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.canvas = canvas  # the face canvas
        self.target: Any = canvas  # where the mask is painted: the canvas, or the photo view (set_target)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(8)

        hint = QLabel("Paint over the part of the face to replace, then <b>Fill in</b>. Shift+wheel changes the brush size.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #8b93a1;")
        lay.addWidget(hint)
        self.hint = hint
        self.photo_note = QLabel("")
        self.photo_note.setWordWrap(True)
        self.photo_note.setProperty("role", "hint")
        self.photo_note.hide()
        lay.addWidget(self.photo_note)

        tools = QGroupBox("Mask")
        tl = QGridLayout(tools)
        self.brush = QToolButton()
        self.brush.setIcon(icon("brush"))
        self.brush.setText("Brush")
        self.brush.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.brush.setCheckable(True)
        self.brush.setChecked(True)
        self.brush.setToolTip("Paint the area to fill in (B)")
        self.eraser = QToolButton()
        self.eraser.setIcon(icon("eraser"))
        self.eraser.setText("Eraser")
        self.eraser.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.eraser.setCheckable(True)
        self.eraser.setToolTip("Erase parts of the mask (E)")
        group = QButtonGroup(self)
        group.setExclusive(True)
        group.addButton(self.brush)
        group.addButton(self.eraser)
        self.eraser.toggled.connect(self._on_eraser)
        self.clear = QToolButton()
        self.clear.setIcon(icon("clear"))
        self.clear.setText("Clear")
        self.clear.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.clear.setToolTip("Clear the mask")
        self.clear.clicked.connect(lambda: self.target.clear_mask())
        self.invert = QToolButton()
        self.invert.setIcon(icon("invert"))
        self.invert.setText("Invert")
        self.invert.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.invert.setToolTip("Swap painted and unpainted areas")
        self.invert.clicked.connect(lambda: self.target.invert_mask())
        self.size = QSlider(Qt.Orientation.Horizontal)
        self.size.setRange(1, 32)
        self.size.setValue(int(canvas.brush_size))
        self.size.setToolTip("Brush size in picture pixels (on the photo: in screen pixels)")
        self.size_label = QLabel(f"{int(canvas.brush_size)} px")
        self.size.valueChanged.connect(self._on_size)
        self.overlay = QCheckBox("Show mask")
        self.overlay.setChecked(True)
        self.overlay.setToolTip("Show the painted area as a red overlay")
        self.overlay.toggled.connect(self._on_overlay)
        self.coverage = QLabel("mask: empty")
        self.coverage.setStyleSheet("color: #8b93a1;")
        canvas.mask_changed.connect(self._update_coverage)
        canvas.brush_changed.connect(self._show_size)
        tl.addWidget(self.brush, 0, 0)
        tl.addWidget(self.eraser, 0, 1)
        tl.addWidget(self.clear, 0, 2)
        tl.addWidget(self.invert, 0, 3)
        tl.addWidget(QLabel("Size"), 1, 0)
        tl.addWidget(self.size, 1, 1, 1, 2)
        tl.addWidget(self.size_label, 1, 3)
        tl.addWidget(self.overlay, 2, 0, 1, 2)
        tl.addWidget(self.coverage, 2, 2, 1, 2)
        lay.addWidget(tools)

        opts = QGroupBox("Fill in")
        ol = QGridLayout(opts)
        self.candidates = QSpinBox()
        self.candidates.setRange(1, 8)
        self.candidates.setValue(4)
        self.candidates.setToolTip("How many different completions to make")
        self.steps = QSpinBox()
        self.steps.setRange(1, 5000)
        self.steps.setValue(40)
        self.steps.setToolTip("Optimisation steps: more is slower and more accurate")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 1.2)  # inpainting needs a positive temperature
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.7)
        self.temperature.setToolTip("Variety of the candidates")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seed of the random starts")
        ol.addWidget(QLabel("Candidates"), 0, 0)
        ol.addWidget(self.candidates, 0, 1)
        ol.addWidget(QLabel("Steps"), 0, 2)
        ol.addWidget(self.steps, 0, 3)
        ol.addWidget(QLabel("Temperature"), 1, 0)
        ol.addWidget(self.temperature, 1, 1)
        ol.addWidget(QLabel("Seed"), 1, 2)
        ol.addWidget(self.seed, 1, 3)
        self.run = QPushButton("Fill in")
        self.run.setIcon(icon("run"))
        self.run.setProperty("primary", True)
        self.run.setToolTip("Complete the painted area (Ctrl+Return)")
        self.run.clicked.connect(self._run)
        ol.addWidget(self.run, 2, 0, 1, 4)
        lay.addWidget(opts)

        res = QGroupBox("Candidates")
        rl = QVBoxLayout(res)
        self.results = ThumbStrip(96, wrap=True)
        self.results.setMinimumHeight(130)
        self.results.setToolTip("Double-click a candidate, or select it and press Use, to keep it")
        self.results.itemDoubleClicked.connect(lambda it: self.pick_requested.emit(int(it.data(Qt.ItemDataRole.UserRole))))
        rl.addWidget(self.results, 1)
        self.use = QPushButton("Use this one")
        self.use.setEnabled(False)
        self.use.setToolTip("Make the selected candidate the current face")
        self.use.clicked.connect(self._use)
        rl.addWidget(self.use)
        lay.addWidget(res, 1)
        self._update_coverage()

    def set_target(self, target: Any, note: str = "") -> None:
        """Paint the mask on ``target`` (the face canvas, or the photo view while a photo is open:
        the same mask interface; ``note`` is then said above the tools). The brush, eraser and
        overlay settings carry over; the brush size is in the target's pixels (picture pixels on
        the canvas, screen pixels on the photo)."""
        if target is self.target and note == self.photo_note.text():
            return
        if self.target is not target:
            try:
                self.target.mask_changed.disconnect(self._update_coverage)
                self.target.brush_changed.disconnect(self._show_size)
            except (RuntimeError, TypeError):
                pass
            self.target = target
            target.mask_changed.connect(self._update_coverage)
            target.brush_changed.connect(self._show_size)
        target.erase = self.eraser.isChecked()
        target.show_overlay = self.overlay.isChecked()
        self.size.blockSignals(True)
        self.size.setRange(1, 32 if target is self.canvas else 128)
        self.size.blockSignals(False)
        self._show_size(target.brush_size)
        self.photo_note.setText(note)
        self.photo_note.setVisible(bool(note))
        self.hint.setText(("Paint over the part of the photo to replace (middle button pans)" if note else
                           "Paint over the part of the face to replace") + ", then <b>Fill in</b>. Shift+wheel changes the brush size.")
        self._update_coverage()

    def painting_on_photo(self) -> bool:
        return self.target is not self.canvas

    def _on_eraser(self, on: bool) -> None:
        self.target.erase = on

    def _show_size(self, size: float) -> None:
        """The brush size of the target (changed by Shift+wheel on it) on the slider and label."""
        self.size.blockSignals(True)
        self.size.setValue(int(size))
        self.size.blockSignals(False)
        self.size_label.setText(f"{int(size)} px")

    def _on_size(self, v: int) -> None:
        self.target.brush_size = float(v)
        self.size_label.setText(f"{v} px")

    def _on_overlay(self, on: bool) -> None:
        self.target.show_overlay = on
        self.target.update()

    def _update_coverage(self) -> None:
        m = self.target.mask_array()
        frac = float(m.mean()) if m.size else 0.0
        what = "photo" if self.painting_on_photo() else "picture"
        pct = f"{100 * frac:.1f}" if frac < 0.1 else f"{100 * frac:.0f}"
        self.coverage.setText("mask: empty" if not m.any() else f"mask: {pct}%")
        self.coverage.setToolTip(f"The painted part of the {what}")
        self.run.setEnabled(bool(m.any()))

    def params(self) -> InpaintParams:
        return InpaintParams(
            candidates=self.candidates.value(),
            steps=self.steps.value(),
            temperature=self.temperature.value(),
            seed=self.seed.value(),
        )

    def _run(self) -> None:
        self.run_requested.emit(self.params())

    def set_busy(self, busy: bool) -> None:
        self.run.setEnabled(not busy and bool(self.target.mask_array().any()))

    def show_candidates(self, images: list[QImage]) -> None:
        self.results.clear()
        for i, img in enumerate(images):
            self.results.add(img, i, tooltip=f"candidate {i + 1}", text=f"#{i + 1}")
        self.use.setEnabled(bool(images))
        if images:
            self.results.setCurrentRow(0)

    def candidate_image(self, index: int) -> Optional[QImage]:
        imgs = self.results.images()
        return imgs[index] if 0 <= index < len(imgs) else None

    def _use(self) -> None:
        row = self.results.currentRow()
        if row >= 0:
            self.pick_requested.emit(row)
