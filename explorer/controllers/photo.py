"""A user's photo, edited at its own size (issue #14): the whole photo beside the face.

Opening a photo (File > Open, drop, paste) runs an :class:`~explorer.protocol.OpenPhoto` job: the
worker reads it, finds and aligns the face and encodes it; the face becomes the current face, so
every slider works on it as on any face. After each face render (:class:`explorer.rendering.Renderer`
calls :meth:`PhotoController.after_render`), a :class:`~explorer.protocol.PhotoCompositeRequest`
goes to the worker's one-slot mailbox (newest wins): it pastes the edit back into the full photo
(glowcore's detail transfer) off the GUI thread, and the photo view shows the newest composite.
Save writes the full-size photo (a :class:`~explorer.protocol.SavePhoto` job); the input is
never overwritten unless the user confirms.

A fill painted on the photo (Inpaint tab) and pasted back in the worker comes back as a new
version of the photo (:meth:`PhotoController.show_fill`, its own latent); the versions are kept
here by latent id, so undo (which goes back to the face before) shows the photo before the fill.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..protocol import Done, OpenPhoto, PhotoComposite, PhotoCompositeRequest, PhotoOpened, PhotoResult, RenderResult, SavePhoto
from ..state import FaceRef

__all__ = ["PhotoController"]

SAVE_FILTER = "Same as the photo (*{suffix});;JPEG (*.jpg *.jpeg);;PNG (*.png);;WebP (*.webp);;TIFF (*.tif *.tiff)"


class PhotoController(QObject):
    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.panel = win.photo_panel
        self.view = self.panel.view
        self.photo: Optional[PhotoOpened] = None  # the photo open (the version shown)
        self.versions: dict[int, PhotoOpened] = {}  # the open photo and the fills pasted into it, by latent id
        self.source: Union[str, bytes, None] = None
        self.composite_stamp = 0  # the newest composite asked for
        self.shown_stamp = 0  # the composite on screen
        self.composites = 0
        p = self.panel
        p.draw_box_requested.connect(self.set_box_mode)
        p.centre_requested.connect(self.use_centre_square)
        p.save_requested.connect(self.save_photo)
        p.save_face_requested.connect(win.save_face)
        p.close_requested.connect(self.close_photo)
        p.quality.setValue(win.settings.jpeg_quality())
        p.quality.valueChanged.connect(win.settings.set_jpeg_quality)
        p.spread.toggled.connect(lambda _on: self._rerequest(force=True))
        self.view.box_drawn.connect(self.use_box)
        self.view.face_picked.connect(self.use_face)
        self.view.zoom_changed.connect(lambda _z: self._rerequest())
        self._last: Optional[RenderResult] = None  # the face picture the photo follows
        self._scale = 1.0  # the resolution of the composite on screen (see PhotoCompositeRequest)
        win.worker.composited.connect(self.on_composited)
        win.renderer.after_render.append(self.after_render)
        self.panel.hide()

    # ------------------------------------------------------------------ opening
    def open(self, source: Union[str, bytes], label: str, box: Optional[tuple] = None, centre_crop: bool = False, face: int = 0,
             reframe: Optional[int] = None) -> int:
        """Open a photo (``reframe``: frame the open version with that latent id again, its fills
        included, see :class:`~explorer.protocol.OpenPhoto`)."""
        self.source = source
        return self.win.jobs.run(OpenPhoto(source, label, box, centre_crop, face, reframe), self._on_opened)

    def _on_opened(self, r: Any) -> None:
        win = self.win
        if isinstance(r, PhotoResult):  # not larger than the model: its face only, as before
            self.close_photo()
            win.on_face_loaded(r)
            return
        self.photo = r
        self.versions = {r.latent_id: r}
        self._last = None
        self.composite_stamp = self.shown_stamp = 0
        self.panel.draw_box.setChecked(False)
        self.view.set_photo(r.photo)
        self.view.set_face(r.frame, r.box, r.landmarks, r.faces, r.face_index)
        w, h = r.size
        self.panel.title.setText(f"{r.label} · {w}×{h}")
        self.panel.note.setText(r.message)
        self.panel.show()
        win.state.set_face(FaceRef.from_latent(r.latent_id, r.label))
        if r.found:
            win.show_info(r.message)
        else:
            win.show_error(r.message, ("Draw face box", lambda: self.panel.draw_box.setChecked(True)))

    def show_fill(self, r: PhotoOpened) -> None:
        """A fill pasted into the photo (by the worker): the new version of the photo becomes the
        one shown and its face the current face (undo goes back to the photo before)."""
        if self.photo is None:
            return
        self.versions[r.latent_id] = r
        while len(self.versions) > 8:
            self.versions.pop(next(iter(self.versions)))
        self._show_version(r)
        self.win.state.set_face(FaceRef.from_latent(r.latent_id, f"{r.label} (filled)"))

    def _show_version(self, r: PhotoOpened) -> None:
        self.photo = r
        self._last = None
        self.composite_stamp = self.shown_stamp = 0
        self.view.set_photo(r.photo, keep_view=True)
        self.panel.note.setText(r.message)

    def active(self) -> bool:
        """Whether the face shown is the open photo's (the photo view is then shown)."""
        face = self.win.state.face
        return self.photo is not None and face is not None and face.latent_id in self.versions

    def sync_visibility(self) -> None:
        """Show the photo while its face is the current face (undo, history and new faces move
        away); undo or redo across a fill shows that version of the photo."""
        face = self.win.state.face
        if self.active() and face.latent_id != self.photo.latent_id:
            self._show_version(self.versions[face.latent_id])
        self.panel.setVisible(self.active())

    def close_photo(self) -> None:
        self.photo = None
        self.versions = {}
        self.source = None
        self.panel.hide()
        self.win.update_mask_mode()  # the Inpaint brush goes back to the face

    # ------------------------------------------------------------------ manual face box
    def set_box_mode(self, on: bool) -> None:
        self.view.set_box_mode(on)
        if on:
            self.win.statusBar().showMessage("Drag a rectangle around the face on the photo", 8000)

    def use_box(self, x: float, y: float, w: float, h: float) -> None:
        self.panel.draw_box.setChecked(False)
        if self.photo is not None and self.source is not None:
            self.open(self.source, self.photo.label, box=(x, y, w, h), reframe=self.photo.latent_id)

    def use_face(self, index: int) -> None:
        """Edit another of the faces found (clicked on the photo)."""
        if self.photo is not None and self.source is not None:
            self.open(self.source, self.photo.label, face=index, reframe=self.photo.latent_id)

    def use_centre_square(self) -> None:
        if self.photo is not None and self.source is not None:
            self.open(self.source, self.photo.label, centre_crop=True, reframe=self.photo.latent_id)

    # ------------------------------------------------------------------ the composite
    def after_render(self, res: RenderResult) -> None:
        """A face picture was shown: ask for the full photo with that face pasted back."""
        if not self.active() or res.spec.face is None or res.spec.face.latent_id != self.photo.latent_id:
            return
        self._last = res
        self.composite_stamp = res.stamp
        self._scale = self._wanted_scale()
        self.win.worker.request_composite(PhotoCompositeRequest(res.stamp, res.spec, self._scale, self.panel.spread.isChecked()))

    def _wanted_scale(self) -> float:
        """Paste at the resolution the view shows (a margin of 1.5x for smooth scaling); full
        resolution from 2/3 of a photo pixel per screen pixel on."""
        s = 1.5 * self.view.display_scale()
        return 1.0 if s >= 1.0 else s

    def _rerequest(self, force: bool = False) -> None:
        """Zoomed in past the resolution of the composite on screen (or ``force``: the paste
        changed, e.g. Spread): ask for a new one."""
        res = self._last
        if res is None or not self.active() or res.spec.face.latent_id != self.photo.latent_id or (self._wanted_scale() <= self._scale and not force):
            return
        self._scale = max(self._scale, self._wanted_scale())
        self.composite_stamp = self.win.state.next_stamp()
        self.win.worker.request_composite(PhotoCompositeRequest(self.composite_stamp, res.spec, self._scale, self.panel.spread.isChecked()))

    def on_composited(self, res: PhotoComposite) -> None:
        if res.stamp <= self.shown_stamp or not self.active() or res.spec.face.latent_id != self.photo.latent_id:
            return  # stale, or a photo no longer shown
        self.shown_stamp = res.stamp
        self.composites += 1
        self.view.set_composite(res.patch, res.offset, res.size, res.stamp)

    def settled(self) -> bool:
        """True when the photo on screen answers the newest face picture."""
        return not self.active() or self.shown_stamp >= self.composite_stamp

    # ------------------------------------------------------------------ saving
    def default_name(self) -> str:
        assert self.photo is not None
        src = Path(self.photo.path) if self.photo.path else Path(self.photo.label)
        suffix = src.suffix.lower() if src.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp") else ".png"
        return str(src.with_name(f"{src.stem}-edited{suffix}")) if self.photo.path else f"{src.stem}-edited{suffix}"

    def save_photo(self) -> None:
        if self.photo is None:
            return
        name = self.default_name()
        path, _ = QFileDialog.getSaveFileName(self.win, "Save the photo at full size", name, SAVE_FILTER.format(suffix=Path(name).suffix))
        if path:
            if not Path(path).suffix:
                path += Path(name).suffix
            self.save_photo_to(path)

    def save_photo_to(self, path: str, quality: Optional[int] = None) -> int:
        """Write the full-size photo with the current edits; asks before replacing the photo's own file."""
        if self.photo is None or not self.active():
            self.win.show_error("No photo is open (or the face shown is not the photo's).")
            return 0
        overwrite = False
        if self.photo.path and os.path.exists(path) and _same(path, self.photo.path):
            answer = QMessageBox.question(
                self.win, "Replace the original photo?",
                f"{Path(path).name} is the photo you opened. Replace it with the edited photo? This cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                self.win.show_info("Not saved: the original photo is kept.")
                return 0
            overwrite = True
        q = self.panel.quality.value() if quality is None else int(quality)

        def done(r: Done) -> None:
            self.win.show_info(r.message.capitalize(), 8000)

        return self.win.jobs.run(SavePhoto(self.win.state.snapshot(), path, q, overwrite, self.panel.spread.isChecked()), done)


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
