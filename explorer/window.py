"""The main window: it builds the parts and wires them together.

Where things are:

* :mod:`explorer.layout`: which widget goes where (canvas, docks, toolbar, status bar);
* :mod:`explorer.actions`: every command as data (menus, toolbar, shortcuts, the F1 list);
* :mod:`explorer.settings`: what is remembered between runs;
* :mod:`explorer.rendering`: the path from a slider move to the picture on screen;
* :mod:`explorer.jobs`: typed jobs to the worker, with progress and Cancel;
* :mod:`explorer.controllers`: one controller per tool (interpolate, inpaint, directions) and the
  photo edited at full size (photo).

What stays here: opening models and photos, saving and copying the picture, the history strip,
the seed and temperature controls, key and drop events, closing.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QGuiApplication, QImage, QKeyEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

from . import layout
from .actions import build_actions, build_menus, shortcut_rows
from .controllers.directions import DirectionsController
from .controllers.inpaint import InpaintController
from .controllers.interpolate import MorphController
from .controllers.photo import PhotoController
from .files import save_image_atomic
from .icons import icon
from .jobs import JobRunner
from .protocol import FaceResult, Materialize, ModelInfo, OpenModel, PhotoResult
from .qimage import qimage_to_png_bytes
from .rendering import Renderer
from .settings import Settings
from .state import ExplorerState, FaceRef, Snapshot
from .worker import WorkerHost

__all__ = ["MainWindow", "LINGERING"]

#: Worker hosts whose thread had not finished when their window closed.
LINGERING: list[WorkerHost] = []

PHOTO_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff)"
MODEL_SUFFIXES = (".safetensors",)


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
        self.settings = Settings(settings)
        self.state = ExplorerState(self.settings.favourites())
        for attr, value in self.settings.temperatures().items():
            setattr(self.state, attr, value)
        self._initial_seed = seed
        self.model_info: Optional[ModelInfo] = None
        self.device_label = ""
        self.closing = False

        self.host = WorkerHost(device, engine_factory, threads)
        self.worker = self.host.worker
        self.worker.engine_ready.connect(self._on_engine_ready)

        self.setWindowTitle("Glow Explorer")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        layout.build_central(self)
        layout.build_docks(self)
        self.actions_by_name = build_actions(self)
        layout.build_toolbar(self, self.actions_by_name)
        build_menus(self, self.actions_by_name, [self.attr_dock, self.tools_dock, self.plots_dock])
        layout.build_statusbar(self)

        self.jobs = JobRunner(self.worker, self.jobbar, self.show_error, lambda text: self.show_info(text, 4000))
        self.renderer = Renderer(self)
        self.morph_ctl = MorphController(self)
        self.inpaint_ctl = InpaintController(self)
        self.directions_ctl = DirectionsController(self)
        self.photo_ctl = PhotoController(self)
        self._wire()

        self.resize(1500, 940)
        self.settings.restore_window(self)
        self._update_undo()
        self._update_face_controls()
        self.canvas.set_placeholder("Starting…")
        if open_at_start:
            path = model_path if model_path is not None else self.settings.last_model()
            QTimer.singleShot(0, lambda: self.open_model(path))

    def _wire(self) -> None:
        s = self.state
        s.changed.connect(self._on_state_changed)
        s.history_changed.connect(self._rebuild_history)
        s.undo_changed.connect(self._update_undo)
        s.favourites_changed.connect(lambda: self.settings.set_favourites(s.favourites))
        self.attributes.slider_released.connect(lambda _n: self.renderer.idle.start())
        self.history.activated_payload.connect(lambda entry_id: s.go_to_history(int(entry_id)))
        self.history.customContextMenuRequested.connect(self._history_menu)
        self.tools.currentChanged.connect(self.update_mask_mode)
        self.tools_dock.visibilityChanged.connect(lambda _v: self.update_mask_mode())
        self.plots_dock.visibilityChanged.connect(lambda v: v and self.renderer.idle.start())
        self.seed_spin.valueChanged.connect(self._on_seed_entered)
        self._temp_gesture: Any = None
        for slider, setter, name in ((self.temp_slider, s.set_temperature, "temperature"), (self.detail_slider, s.set_detail_temperature, "detail_temperature")):
            slider.valueChanged.connect(lambda v, sl=slider, fn=setter, nm=name: self._on_sampling_slider(sl, fn, nm, v))
            slider.sliderPressed.connect(self._on_temp_pressed)
            slider.sliderReleased.connect(s.end_gesture)

    # ================================================================== for the tests and controllers
    @property
    def last_render_stamp(self) -> int:
        return self.renderer.last_render_stamp

    def settled(self) -> bool:
        """True when the picture on screen answers the newest render request."""
        return self.renderer.settled()

    def request_render(self) -> None:
        self.renderer.request()

    def materialize(self, spec: Snapshot, then: Callable[[FaceResult], None]) -> int:
        """Store the face of ``spec`` as a latent in the worker, then ``then(result)``."""
        return self.jobs.run(Materialize(spec), then)

    def show_tool(self, panel: QWidget) -> None:
        self.tools_dock.show()
        self.tools.setCurrentWidget(panel)

    def tool_shown(self, panel: QWidget) -> bool:
        return self.tools.currentWidget() is panel and self.tools_dock.isVisible()

    def show_error(self, text: str, action: Optional[tuple[str, Callable]] = None) -> None:
        self.message.show_message(text, "error", action)
        self.statusBar().showMessage(text, 8000)

    def show_info(self, text: str, timeout_ms: int = 6000) -> None:
        self.message.show_message(text, "info", timeout_ms=timeout_ms)

    def cancel_job(self) -> None:
        self.jobs.cancel_current()

    def _on_engine_ready(self, label: str) -> None:
        self.device_label = label
        self.device_widget.setText(f"device: {label}")

    # ================================================================== model
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a Glow model", "", "Glow models (config.json *.safetensors);;All files (*)")
        if path:
            if Path(path).name == "config.json":
                path = str(Path(path).parent)
            self.open_model(path)

    def open_model(self, path: Optional[str]) -> None:
        """Open a model folder or .safetensors file (None: the bundled model) on the worker."""
        if self.renderer.shown is None:
            self.canvas.set_placeholder("Opening the model…")
        self.jobs.run(OpenModel(path), self._on_model_opened, lambda msg, c: self._on_model_failed(msg, c, path))

    def _on_model_opened(self, info: ModelInfo) -> None:
        self.model_info = info
        self.renderer.new_model()
        self.message.hide()
        self.state.reset_session()
        self.state.set_directions(info.directions)
        self.interpolate.clear_keyframes()
        self.interpolate.set_face_size(info.image_size)
        self.photo_ctl.close_photo()
        self.directions_ctl.clear()
        self.inpaint_ctl.clear()
        self.settings.set_last_model(info.path)
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

    # ================================================================== state -> controls
    def _on_state_changed(self, what: frozenset) -> None:
        self._update_face_controls()
        self.photo_ctl.sync_visibility()
        self.update_mask_mode()
        self.renderer.request()

    def new_face(self) -> None:
        if self.model_info is None:
            return
        self.state.set_face(FaceRef.from_seed(random.randrange(1_000_000)))

    def reset_attributes(self) -> None:
        self.state.reset()

    def _on_seed_entered(self, value: int) -> None:
        face = self.state.face
        if self.model_info is None or (face is not None and face.kind == "seed" and face.seed == value):
            return
        self.state.set_face(FaceRef.from_seed(value))

    def _on_temp_pressed(self) -> None:
        self._temp_gesture = object()

    def _on_sampling_slider(self, slider: Any, setter: Callable, name: str, v: int) -> None:
        gesture = self._temp_gesture if slider.isSliderDown() else (name,)
        setter(v / 100.0, gesture=gesture)
        (self.temp_label if slider is self.temp_slider else self.detail_label).setText(f"{v / 100:.2f}")

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
            layout.TEMPERATURE_TIP if is_seed or face is None else "Temperature applies to sampled faces; this face is " + face.label
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

    def _step_history(self, step: int) -> None:
        ids = [e.id for e in self.state.history]
        if self.state.current_history_id in ids:
            i = ids.index(self.state.current_history_id) + step
            if 0 <= i < len(ids):
                self.state.go_to_history(ids[i])

    def step_history_back(self) -> None:
        self._step_history(-1)

    def step_history_forward(self) -> None:
        self._step_history(1)

    def _history_menu(self, pos: Any) -> None:
        item = self.history.itemAt(pos)
        if item is None:
            return
        entry = self.state.history_entry(int(item.data(Qt.ItemDataRole.UserRole)))
        if entry is None:
            return
        snap = entry.snapshot
        label = snap.face.label if snap.face else ""
        m = QMenu(self)
        m.addAction(icon("plus"), "Add as keyframe", lambda: self.materialize(snap, lambda r: self.interpolate.add_keyframe(r.latent_id, r.image, label)))
        m.addAction(icon("thumb-up"), "Tag: has the attribute", lambda: self.materialize(snap, lambda r: self.directions.add_tag(True, r.latent_id, r.image)))
        m.addAction(icon("thumb-down"), "Tag: lacks the attribute", lambda: self.materialize(snap, lambda r: self.directions.add_tag(False, r.latent_id, r.image)))
        m.exec(self.history.mapToGlobal(pos))

    # ================================================================== canvas view
    def set_compare(self, on: bool) -> None:
        self.canvas.set_compare("split" if on else "off")
        self.photo_panel.view.set_compare("split" if on else "off")
        self.renderer.request()

    def set_pixelated(self, on: bool) -> None:
        self.canvas.set_smooth(not on)
        self.act_pixel.setIcon(icon("pixel" if on else "smooth"))

    def _zoomed(self) -> Any:
        """What the zoom keys act on: the photo while one is shown, else the face."""
        return self.photo_panel.view if self.photo_ctl.active() else self.canvas

    def zoom_fit(self) -> None:
        self._zoomed().set_zoom(1.0)

    def zoom_in(self) -> None:
        self._zoomed().set_zoom(self._zoomed().zoom * 1.25)

    def zoom_out(self) -> None:
        self._zoomed().set_zoom(self._zoomed().zoom / 1.25)

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_B and not e.modifiers() and not e.isAutoRepeat():
            self.renderer.holding_before = True
            self.canvas.hold_before(True)
            self.photo_panel.view.hold_before(True)
            if not self.canvas.has_before():
                self.renderer.request()
            return
        super().keyPressEvent(e)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_B and not e.isAutoRepeat():
            self.renderer.holding_before = False
            self.canvas.hold_before(False)
            self.photo_panel.view.hold_before(False)
            return
        super().keyReleaseEvent(e)

    def update_mask_mode(self, *_: Any) -> None:
        """The Inpaint tab paints its mask on the full photo while a photo is shown, else on the face."""
        shown = self.tool_shown(self.inpaint)
        on_photo = self.photo_ctl.active()
        self.canvas.set_mask_mode(shown and not on_photo)
        self.photo_panel.view.set_mask_mode(shown and on_photo)
        size = self.model_info.image_size if self.model_info else 64
        note = (f"Painting on the full photo. Filled areas are at the model's resolution ({size} px across the face), "
                "blended into the photo; painted pixels outside the face's frame (the blue square) are left alone.") if on_photo else ""
        self.inpaint.set_target(self.photo_panel.view if on_photo else self.canvas, note)

    def focus_search(self) -> None:
        self.attr_dock.show()
        self.attributes.search.setFocus()
        self.attributes.search.selectAll()

    # ================================================================== save / copy
    def _scaled(self, img: QImage, scale: int) -> QImage:
        mode = Qt.TransformationMode.SmoothTransformation if self.canvas.smooth else Qt.TransformationMode.FastTransformation
        return img.scaled(img.width() * scale, img.height() * scale, Qt.AspectRatioMode.IgnoreAspectRatio, mode)

    def save_picture(self, scale: int = 1) -> None:
        """Save: the full-size photo when a photo is open (scale 1), else the picture as PNG."""
        if scale == 1 and self.photo_ctl.active():
            self.photo_ctl.save_photo()
            return
        self.save_face(scale)

    def save_face(self, scale: int = 1) -> None:
        """Save the model-size face (the canvas picture) as PNG."""
        if self.canvas.image() is None:
            return
        face = self.state.face
        name = (face.label if face else "face").replace(" ", "_").replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Save the picture", f"{Path(name).stem}.png", "PNG image (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        self.save_picture_to(path, scale)

    def save_picture_enlarged(self) -> None:
        self.save_face(scale=4)

    def save_picture_to(self, path: str, scale: int = 1) -> None:
        img = self.canvas.image()
        if img is None:
            return
        if scale != 1:
            img = self._scaled(img, scale)
        try:
            save_image_atomic(img, path)
        except OSError as e:
            self.show_error(f"Could not save the picture: {e}")
            return
        self.statusBar().showMessage(f"Saved {path}", 5000)

    def copy_picture(self) -> None:
        img = self.canvas.image()
        if img is None:
            return
        QGuiApplication.clipboard().setImage(self._scaled(img, 4))
        self.statusBar().showMessage("Copied the picture (4x) to the clipboard", 3000)

    # ================================================================== photos
    def choose_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a photo", "", PHOTO_FILTER)
        if path:
            self.open_photo(path)

    def open_photo(self, source: Any, label: Optional[str] = None) -> None:
        """Open a photo (path or encoded bytes): its face becomes the current face, and a photo
        larger than the model is shown whole and edited at its own size (:mod:`.controllers.photo`)."""
        if self.model_info is None:
            self.show_error("Open a model first: File > Open model…", ("Open model…", self.choose_model))
            return
        label = label or (Path(source).name if isinstance(source, (str, os.PathLike)) else "pasted picture")
        self.photo_ctl.open(str(source) if isinstance(source, os.PathLike) else source, label)

    def on_face_loaded(self, r: PhotoResult) -> None:
        """A photo framed as a face only (not larger than the model)."""
        self.state.set_face(FaceRef.from_latent(r.latent_id, r.label))
        if r.message:
            self.show_info(f"{r.label}: {r.message}")

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

    # ================================================================== help
    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td style='padding:2px 14px 2px 0'><b>{k}</b></td><td>{v}</td></tr>" for k, v in shortcut_rows())
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Glow Explorer",
            "<b>Glow Explorer</b><br>Explore the latent space of Glow normalizing flows: attribute sliders, "
            "temperature, morphs, inpainting.<br><br>" + (self.model_info.description if self.model_info else "No model open."),
        )

    # ================================================================== closing
    def closeEvent(self, e: Any) -> None:  # noqa: N802
        self.closing = True
        try:
            self.settings.save_window(self)
        except Exception:  # never block closing on settings
            pass
        self.interpolate.play.setChecked(False)
        self.shutdown()
        super().closeEvent(e)

    def save_settings(self) -> None:
        self.settings.save_window(self)

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
