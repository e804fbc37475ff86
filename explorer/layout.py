"""The window's layout: which widget goes where. No behaviour here: the window wires them.

Canvas and history strip in the centre, attributes on the right, tools (Interpolate, Inpaint,
Directions) on the left, plots below, the main toolbar on top, the status bar with the job bar.
Each ``build_*`` function makes widgets and sets them as attributes of the window.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSlider,
    QSpinBox,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .actions import TOOLBAR
from .icons import icon
from .widgets.attributes import AttributePanel
from .widgets.canvas import FaceCanvas
from .widgets.common import JobBar, MessageBar, ThumbStrip
from .widgets.directions import DirectionsPanel
from .widgets.inpaint import InpaintPanel
from .widgets.interpolate import InterpolatePanel
from .widgets.photo import PhotoPanel
from .widgets.plots import PlotsPanel

__all__ = ["build_central", "build_docks", "build_toolbar", "build_statusbar", "TEMPERATURE_TIP", "DETAIL_TIP"]

TEMPERATURE_TIP = "Sampling temperature (0 to 1.2): low is smooth and typical, high is varied and detailed"
DETAIL_TIP = ("Detail temperature (0 to 1.2): the finest levels of the latent (skin, hair texture, noise); "
              "cooler than the temperature gives cleaner faces with the same pose and identity")


def build_central(win: QMainWindow) -> None:
    """``message``, the ``photo_panel`` (hidden until a photo is open), the ``canvas`` (the
    model-size face) beside it, and the ``history`` strip."""
    central = QWidget()
    lay = QVBoxLayout(central)
    lay.setContentsMargins(8, 8, 8, 4)
    lay.setSpacing(6)
    win.message = MessageBar()
    lay.addWidget(win.message)
    win.canvas = FaceCanvas()
    win.canvas.setToolTip("")
    win.photo_panel = PhotoPanel()
    win.view_row = QHBoxLayout()
    win.view_row.addWidget(win.photo_panel, 3)
    win.view_row.addWidget(win.canvas, 2)
    lay.addLayout(win.view_row, 1)
    hist_row = QHBoxLayout()
    hist_label = QLabel("HISTORY")
    hist_label.setProperty("role", "section")
    hist_label.setToolTip("Earlier faces: click to go back; right-click for more")
    win.history = ThumbStrip(56)
    win.history.setToolTip("Earlier faces: click to go back; right-click to use one as a keyframe or tag it")
    win.history.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    hist_row.addWidget(hist_label)
    hist_row.addWidget(win.history, 1)
    lay.addLayout(hist_row)
    win.setCentralWidget(central)


def _dock(win: QMainWindow, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    d = QDockWidget(title, win)
    d.setObjectName(name)
    d.setWidget(widget)
    F = QDockWidget.DockWidgetFeature
    d.setFeatures(F.DockWidgetMovable | F.DockWidgetClosable | F.DockWidgetFloatable)
    win.addDockWidget(area, d)
    return d


def build_docks(win: QMainWindow) -> None:
    """``attributes`` (right), ``tools`` with ``interpolate``, ``inpaint``, ``directions`` (left),
    ``plots`` (bottom), and their docks."""
    win.attributes = AttributePanel(win.state)
    win.attributes.setMinimumWidth(360)
    win.attr_dock = _dock(win, "Attributes", "attributes", win.attributes, Qt.DockWidgetArea.RightDockWidgetArea)

    win.tools = QTabWidget()
    win.tools.setDocumentMode(True)
    win.interpolate = InterpolatePanel()
    win.inpaint = InpaintPanel(win.canvas)
    win.directions = DirectionsPanel()
    win.tools.addTab(win.interpolate, icon("export"), "Interpolate")
    win.tools.addTab(win.inpaint, icon("brush"), "Inpaint")
    win.tools.addTab(win.directions, icon("plus"), "Directions")
    win.tools.setMinimumWidth(340)
    win.tools_dock = _dock(win, "Tools", "tools", win.tools, Qt.DockWidgetArea.LeftDockWidgetArea)

    # the tools take the full height on the left; the plots run under the canvas and attributes
    win.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
    win.plots = PlotsPanel()
    win.plots_dock = _dock(win, "Plots", "plots", win.plots, Qt.DockWidgetArea.BottomDockWidgetArea)
    win.resizeDocks([win.plots_dock], [250], Qt.Orientation.Vertical)
    win.resizeDocks([win.tools_dock, win.attr_dock], [380, 400], Qt.Orientation.Horizontal)


def _value_label() -> QLabel:
    label = QLabel("0.70")
    label.setProperty("role", "value")
    label.setFixedWidth(44)
    return label


def _sampling_widgets(win: QMainWindow, tb: QToolBar) -> None:
    tb.addWidget(QLabel("Seed"))
    win.seed_spin = QSpinBox()
    win.seed_spin.setRange(0, 2**31 - 1)
    win.seed_spin.setKeyboardTracking(False)
    win.seed_spin.setFixedWidth(110)
    win.seed_spin.setToolTip("The seed of the sampled face: type one to go to it")
    tb.addWidget(win.seed_spin)
    for name, title, width, tip in (("temp", "Temperature", 150, TEMPERATURE_TIP), ("detail", "Detail", 110, DETAIL_TIP)):
        tb.addWidget(QLabel(title))
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, 120)
        slider.setFixedWidth(width)
        slider.setToolTip(tip)
        tb.addWidget(slider)
        label = _value_label()
        tb.addWidget(label)
        setattr(win, f"{name}_slider", slider)
        setattr(win, f"{name}_label", label)


def build_toolbar(win: QMainWindow, actions: dict[str, Any]) -> None:
    """The main toolbar from :data:`explorer.actions.TOOLBAR`, with the seed and temperature
    controls (``seed_spin``, ``temp_slider``/``temp_label``, ``detail_slider``/``detail_label``)."""
    tb = QToolBar("Main")
    tb.setObjectName("main-toolbar")
    tb.setMovable(False)
    tb.setIconSize(QSize(20, 20))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    win.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    for item in TOOLBAR:
        if item is None:
            tb.addSeparator()
        elif item == "@sampling":
            _sampling_widgets(win, tb)
        else:
            tb.addAction(actions[item])
    win.toolbar = tb


def build_statusbar(win: QMainWindow) -> None:
    """``model_label``, ``jobbar``, ``render_label``, ``device_widget``."""
    sb = win.statusBar()
    win.model_label = QLabel("No model")
    win.device_widget = QLabel("device: …")
    win.device_widget.setToolTip("Where the model runs: CUDA when available, else the CPU")
    win.render_label = QLabel("")
    win.render_label.setToolTip("Time the last picture took to render")
    win.jobbar = JobBar()
    sb.addWidget(win.model_label)
    sb.addPermanentWidget(win.jobbar)
    sb.addPermanentWidget(win.render_label)
    sb.addPermanentWidget(win.device_widget)
