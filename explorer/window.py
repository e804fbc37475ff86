"""The main window: canvas in the centre, attributes on the right, tools on the left, plots below.

The window wires the Qt-free :class:`~explorer.state.ExplorerState` to the widgets and to the
model worker: every state change becomes a stamped render request (latest wins), results older
than the picture on screen are dropped, and long jobs show in the status bar with Cancel.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSlider,
    QSpinBox,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .icons import icon
from .protocol import JOB_KINDS, AnalysisRequest, ModelInfo, PreviewRequest, RenderRequest, RenderResult
from .qimage import qimage_to_png_bytes
from .state import DEFAULT_FAVOURITES, ExplorerState, FaceRef
from .widgets.attributes import AttributePanel
from .widgets.canvas import FaceCanvas
from .widgets.common import JobBar, MessageBar, ThumbStrip
from .widgets.directions import DirectionsPanel
from .widgets.inpaint import InpaintPanel
from .widgets.interpolate import InterpolatePanel
from .widgets.plots import PlotsPanel
from .worker import WorkerHost

__all__ = ["MainWindow", "LINGERING"]

#: Worker hosts whose thread had not finished when their window closed.
LINGERING: list[WorkerHost] = []

JOB_TITLES = {
    "open_model": "Opening model",
    "load_photo": "Encoding photo",
    "inpaint": "Filling in",
    "export": "Exporting video",
    "fit_direction": "Fitting the new direction",
    "principal": "Finding principal directions",
    "save_model": "Saving model",
}

FAIL_TITLES = {
    "open_model": "Could not open the model",
    "load_photo": "Could not open the photo",
    "inpaint": "Inpainting failed",
    "export": "The export failed",
    "fit_direction": "Could not make the new slider",
    "principal": "Could not find principal directions",
    "save_model": "Could not save the model",
    "materialize": "Could not use this face",
    "adopt_candidate": "Could not use this candidate",
    "filmstrip": "Could not preview the morph",
}

DETAIL_TIP = ("Detail temperature (0 to 1.2): the finest levels of the latent (skin, hair texture, noise); "
              "cooler than the temperature gives cleaner faces with the same pose and identity")
PHOTO_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff)"
MODEL_SUFFIXES = (".safetensors",)

SHORTCUTS = [
    ("N", "New face (random seed)"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"),
    ("Alt+Left / Alt+Right", "Previous / next face in the history"),
    ("Ctrl+R", "Reset all attributes"),
    ("Ctrl+F", "Search the attributes"),
    ("Hold B", "Show the face before the edits"),
    ("Ctrl+B", "Split view: before | after"),
    ("P", "Smooth or pixelated scaling"),
    ("Ctrl+0 / Ctrl+= / Ctrl+-", "Fit / zoom in / zoom out (also the mouse wheel)"),
    ("Ctrl+O", "Open a photo (or drag and drop one, or paste with Ctrl+V)"),
    ("Ctrl+Shift+O", "Open a model"),
    ("Ctrl+S / Ctrl+Shift+S", "Save the picture (native size / 4x enlarged)"),
    ("Ctrl+C", "Copy the picture (4x enlarged)"),
    ("K", "Add the current face as a keyframe"),
    ("Space", "Play / pause the morph (Interpolate tab)"),
    ("Ctrl+E", "Export the morph as a video"),
    ("Ctrl+Return", "Fill in the painted area (Inpaint tab)"),
    ("Esc", "Cancel the running job"),
]


def _save_image_atomic(image: QImage, path: str) -> None:
    """Write ``image`` to ``path`` through a temporary file and a rename."""
    target = Path(path)
    fmt = (target.suffix.lstrip(".") or "png").upper()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=str(target.parent))
    os.close(fd)
    try:
        if not image.save(tmp, fmt):
            raise OSError(f"{path}: could not be written as {fmt}")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class MainWindow(QMainWindow):
    """The Glow Explorer window.

    ``model_path``: the model to open at start (None: the last one used, else the bundled model).
    ``settings``: where layout, last model and favourites are remembered (default: the user's
    QSettings). ``engine_factory``: tests may pass a callable making the worker's engine.
    ``threads``: CPU threads for the model (default: torch's choice).
    """

    def __init__(
        self,
        model_path: Optional[str] = None,
        *,
        settings: Optional[QSettings] = None,
        device: Optional[str] = None,
        seed: Optional[int] = None,
        engine_factory: Optional[Callable[[], Any]] = None,
        open_at_start: bool = True,
        threads: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings("GlowExplorer", "Glow Explorer")
        favs = self.settings.value("favourites", None)
        if isinstance(favs, str):
            favs = [favs] if favs else []
        self.state = ExplorerState(list(favs) if isinstance(favs, (list, tuple)) else DEFAULT_FAVOURITES)
        for key, attr in (("sampling/temperature", "temperature"), ("sampling/detail_temperature", "detail_temperature")):
            t = self.settings.value(key, None)
            if t is not None:
                try:
                    v = float(t)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(v):
                    setattr(self.state, attr, min(1.2, max(0.0, v)))
        self._initial_seed = seed
        self.model_info: Optional[ModelInfo] = None
        self.device_label = ""
        self._callbacks: dict[int, tuple[Optional[Callable], Optional[Callable]]] = {}
        self._shown_stamp = 0
        self.last_render_stamp = 0
        self._shown: Optional[RenderResult] = None
        self._before_key: Any = None
        self._analysis_stamp = 0
        self._preview_stamp = 0
        self._model_stamp = 0  # stamps below this were requests for a model no longer open
        self._candidates_cid: Optional[int] = None  # the inpainting whose candidates are shown
        self._dropped = 0
        self._holding_before = False
        self._closing = False
        self.render_errors: list[str] = []

        self.host = WorkerHost(device, engine_factory, threads)
        self.worker = self.host.worker
        w = self.worker
        w.engine_ready.connect(self._on_engine_ready)
        w.rendered.connect(self._on_rendered)
        w.render_failed.connect(self._on_render_failed)
        w.previewed.connect(self._on_previewed)
        w.analysed.connect(self._on_analysed)
        w.command_started.connect(self._on_command_started)
        w.command_done.connect(self._on_command_done)
        w.command_failed.connect(self._on_command_failed)
        w.progress.connect(self._on_progress)

        self.setWindowTitle("Glow Explorer")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self._build_central()
        self._build_docks()
        self._build_toolbar()
        self._build_menus()
        self._build_statusbar()

        self.state.changed.connect(self._on_state_changed)
        self.state.history_changed.connect(self._rebuild_history)
        self.state.undo_changed.connect(self._update_undo)
        self.state.favourites_changed.connect(self._save_favourites)
        self.attributes.slider_released.connect(lambda _n: self._idle.start())

        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(200)
        self._idle.timeout.connect(self._on_idle)
        self._interp_timer = QTimer(self)
        self._interp_timer.setSingleShot(True)
        self._interp_timer.setInterval(250)
        self._interp_timer.timeout.connect(self._refresh_interpolation)

        self.resize(1500, 940)
        self._restore_settings()
        self._update_undo()
        self._update_face_controls()
        self.canvas.set_placeholder("Starting…")
        if open_at_start:
            path = model_path
            if path is None:
                last = self.settings.value("model/last", "")
                path = str(last) if last and os.path.exists(str(last)) else None
            QTimer.singleShot(0, lambda: self.open_model(path))

    # ================================================================== building
    def _build_central(self) -> None:
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(8, 8, 8, 4)
        lay.setSpacing(6)
        self.message = MessageBar()
        lay.addWidget(self.message)
        self.canvas = FaceCanvas()
        self.canvas.setToolTip("")
        lay.addWidget(self.canvas, 1)
        hist_row = QHBoxLayout()
        hist_label = QLabel("HISTORY")
        hist_label.setProperty("role", "section")
        hist_label.setToolTip("Earlier faces: click to go back; right-click for more")
        self.history = ThumbStrip(56)
        self.history.setToolTip("Earlier faces: click to go back; right-click to use one as a keyframe or tag it")
        self.history.activated_payload.connect(self._go_history)
        self.history.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.history.customContextMenuRequested.connect(self._history_menu)
        hist_row.addWidget(hist_label)
        hist_row.addWidget(self.history, 1)
        lay.addLayout(hist_row)
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, d)
        return d

    def _build_docks(self) -> None:
        self.attributes = AttributePanel(self.state)
        self.attributes.setMinimumWidth(360)
        self.attr_dock = self._dock("Attributes", "attributes", self.attributes, Qt.DockWidgetArea.RightDockWidgetArea)

        self.tools = QTabWidget()
        self.tools.setDocumentMode(True)
        self.interpolate = InterpolatePanel()
        self.inpaint = InpaintPanel(self.canvas)
        self.directions = DirectionsPanel()
        self.tools.addTab(self.interpolate, icon("export"), "Interpolate")
        self.tools.addTab(self.inpaint, icon("brush"), "Inpaint")
        self.tools.addTab(self.directions, icon("plus"), "Directions")
        self.tools.setMinimumWidth(340)
        self.tools.currentChanged.connect(self._update_mask_mode)
        self.tools_dock = self._dock("Tools", "tools", self.tools, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tools_dock.visibilityChanged.connect(lambda _v: self._update_mask_mode())

        # the tools take the full height on the left; the plots run under the canvas and attributes
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.plots = PlotsPanel()
        self.plots_dock = self._dock("Plots", "plots", self.plots, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.plots_dock.visibilityChanged.connect(lambda v: v and self._idle.start())
        self.resizeDocks([self.plots_dock], [250], Qt.Orientation.Vertical)
        self.resizeDocks([self.tools_dock, self.attr_dock], [380, 400], Qt.Orientation.Horizontal)

        self.interpolate.add_current_requested.connect(self.add_current_keyframe)
        self.interpolate.add_file_requested.connect(self._add_keyframe_file)
        self.interpolate.changed.connect(lambda: self._interp_timer.start())
        self.interpolate.preview_requested.connect(self._request_preview)
        self.interpolate.export_requested.connect(self.export_video)
        self.inpaint.run_requested.connect(self.run_inpaint)
        self.inpaint.pick_requested.connect(self.pick_candidate)
        self.directions.tag_requested.connect(self.tag_current)
        self.directions.create_requested.connect(self.create_direction)
        self.directions.principal_requested.connect(self.compute_principal)
        self.directions.save_model_requested.connect(self.save_model_as)

    def _action(self, text: str, slot: Callable, shortcut: Any = None, icon_name: str = "", tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if icon_name:
            a.setIcon(icon(icon_name))
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda *_: slot())
        self.addAction(a)
        return a

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)

        self.act_new = self._action("New face", self.new_face, "N", "new-face", "A new random face (N)")
        tb.addAction(self.act_new)
        tb.addWidget(QLabel("Seed"))
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setFixedWidth(110)
        self.seed_spin.setToolTip("The seed of the sampled face: type one to go to it")
        self.seed_spin.valueChanged.connect(self._on_seed_entered)
        tb.addWidget(self.seed_spin)
        tb.addWidget(QLabel("Temperature"))
        self.temp_slider = QSlider(Qt.Orientation.Horizontal)
        self.temp_slider.setRange(0, 120)
        self.temp_slider.setFixedWidth(150)
        self.temp_slider.setToolTip("Sampling temperature (0 to 1.2): low is smooth and typical, high is varied and detailed")
        self.temp_slider.valueChanged.connect(self._on_temp_slider)
        self.temp_slider.sliderPressed.connect(self._on_temp_pressed)
        self.temp_slider.sliderReleased.connect(self.state.end_gesture)
        self._temp_gesture: Any = None
        tb.addWidget(self.temp_slider)
        self.temp_label = QLabel("0.70")
        self.temp_label.setProperty("role", "value")
        self.temp_label.setFixedWidth(44)
        tb.addWidget(self.temp_label)
        tb.addWidget(QLabel("Detail"))
        self.detail_slider = QSlider(Qt.Orientation.Horizontal)
        self.detail_slider.setRange(0, 120)
        self.detail_slider.setFixedWidth(110)
        self.detail_slider.setToolTip(DETAIL_TIP)
        self.detail_slider.valueChanged.connect(self._on_detail_slider)
        self.detail_slider.sliderPressed.connect(self._on_temp_pressed)
        self.detail_slider.sliderReleased.connect(self.state.end_gesture)
        tb.addWidget(self.detail_slider)
        self.detail_label = QLabel("0.70")
        self.detail_label.setProperty("role", "value")
        self.detail_label.setFixedWidth(44)
        tb.addWidget(self.detail_label)
        tb.addSeparator()
        self.act_undo = self._action("Undo", self.state.undo, QKeySequence.StandardKey.Undo, "undo", "Undo (Ctrl+Z)")
        self.act_redo = self._action("Redo", self.state.redo, [QKeySequence.StandardKey.Redo, "Ctrl+Y"], "redo", "Redo (Ctrl+Shift+Z)")
        tb.addAction(self.act_undo)
        tb.addAction(self.act_redo)
        tb.addSeparator()
        self.act_compare = self._action("Compare", self._on_compare, "Ctrl+B", "compare", "Split view: before the edits | after (Ctrl+B; hold B to peek)", checkable=True)
        self.act_pixel = self._action("Pixelated", self._on_pixelated, "P", "pixel", "Show pixels crisp instead of smoothed (P)", checkable=True)
        self.act_fit = self._action("Fit", lambda: self.canvas.set_zoom(1.0), "Ctrl+0", "zoom-fit", "Fit the picture to the window (Ctrl+0)")
        self.act_zoom_in = self._action("Zoom in", lambda: self.canvas.set_zoom(self.canvas.zoom * 1.25), ["Ctrl+=", "Ctrl++"])
        self.act_zoom_out = self._action("Zoom out", lambda: self.canvas.set_zoom(self.canvas.zoom / 1.25), "Ctrl+-")
        tb.addAction(self.act_compare)
        tb.addAction(self.act_pixel)
        tb.addAction(self.act_fit)
        tb.addSeparator()
        self.act_save = self._action("Save", self.save_picture, QKeySequence.StandardKey.Save, "save", "Save the picture as PNG (Ctrl+S)")
        self.act_save_big = self._action("Save enlarged…", lambda: self.save_picture(scale=4), "Ctrl+Shift+S", "save", "Save the picture 4x enlarged (Ctrl+Shift+S)")
        self.act_copy = self._action("Copy", self.copy_picture, QKeySequence.StandardKey.Copy, "copy", "Copy the picture, 4x enlarged (Ctrl+C)")
        tb.addAction(self.act_save)
        tb.addAction(self.act_copy)
        tb.addSeparator()
        self.act_open_photo = self._action("Open photo…", self.choose_photo, QKeySequence.StandardKey.Open, "open-photo", "Open your photo: it is framed and encoded, then every slider works on it (Ctrl+O)")
        tb.addAction(self.act_open_photo)

        self.act_paste = self._action("Paste photo", self.paste_photo, QKeySequence.StandardKey.Paste, "", "Paste a picture from the clipboard (Ctrl+V)")
        self.act_open_model = self._action("Open model…", self.choose_model, "Ctrl+Shift+O", "open-model", "Open another Glow model (folder or .safetensors file)")
        self.act_export = self._action("Export video…", self._export_shortcut, "Ctrl+E", "export", "Export the morph as MP4, GIF or WebP (Ctrl+E)")
        self.act_reset = self._action("Reset all attributes", lambda: self.state.reset(), "Ctrl+R", "reset", "Set every slider back to 0 (Ctrl+R)")
        self.act_search = self._action("Find attribute", self._focus_search, "Ctrl+F")
        self.act_back = self._action("Previous face", lambda: self._step_history(-1), "Alt+Left")
        self.act_fwd = self._action("Next face", lambda: self._step_history(1), "Alt+Right")
        self.act_keyframe = self._action("Add keyframe", self.add_current_keyframe, "K", "plus", "Add the current face as a keyframe (K)")
        self.act_play = self._action("Play / pause morph", self._play_shortcut, "Space")
        self.act_inpaint = self._action("Fill in", self._inpaint_shortcut, "Ctrl+Return", "run")
        self.act_cancel = self._action("Cancel job", self.cancel_job, "Esc", "cancel")
        self.act_quit = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_help = self._action("Keyboard shortcuts", self.show_shortcuts, "F1")
        self.act_about = self._action("About Glow Explorer", self.show_about)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        for a in (self.act_open_photo, self.act_paste, None, self.act_open_model, None, self.act_save, self.act_save_big, self.act_copy, None, self.act_export, None, self.act_quit):
            f.addSeparator() if a is None else f.addAction(a)
        self.act_save_model = QAction("Save model with directions…", self)
        self.act_save_model.triggered.connect(self.save_model_as)
        f.insertAction(self.act_quit, self.act_save_model)
        e = mb.addMenu("&Edit")
        for a in (self.act_undo, self.act_redo, None, self.act_new, self.act_back, self.act_fwd, None, self.act_reset, self.act_search, None, self.act_keyframe):
            e.addSeparator() if a is None else e.addAction(a)
        v = mb.addMenu("&View")
        for a in (self.act_compare, self.act_pixel, None, self.act_fit, self.act_zoom_in, self.act_zoom_out, None):
            v.addSeparator() if a is None else v.addAction(a)
        for d in (self.attr_dock, self.tools_dock, self.plots_dock):
            v.addAction(d.toggleViewAction())
        h = mb.addMenu("&Help")
        h.addAction(self.act_help)
        h.addAction(self.act_about)

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.model_label = QLabel("No model")
        self.device_widget = QLabel("device: …")
        self.device_widget.setToolTip("Where the model runs: CUDA when available, else the CPU")
        self.render_label = QLabel("")
        self.render_label.setToolTip("Time the last picture took to render")
        self.jobbar = JobBar()
        # A direct call, not a queued slot of the worker: its thread is busy with the job.
        self.jobbar.cancel_requested.connect(self._cancel_command)
        sb.addWidget(self.model_label)
        sb.addPermanentWidget(self.jobbar)
        sb.addPermanentWidget(self.render_label)
        sb.addPermanentWidget(self.device_widget)

    # ================================================================== settings
    def _restore_settings(self) -> None:
        s = self.settings
        geo = s.value("window/geometry")
        if isinstance(geo, (QByteArray, bytes)):
            self.restoreGeometry(QByteArray(geo))
        st = s.value("window/state")
        if isinstance(st, (QByteArray, bytes)):
            self.restoreState(QByteArray(st))
        pix = s.value("view/pixelated", False)
        self.act_pixel.setChecked(pix in (True, "true", "1", 1))
        tab = s.value("view/tools_tab", 0)
        try:
            self.tools.setCurrentIndex(int(tab))
        except (TypeError, ValueError):
            pass
        run = s.value("plots/run_dir", "")
        if run and os.path.isdir(str(run)):
            self.plots.open_run(str(run))

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("view/pixelated", self.act_pixel.isChecked())
        s.setValue("view/tools_tab", self.tools.currentIndex())
        s.setValue("sampling/temperature", self.state.temperature)
        s.setValue("sampling/detail_temperature", self.state.detail_temperature)
        s.setValue("favourites", list(self.state.favourites))
        if self.plots.run.run_dir is not None:
            s.setValue("plots/run_dir", str(self.plots.run.run_dir))
        s.sync()

    def _save_favourites(self) -> None:
        self.settings.setValue("favourites", list(self.state.favourites))

    # ================================================================== worker plumbing
    def _call(self, kind: str, on_done: Optional[Callable] = None, on_fail: Optional[Callable] = None, **params: Any) -> int:
        cid = self.worker.submit(kind, **params)
        self._callbacks[cid] = (on_done, on_fail)
        return cid

    def _on_engine_ready(self, label: str) -> None:
        self.device_label = label
        self.device_widget.setText(f"device: {label}")

    def _on_command_started(self, cid: int, kind: str) -> None:
        if kind in JOB_KINDS:
            self.jobbar.start(cid, JOB_TITLES.get(kind, kind))
            if kind == "inpaint":
                self.inpaint.set_busy(True)

    def _on_progress(self, cid: int, done: int, total: int, message: str) -> None:
        self.jobbar.update_progress(cid, done, total, message)

    def _on_command_done(self, cid: int, kind: str, result: Any) -> None:
        self.jobbar.finish(cid)
        if kind == "inpaint":
            self.inpaint.set_busy(False)
            self._candidates_cid = cid
        on_done, _ = self._callbacks.pop(cid, (None, None))
        if on_done is not None:
            on_done(result)

    def _on_command_failed(self, cid: int, kind: str, message: str, cancelled: bool) -> None:
        self.jobbar.finish(cid)
        if kind == "inpaint":
            self.inpaint.set_busy(False)
        _, on_fail = self._callbacks.pop(cid, (None, None))
        if on_fail is not None:
            on_fail(message, cancelled)
        elif cancelled:
            self.message.show_message(f"{JOB_TITLES.get(kind, kind)}: cancelled.", "info", timeout_ms=4000)
        else:
            self.show_error(f"{FAIL_TITLES.get(kind, kind.replace('_', ' ').capitalize() + ' failed')}: {message}")

    def show_error(self, text: str, action: Optional[tuple[str, Callable]] = None) -> None:
        self.message.show_message(text, "error", action)
        self.statusBar().showMessage(text, 8000)

    def show_info(self, text: str, timeout_ms: int = 6000) -> None:
        self.message.show_message(text, "info", timeout_ms=timeout_ms)

    def _cancel_command(self, cid: int) -> None:
        self.worker.cancel(cid)

    def cancel_job(self) -> None:
        if self.jobbar.job_id is not None:
            self.jobbar._cancel()

    # ================================================================== model
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a Glow model", "", "Glow models (config.json *.safetensors);;All files (*)")
        if path:
            if Path(path).name == "config.json":
                path = str(Path(path).parent)
            self.open_model(path)

    def open_model(self, path: Optional[str]) -> None:
        """Open a model folder or .safetensors file (None: the bundled model) on the worker."""
        if self._shown is None:
            self.canvas.set_placeholder("Opening the model…")
        self._call("open_model", self._on_model_opened, lambda msg, c: self._on_model_failed(msg, c, path), path=path)

    def _on_model_opened(self, info: ModelInfo) -> None:
        self.model_info = info
        self._model_stamp = self.state.next_stamp()
        self.message.hide()
        self.state.reset_session()
        self.state.set_directions(info.directions)
        self.interpolate.clear_keyframes()
        self.directions.clear_tags()
        self.inpaint.show_candidates([])
        self.settings.setValue("model/last", info.path)
        self.model_label.setText(f"{info.name} · {info.image_size}×{info.image_size} · {len(info.directions)} directions")
        self.model_label.setToolTip(f"{info.path}\n{info.description}\nopened in {info.load_seconds:.1f} s")
        self.device_widget.setText(f"device: {info.device}")
        self.setWindowTitle(f"Glow Explorer — {info.name}")
        seed = self._initial_seed if self._initial_seed is not None else random.randrange(1_000_000)
        self._initial_seed = None
        self.state.set_face(FaceRef.from_seed(seed))

    def _on_model_failed(self, message: str, cancelled: bool, path: Optional[str] = None) -> None:
        if cancelled:
            return
        if self.model_info is None:
            self.canvas.set_placeholder("No model loaded.\n\nFile > Open model… (Ctrl+Shift+O), or drop a model folder here.")
        if path is None:
            text = f"No model found: the bundled face model is not installed ({message}). Open a model folder or .safetensors file."
        else:
            text = f"Could not open the model: {message}"
        self.show_error(text, ("Open model…", self.choose_model))

    # ================================================================== rendering
    def _on_state_changed(self, what: frozenset) -> None:
        self._update_face_controls()
        self.request_render()

    def request_render(self) -> None:
        if self.model_info is None or self.state.face is None or self._closing:
            return
        spec = self.state.snapshot()
        with_before = (self.act_compare.isChecked() or self._holding_before) and bool(spec.amounts)
        self.last_render_stamp = self.state.next_stamp()
        self.worker.request_render(RenderRequest(self.last_render_stamp, spec, with_before))

    def settled(self) -> bool:
        """True when the picture on screen answers the newest render request."""
        return self.last_render_stamp == 0 or self._shown_stamp >= self.last_render_stamp

    def _on_rendered(self, res: RenderResult) -> None:
        if res.stamp <= self._shown_stamp:  # older than the picture on screen: stale
            self._dropped += 1
            return
        self._shown_stamp = res.stamp
        self._shown = res
        self.canvas.set_image(res.image, res.stamp)
        key = res.spec.base_key()
        if res.before is not None:
            self.canvas.set_before(res.before)
            self._before_key = key
        elif not res.spec.amounts:
            self.canvas.set_before(res.image)
            self._before_key = key
        elif key != self._before_key:
            self.canvas.set_before(None)
            self._before_key = None
        self.plots.add_render_time(res.ms)
        self.render_label.setText(f"render {res.ms:.0f} ms")
        entry = self.state.history_entry(self.state.current_history_id) if self.state.current_history_id else None
        if entry is not None and entry.thumb is None and entry.snapshot.face == res.spec.face:
            entry.thumb = res.image
            self.history.set_image(entry.id, res.image)
        self._idle.start()

    def _on_render_failed(self, stamp: int, message: str) -> None:
        if stamp < self._model_stamp:  # asked for before another model was opened: stale
            self._dropped += 1
            return
        self.render_errors.append(message)
        self.show_error(f"Could not render: {message}")

    def _on_idle(self) -> None:
        """After the picture settles: refresh the history thumbnail and the analysis plots."""
        res = self._shown
        if res is None or self.state.face is None:
            return
        entry = self.state.history_entry(self.state.current_history_id) if self.state.current_history_id else None
        if entry is not None and entry.snapshot.face == res.spec.face and entry.thumb is not res.image:
            entry.thumb = res.image
            self.history.set_image(entry.id, res.image)
            self.state.update_current_history()
        if self.plots_dock.isVisible() and res.spec == self.state.snapshot():
            self._analysis_stamp = self.state.next_stamp()
            self.worker.request_analysis(AnalysisRequest(self._analysis_stamp, res.spec))

    def _on_analysed(self, res: Any) -> None:
        if res.stamp != self._analysis_stamp:
            return
        self.plots.set_projections(res.projections)
        self.plots.add_bits_per_dim(res.bits_per_dim)

    # ================================================================== sampling controls
    def new_face(self) -> None:
        if self.model_info is None:
            return
        self.state.set_face(FaceRef.from_seed(random.randrange(1_000_000)))

    def _on_seed_entered(self, value: int) -> None:
        face = self.state.face
        if self.model_info is None or (face is not None and face.kind == "seed" and face.seed == value):
            return
        self.state.set_face(FaceRef.from_seed(value))

    def _on_temp_pressed(self) -> None:
        self._temp_gesture = object()

    def _on_temp_slider(self, v: int) -> None:
        gesture = self._temp_gesture if self.temp_slider.isSliderDown() else ("temperature",)
        self.state.set_temperature(v / 100.0, gesture=gesture)
        self.temp_label.setText(f"{v / 100:.2f}")

    def _on_detail_slider(self, v: int) -> None:
        gesture = self._temp_gesture if self.detail_slider.isSliderDown() else ("detail_temperature",)
        self.state.set_detail_temperature(v / 100.0, gesture=gesture)
        self.detail_label.setText(f"{v / 100:.2f}")

    def _update_face_controls(self) -> None:
        face = self.state.face
        for slider, label, value in ((self.temp_slider, self.temp_label, self.state.temperature),
                                     (self.detail_slider, self.detail_label, self.state.detail_temperature)):
            slider.blockSignals(True)
            if not slider.isSliderDown():
                slider.setValue(int(round(value * 100)))
            slider.blockSignals(False)
            label.setText(f"{value:.2f}")
        is_seed = face is not None and face.kind == "seed"
        self.temp_slider.setEnabled(face is None or is_seed)
        self.detail_slider.setEnabled(face is None or is_seed)
        self.temp_slider.setToolTip(
            "Sampling temperature (0 to 1.2): low is smooth and typical, high is varied and detailed"
            if is_seed or face is None else "Temperature applies to sampled faces; this face is " + face.label
        )
        self.seed_spin.blockSignals(True)
        if is_seed:
            self.seed_spin.setValue(int(face.seed))  # type: ignore[union-attr]
        self.seed_spin.blockSignals(False)
        self.canvas.caption = "" if face is None or is_seed else face.label
        for a in (self.act_new, self.act_save, self.act_copy, self.act_keyframe):
            a.setEnabled(self.model_info is not None)

    def _update_undo(self) -> None:
        self.act_undo.setEnabled(self.state.can_undo)
        self.act_redo.setEnabled(self.state.can_redo)

    # ================================================================== history
    def _rebuild_history(self) -> None:
        self.history.blockSignals(True)
        ids = [e.id for e in self.state.history]
        if self.history.payloads() != ids:
            self.history.clear()
            for e in self.state.history:
                self.history.add(e.thumb, e.id, tooltip=e.snapshot.face.label if e.snapshot.face else "")
        cur = self.history.find_payload(self.state.current_history_id)
        if cur is not None:
            self.history.setCurrentItem(cur)
            self.history.scrollToItem(cur)
        self.history.blockSignals(False)

    def _go_history(self, entry_id: Any) -> None:
        self.state.go_to_history(int(entry_id))

    def _step_history(self, step: int) -> None:
        ids = [e.id for e in self.state.history]
        if self.state.current_history_id in ids:
            i = ids.index(self.state.current_history_id) + step
            if 0 <= i < len(ids):
                self.state.go_to_history(ids[i])

    def _history_menu(self, pos: Any) -> None:
        item = self.history.itemAt(pos)
        if item is None:
            return
        entry = self.state.history_entry(int(item.data(Qt.ItemDataRole.UserRole)))
        if entry is None:
            return
        m = QMenu(self)
        m.addAction(icon("plus"), "Add as keyframe", lambda: self._materialize(entry.snapshot, lambda lid, img: self.interpolate.add_keyframe(lid, img, entry.snapshot.face.label if entry.snapshot.face else "")))
        m.addAction(icon("thumb-up"), "Tag: has the attribute", lambda: self._materialize(entry.snapshot, lambda lid, img: self.directions.add_tag(True, lid, img)))
        m.addAction(icon("thumb-down"), "Tag: lacks the attribute", lambda: self._materialize(entry.snapshot, lambda lid, img: self.directions.add_tag(False, lid, img)))
        m.exec(self.history.mapToGlobal(pos))

    def _materialize(self, spec: Any, then: Callable[[int, QImage], None]) -> None:
        self._call("materialize", lambda r: then(r[0], r[1]), spec=spec)

    # ================================================================== canvas view
    def _on_compare(self, on: bool) -> None:
        self.canvas.set_compare("split" if on else "off")
        self.request_render()

    def _on_pixelated(self, on: bool) -> None:
        self.canvas.set_smooth(not on)
        self.act_pixel.setIcon(icon("pixel" if on else "smooth"))

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_B and not e.modifiers() and not e.isAutoRepeat():
            self._holding_before = True
            self.canvas.hold_before(True)
            if self.canvas._before is None:
                self.request_render()
            return
        super().keyPressEvent(e)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_B and not e.isAutoRepeat():
            self._holding_before = False
            self.canvas.hold_before(False)
            return
        super().keyReleaseEvent(e)

    def _update_mask_mode(self, *_: Any) -> None:
        on = self.tools.currentWidget() is self.inpaint and self.tools_dock.isVisible()
        self.canvas.set_mask_mode(on)

    def _focus_search(self) -> None:
        self.attr_dock.show()
        self.attributes.search.setFocus()
        self.attributes.search.selectAll()

    # ================================================================== save / copy
    def save_picture(self, scale: int = 1) -> None:
        img = self.canvas.image()
        if img is None:
            return
        face = self.state.face
        name = (face.label if face else "face").replace(" ", "_").replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Save the picture", f"{Path(name).stem}.png", "PNG image (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        self.save_picture_to(path, scale)

    def save_picture_to(self, path: str, scale: int = 1) -> None:
        img = self.canvas.image()
        if img is None:
            return
        if scale != 1:
            mode = Qt.TransformationMode.SmoothTransformation if self.canvas.smooth else Qt.TransformationMode.FastTransformation
            img = img.scaled(img.width() * scale, img.height() * scale, Qt.AspectRatioMode.IgnoreAspectRatio, mode)
        try:
            _save_image_atomic(img, path)
        except OSError as e:
            self.show_error(f"Could not save the picture: {e}")
            return
        self.statusBar().showMessage(f"Saved {path}", 5000)

    def copy_picture(self) -> None:
        img = self.canvas.image()
        if img is None:
            return
        mode = Qt.TransformationMode.SmoothTransformation if self.canvas.smooth else Qt.TransformationMode.FastTransformation
        QGuiApplication.clipboard().setImage(img.scaled(img.width() * 4, img.height() * 4, Qt.AspectRatioMode.IgnoreAspectRatio, mode))
        self.statusBar().showMessage("Copied the picture (4x) to the clipboard", 3000)

    # ================================================================== photos
    def choose_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a photo", "", PHOTO_FILTER)
        if path:
            self.open_photo(path)

    def open_photo(self, source: Any, label: Optional[str] = None) -> None:
        """Frame and encode a photo (path or encoded bytes); it becomes the current face."""
        if self.model_info is None:
            self.show_error("Open a model first: File > Open model…", ("Open model…", self.choose_model))
            return
        label = label or (Path(source).name if isinstance(source, (str, os.PathLike)) else "pasted picture")
        self._call("load_photo", self._on_photo_loaded, source=str(source) if isinstance(source, os.PathLike) else source, label=label)

    def _on_photo_loaded(self, result: tuple) -> None:
        latent_id, img, message, label = result
        self.state.set_face(FaceRef.from_latent(latent_id, label))
        if message:
            self.show_info(f"{label}: {message}")

    def paste_photo(self) -> None:
        md = QGuiApplication.clipboard().mimeData()
        if md is None:
            return
        if md.hasUrls():
            for url in md.urls():
                if url.isLocalFile():
                    self._open_path(url.toLocalFile())
                    return
        if md.hasImage():
            img = QGuiApplication.clipboard().image()
            if not img.isNull():
                self.open_photo(qimage_to_png_bytes(img), "pasted picture")
                return
        self.statusBar().showMessage("The clipboard holds no picture", 3000)

    def _open_path(self, path: str) -> None:
        p = Path(path)
        if p.is_dir() or p.suffix.lower() in MODEL_SUFFIXES or p.name == "config.json":
            self.open_model(str(p.parent if p.name == "config.json" else p))
        else:
            self.open_photo(str(p))

    def dragEnterEvent(self, e: Any) -> None:  # noqa: N802
        md = e.mimeData()
        if md.hasUrls() or md.hasImage():
            e.acceptProposedAction()

    def dropEvent(self, e: Any) -> None:  # noqa: N802
        md = e.mimeData()
        for url in md.urls() if md.hasUrls() else []:
            if isinstance(url, QUrl) and url.isLocalFile():
                self._open_path(url.toLocalFile())
                e.acceptProposedAction()
                return
        if md.hasImage():
            img = QImage(md.imageData())
            if not img.isNull():
                self.open_photo(qimage_to_png_bytes(img), "dropped picture")
                e.acceptProposedAction()

    # ================================================================== interpolation
    def add_current_keyframe(self) -> None:
        if self.model_info is None or self.state.face is None:
            return
        spec = self.state.snapshot()
        label = spec.face.label if spec.face else ""
        if spec.amounts:
            label += " (edited)"
        self._materialize(spec, lambda lid, img: self.interpolate.add_keyframe(lid, img, label))

    def _add_keyframe_file(self, path: str) -> None:
        if self.model_info is None:
            return
        self._call("load_photo", lambda r: self.interpolate.add_keyframe(r[0], r[1], r[3]), source=path, label=Path(path).name)

    def _refresh_interpolation(self) -> None:
        if not self.interpolate.ready():
            return
        ids, params = self.interpolate.keyframe_ids(), self.interpolate.params()
        stamp = self.state.next_stamp()

        def failed(message: str, cancelled: bool) -> None:
            if not cancelled and stamp > self._model_stamp:  # else its keyframes are gone: stale
                self.show_error(f"{FAIL_TITLES['filmstrip']}: {message}")

        self._call("filmstrip", self.interpolate.set_filmstrip, failed, keyframes=ids, params=params, count=12)
        self._request_preview(self.interpolate.scrub.value())

    def _request_preview(self, index: int) -> None:
        if not self.interpolate.ready() or self.model_info is None:
            return
        self._preview_stamp = self.state.next_stamp()
        self.worker.request_preview(PreviewRequest(self._preview_stamp, self.interpolate.keyframe_ids(), self.interpolate.params(), int(index)))

    def _on_previewed(self, res: Any) -> None:
        self.interpolate.show_preview(res)

    def export_video(self, path: str, eparams: Any) -> int:
        """Export the morph through the keyframes to ``path`` (a job with progress and Cancel)."""
        ids = self.interpolate.keyframe_ids()
        if len(ids) < 2:
            self.show_error("Add at least two keyframes to export a morph.")
            return 0
        return self._call(
            "export", lambda msg: self.show_info(msg.capitalize() if msg else "Exported.", 10000),
            keyframes=ids, params=self.interpolate.params(), export=eparams, path=path,
        )

    def _export_shortcut(self) -> None:
        self.tools_dock.show()
        self.tools.setCurrentWidget(self.interpolate)
        if self.interpolate.ready():
            self.interpolate._choose_export()

    def _play_shortcut(self) -> None:
        if self.tools.currentWidget() is self.interpolate and self.tools_dock.isVisible():
            self.interpolate.toggle_play()

    # ================================================================== inpainting
    def run_inpaint(self, params: Optional[dict] = None) -> int:
        """Fill in the painted area of the picture on the canvas; candidates appear in the tab."""
        res = self._shown
        mask = self.canvas.mask_array()
        if res is None or res.array is None:
            self.show_error("There is no picture to fill in yet.")
            return 0
        if not mask.any():
            self.show_error("Paint the area to fill in first (Inpaint tab, brush on the canvas).")
            return 0
        p = dict(self.inpaint.params() if params is None else params)
        return self._call("inpaint", self.inpaint.show_candidates, image=res.array.copy(), mask=mask.copy(), **p)

    def _inpaint_shortcut(self) -> None:
        if self.tools.currentWidget() is self.inpaint:
            self.run_inpaint()

    def pick_candidate(self, index: int) -> None:
        # The candidates shown, by the inpainting that made them: a newer one may finish first.
        self._call("adopt_candidate", lambda r: self.state.set_face(FaceRef.from_latent(r[0], f"inpainted #{index + 1}")), index=index, batch=self._candidates_cid)

    # ================================================================== directions
    def tag_current(self, positive: bool) -> None:
        if self.model_info is None or self.state.face is None:
            return
        self._materialize(self.state.snapshot(), lambda lid, img: self.directions.add_tag(positive, lid, img))

    def create_direction(self, name: str, positives: list, negatives: list) -> None:
        def done(infos: Any) -> None:
            self.state.set_directions(infos)
            self.state.set_favourite(name, True)
            self.directions.clear_tags()
            self.show_info(f"Added the slider “{name}”.")

        self._call("fit_direction", done, name=name, positives=positives, negatives=negatives)

    def compute_principal(self, k: int, samples: int) -> None:
        def done(infos: Any) -> None:
            self.state.set_directions(infos)
            self.show_info(f"Added {k} principal directions (pc1…pc{k}).")

        self._call("principal", done, k=k, samples=samples, temperature=self.state.temperature, seed=0)

    def save_model_as(self) -> None:
        if self.model_info is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the model with its directions", f"{Path(self.model_info.name).name}-edited.safetensors", "Glow model (*.safetensors)")
        if path:
            if not path.endswith(".safetensors"):
                path += ".safetensors"
            self._call("save_model", lambda msg: self.show_info(msg), path=path)

    # ================================================================== help
    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td style='padding:2px 14px 2px 0'><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Glow Explorer",
            "<b>Glow Explorer</b><br>Explore the latent space of Glow normalizing flows: attribute sliders, "
            "temperature, morphs, inpainting.<br><br>" + (self.model_info.description if self.model_info else "No model open."),
        )

    # ================================================================== closing
    def closeEvent(self, e: Any) -> None:  # noqa: N802
        self._closing = True
        try:
            self.save_settings()
        except Exception:  # never block closing on settings
            pass
        self.interpolate.play.setChecked(False)
        self.shutdown()
        super().closeEvent(e)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel running jobs and stop the worker thread; True when it finished.

        A worker stuck in a step that cannot be interrupted is kept referenced (see
        :data:`LINGERING`) so Qt does not destroy a running thread; :func:`explorer.app.main`
        waits for it a little longer before the process exits.
        """
        if self.host.finished:
            return True
        ok = self.host.shutdown(timeout_ms)
        if not ok:
            LINGERING.append(self.host)
        return ok
