"""The Interpolate tab: keyframes, scrub preview, play/pause, filmstrip and video export."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..icons import icon
from ..protocol import EASES, MODES, VIDEO_FORMATS, ExportParams, FilmFrame, InterpParams, PreviewResult
from .canvas import FaceCanvas
from .common import ThumbStrip

__all__ = ["InterpolatePanel"]


class InterpolatePanel(QWidget):
    """Keyframes (latent ids with thumbnails) and how to morph through them."""

    add_current_requested = Signal()
    add_file_requested = Signal(str)
    changed = Signal()  # keyframes or parameters changed
    preview_requested = Signal(int)
    export_requested = Signal(str, object)  # path, ExportParams

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(8)

        kf = QGroupBox("Keyframes")
        kl = QVBoxLayout(kf)
        self.keyframes = ThumbStrip(56, reorder=True)
        self.keyframes.setToolTip("Faces to morph through, in order (drag to reorder)")
        self.keyframes.model().rowsMoved.connect(lambda *a: self.changed.emit())
        kl.addWidget(self.keyframes)
        row = QHBoxLayout()
        self.add_current = QPushButton("Current face")
        self.add_current.setIcon(icon("plus"))
        self.add_current.setToolTip("Add the face on the canvas, with its edits, as a keyframe (K)")
        self.add_current.clicked.connect(self.add_current_requested)
        self.add_file = QPushButton("From file…")
        self.add_file.setIcon(icon("open-photo"))
        self.add_file.setToolTip("Add a photo as a keyframe (also: right-click a face in the history strip)")
        self.add_file.clicked.connect(self._choose_file)
        self.remove = QToolButton()
        self.remove.setIcon(icon("minus"))
        self.remove.setToolTip("Remove the selected keyframe")
        self.remove.clicked.connect(self._remove)
        self.clear = QToolButton()
        self.clear.setIcon(icon("clear"))
        self.clear.setToolTip("Remove all keyframes")
        self.clear.clicked.connect(self.clear_keyframes)
        row.addWidget(self.add_current)
        row.addWidget(self.add_file)
        row.addStretch(1)
        row.addWidget(self.remove)
        row.addWidget(self.clear)
        kl.addLayout(row)
        lay.addWidget(kf)

        opts = QGroupBox("Morph")
        form = QGridLayout(opts)
        self.frames = QSpinBox()
        self.frames.setRange(2, 2000)
        self.frames.setValue(48)
        self.frames.setToolTip("Frames in the whole morph")
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip("slerp keeps faces typical between keyframes; linear is a straight line")
        self.ease = QComboBox()
        self.ease.addItems(EASES)
        self.ease.setToolTip("How the morph speeds up and slows down around keyframes")
        self.loop = QCheckBox("Loop")
        self.loop.setToolTip("Go from the last keyframe back to the first")
        self.pingpong = QCheckBox("Ping-pong")
        self.pingpong.setToolTip("Play forward, then backward")
        form.addWidget(QLabel("Frames"), 0, 0)
        form.addWidget(self.frames, 0, 1)
        form.addWidget(QLabel("Path"), 0, 2)
        form.addWidget(self.mode, 0, 3)
        form.addWidget(QLabel("Ease"), 1, 0)
        form.addWidget(self.ease, 1, 1)
        form.addWidget(self.loop, 1, 2)
        form.addWidget(self.pingpong, 1, 3)
        for w in (self.frames,):
            w.valueChanged.connect(lambda *_: self.changed.emit())
        for w in (self.mode, self.ease):
            w.currentIndexChanged.connect(lambda *_: self.changed.emit())
        for w in (self.loop, self.pingpong):
            w.toggled.connect(lambda *_: self.changed.emit())
        lay.addWidget(opts)

        prev = QGroupBox("Preview")
        pl = QVBoxLayout(prev)
        self.preview = FaceCanvas(interactive=False)
        self.preview.setMinimumSize(150, 150)
        self.preview.set_placeholder("Add two keyframes to preview the morph")
        pl.addWidget(self.preview, 1)
        srow = QHBoxLayout()
        self.play = QToolButton()
        self.play.setIcon(icon("play"))
        self.play.setCheckable(True)
        self.play.setToolTip("Play / pause the morph (Space)")
        self.play.toggled.connect(self._on_play)
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setRange(0, 47)
        self.scrub.setToolTip("Scrub through the morph")
        self.scrub.valueChanged.connect(self.preview_requested)
        self.frame_label = QLabel("0 / 48")
        self.frame_label.setMinimumWidth(64)
        srow.addWidget(self.play)
        srow.addWidget(self.scrub, 1)
        srow.addWidget(self.frame_label)
        pl.addLayout(srow)
        self.filmstrip = ThumbStrip(40)
        self.filmstrip.setToolTip("Frames of the morph; click one to jump to it")
        self.filmstrip.activated_payload.connect(lambda i: self.scrub.setValue(int(i)))
        pl.addWidget(self.filmstrip)
        lay.addWidget(prev, 1)

        ex = QGroupBox("Export video")
        el = QGridLayout(ex)
        self.fps = QSpinBox()
        self.fps.setRange(1, 120)
        self.fps.setValue(24)
        self.fps.setSuffix(" fps")
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(4)
        self.scale.setPrefix("×")
        self.face_size = 64  # the model's image side (set_face_size): the frame size is stated in pixels
        self.size_label = QLabel("")
        self.scale.valueChanged.connect(lambda _v: self._show_size())
        self.detail = QCheckBox("Photo detail")
        self.detail.setChecked(True)
        self.detail.setToolTip("Frames near a keyframe that is a photo carry the photo's own detail at the exported size\n"
                               "(the frame at the photo is the photo's face itself); the frames between are the model's faces enlarged")
        self._show_size()
        self.filter = QComboBox()
        self.filter.addItems(["smooth", "nearest"])
        self.filter.setToolTip("Upscaling filter: smooth, or nearest for crisp pixels")
        self.format = QComboBox()
        self.format.addItems(list(VIDEO_FORMATS))
        self.export = QPushButton("Export…")
        self.export.setIcon(icon("export"))
        self.export.setProperty("primary", True)
        self.export.setToolTip("Write the morph as MP4, GIF or WebP (Ctrl+E)")
        self.export.clicked.connect(self.choose_export)
        for i, w in enumerate((self.fps, self.scale, self.filter, self.format)):
            el.addWidget(w, 0, i)
        el.addWidget(self.size_label, 1, 0, 1, 2)
        el.addWidget(self.detail, 1, 2, 1, 2)
        el.addWidget(self.export, 2, 0, 1, 4)
        lay.addWidget(ex)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self.fps.valueChanged.connect(lambda v: self._timer.setInterval(int(1000 / max(1, v))))
        self.shown_stamp = 0
        self._update_enabled()

    # ------------------------------------------------------------------ keyframes
    def add_keyframe(self, latent_id: int, image: QImage, label: str) -> None:
        self.keyframes.add(image, latent_id, tooltip=label)
        self._update_enabled()
        self.changed.emit()

    def keyframe_ids(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.keyframes.payloads())

    def clear_keyframes(self) -> None:
        self.keyframes.clear()
        self.filmstrip.clear()
        self.preview.set_image(None)
        self.play.setChecked(False)
        self._update_enabled()
        self.changed.emit()

    def _remove(self) -> None:
        for it in self.keyframes.selectedItems():
            self.keyframes.takeItem(self.keyframes.row(it))
        self._update_enabled()
        self.changed.emit()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a photo as keyframe", "", "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            self.add_file_requested.emit(path)

    def _update_enabled(self) -> None:
        ok = self.keyframes.count() >= 2
        for w in (self.play, self.scrub, self.export):
            w.setEnabled(ok)

    # ------------------------------------------------------------------ parameters
    def params(self) -> InterpParams:
        return InterpParams(
            frames=self.frames.value(),
            mode=self.mode.currentText(),
            ease=self.ease.currentText(),
            loop=self.loop.isChecked(),
            pingpong=self.pingpong.isChecked(),
        )

    def export_params(self) -> ExportParams:
        return ExportParams(fps=self.fps.value(), scale=self.scale.value(), filter=self.filter.currentText(),
                            detail=self.detail.isChecked())

    def set_face_size(self, side: int) -> None:
        """The model's image side, so the export states the frame's size in pixels."""
        self.face_size = int(side)
        self._show_size()

    def _show_size(self) -> None:
        px = self.scale.value() * self.face_size
        self.size_label.setText(f"frames {px} × {px} px")
        self.scale.setToolTip(f"Frame size: {self.scale.value()} x the model's {self.face_size} px = {px} x {px} px")

    def choose_export(self) -> None:
        fmt = self.format.currentText()
        path, _ = QFileDialog.getSaveFileName(self, "Export the morph", f"morph.{fmt}", VIDEO_FORMATS[fmt])
        if path:
            if not path.lower().endswith("." + fmt):
                path += "." + fmt
            self.export_requested.emit(path, self.export_params())

    # ------------------------------------------------------------------ preview
    def ready(self) -> bool:
        return self.keyframes.count() >= 2

    def show_preview(self, res: PreviewResult) -> None:
        if res.stamp < self.shown_stamp:
            return
        self.shown_stamp = res.stamp
        self.preview.set_image(res.image, res.stamp)
        if self.scrub.maximum() != res.frames - 1:
            self.scrub.blockSignals(True)
            self.scrub.setRange(0, res.frames - 1)
            self.scrub.blockSignals(False)
        self.frame_label.setText(f"{res.index + 1} / {res.frames}")

    def set_filmstrip(self, frames: list[FilmFrame]) -> None:
        self.filmstrip.clear()
        for f in frames:
            self.filmstrip.add(f.image, f.index, tooltip=f"frame {f.index + 1}")

    def _on_play(self, on: bool) -> None:
        self.play.setIcon(icon("pause" if on else "play"))
        if on and self.ready():
            self._timer.start(int(1000 / max(1, self.fps.value())))
        else:
            self._timer.stop()
            if on:
                self.play.setChecked(False)

    def _tick(self) -> None:
        v = self.scrub.value() + 1
        self.scrub.setValue(0 if v > self.scrub.maximum() else v)

    def toggle_play(self) -> None:
        if self.ready():
            self.play.setChecked(not self.play.isChecked())
