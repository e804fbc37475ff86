"""The Directions tab: make a slider from tagged faces; principal directions; save the model."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..icons import icon
from .common import ThumbStrip

__all__ = ["DirectionsPanel"]


class DirectionsPanel(QWidget):
    """Tag faces as having or lacking an attribute, then fit a new named direction."""

    tag_requested = Signal(bool)  # True: the current face has the attribute
    create_requested = Signal(str, list, list)  # name, positive latent ids, negative latent ids
    principal_requested = Signal(int, int)  # k, samples
    save_model_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(8)

        custom = QGroupBox("New slider from examples")
        cl = QVBoxLayout(custom)
        hint = QLabel("Show faces on the canvas and tag each one: the new slider moves from the faces that lack it to those that have it.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #8b93a1;")
        cl.addWidget(hint)
        name_row = QHBoxLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("Name, e.g. Freckles")
        self.name.textChanged.connect(self._update_enabled)
        name_row.addWidget(QLabel("Name"))
        name_row.addWidget(self.name, 1)
        cl.addLayout(name_row)

        grid = QGridLayout()
        self.has = QPushButton("Has it")
        self.has.setIcon(icon("thumb-up"))
        self.has.setToolTip("Tag the current face as having the attribute (+)")
        self.has.clicked.connect(lambda: self.tag_requested.emit(True))
        self.lacks = QPushButton("Lacks it")
        self.lacks.setIcon(icon("thumb-down"))
        self.lacks.setToolTip("Tag the current face as lacking the attribute (−)")
        self.lacks.clicked.connect(lambda: self.tag_requested.emit(False))
        self.positives = ThumbStrip(44)
        self.negatives = ThumbStrip(44)
        self.pos_label = QLabel("0 faces")
        self.neg_label = QLabel("0 faces")
        grid.addWidget(self.has, 0, 0)
        grid.addWidget(self.pos_label, 0, 1)
        grid.addWidget(self.positives, 1, 0, 1, 2)
        grid.addWidget(self.lacks, 2, 0)
        grid.addWidget(self.neg_label, 2, 1)
        grid.addWidget(self.negatives, 3, 0, 1, 2)
        cl.addLayout(grid)
        brow = QHBoxLayout()
        self.clear = QToolButton()
        self.clear.setIcon(icon("clear"))
        self.clear.setToolTip("Remove all tags")
        self.clear.clicked.connect(self.clear_tags)
        self.create = QPushButton("Create slider")
        self.create.setProperty("primary", True)
        self.create.setIcon(icon("plus"))
        self.create.setToolTip("Fit the direction and add it to the attribute sliders")
        self.create.clicked.connect(self._create)
        brow.addWidget(self.clear)
        brow.addStretch(1)
        brow.addWidget(self.create)
        cl.addLayout(brow)
        lay.addWidget(custom)

        pca = QGroupBox("Principal directions")
        pl = QGridLayout(pca)
        phint = QLabel("The main ways the model's faces vary, found without labels (pc1, pc2, …).")
        phint.setWordWrap(True)
        phint.setStyleSheet("color: #8b93a1;")
        self.k = QSpinBox()
        self.k.setRange(1, 64)
        self.k.setValue(8)
        self.k.setToolTip("How many directions")
        self.samples = QSpinBox()
        self.samples.setRange(16, 8192)
        self.samples.setValue(256)
        self.samples.setSingleStep(64)
        self.samples.setToolTip("Faces sampled from the model to analyse")
        self.compute = QPushButton("Compute")
        self.compute.setIcon(icon("chart"))
        self.compute.clicked.connect(lambda: self.principal_requested.emit(self.k.value(), self.samples.value()))
        pl.addWidget(phint, 0, 0, 1, 4)
        pl.addWidget(QLabel("Directions"), 1, 0)
        pl.addWidget(self.k, 1, 1)
        pl.addWidget(QLabel("Faces"), 1, 2)
        pl.addWidget(self.samples, 1, 3)
        pl.addWidget(self.compute, 2, 0, 1, 4)
        lay.addWidget(pca)

        self.save = QPushButton("Save model with these directions…")
        self.save.setIcon(icon("save"))
        self.save.setToolTip("Write a copy of the model that carries the new sliders")
        self.save.clicked.connect(self.save_model_requested)
        lay.addWidget(self.save)
        lay.addStretch(1)
        self._update_enabled()

    def add_tag(self, positive: bool, latent_id: int, image: QImage) -> None:
        (self.positives if positive else self.negatives).add(image, latent_id)
        self._update_enabled()

    def clear_tags(self) -> None:
        self.positives.clear()
        self.negatives.clear()
        self._update_enabled()

    def _update_enabled(self) -> None:
        p, n = self.positives.count(), self.negatives.count()
        self.pos_label.setText(f"{p} face{'s' if p != 1 else ''}")
        self.neg_label.setText(f"{n} face{'s' if n != 1 else ''}")
        self.create.setEnabled(p >= 1 and n >= 1 and bool(self.name.text().strip()))

    def _create(self) -> None:
        self.create_requested.emit(self.name.text().strip(), [int(x) for x in self.positives.payloads()], [int(x) for x in self.negatives.payloads()])
