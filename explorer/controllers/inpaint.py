"""The Inpaint tab: fill the area painted on the canvas, show the candidates, adopt one.

While a photo is shown the mask is painted on the full photo instead (the window points the tab
at the photo view): an :class:`~explorer.protocol.InpaintPhoto` job carries it into the face's
frame and fills there, and the candidate used is pasted back into the photo by an
:class:`~explorer.protocol.AdoptPhotoFill` job (the composite is made in the worker); the photo
controller shows the filled photo as a new version of the photo (undo goes back)."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QObject

from ..protocol import AdoptCandidate, AdoptPhotoFill, Candidates, FaceResult, Inpaint, InpaintParams, InpaintPhoto, Job, PhotoOpened
from ..state import FaceRef

__all__ = ["InpaintController"]


class InpaintController(QObject):
    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.panel = win.inpaint
        self.candidates_batch: Optional[int] = None  # the inpainting whose candidates are shown
        self.batch_on_photo = False  # whether those candidates fill a mask painted on the photo
        self.panel.run_requested.connect(self.run)
        self.panel.pick_requested.connect(self.pick_candidate)
        win.jobs.started.connect(self._on_started)
        win.jobs.ended.connect(self._on_ended)

    def run(self, params: Optional[InpaintParams] = None) -> int:
        """Fill in the painted area of the picture on the canvas; candidates appear in the tab."""
        win = self.win
        if self.panel.painting_on_photo() and win.photo_ctl.active():
            return self.run_on_photo(params)
        res = win.renderer.shown
        mask = win.canvas.mask_array()
        if res is None or res.array is None:
            win.show_error("There is no picture to fill in yet.")
            return 0
        if not mask.any():
            win.show_error("Paint the area to fill in first (Inpaint tab, brush on the canvas).")
            return 0
        job = Inpaint(res.array.copy(), mask.copy(), self.panel.params() if params is None else params)
        return win.jobs.run(job, lambda r: self._show(r))

    def run_on_photo(self, params: Optional[InpaintParams] = None) -> int:
        """Fill the area painted on the full photo (the photo's face as shown, with its edits)."""
        win = self.win
        mask = win.photo_panel.view.mask_array()
        if not mask.any():
            win.show_error("Paint the area to fill in first (Inpaint tab, brush on the photo).")
            return 0
        job = InpaintPhoto(win.state.snapshot(), mask.copy(), self.panel.params() if params is None else params, win.photo_panel.spread.isChecked())
        return win.jobs.run(job, lambda r: self._show(r))

    def _show(self, result: Candidates) -> None:
        self.panel.show_candidates(list(result.images))

    def _on_started(self, cid: int, job: Job) -> None:
        if isinstance(job, (Inpaint, InpaintPhoto)):
            self.panel.set_busy(True)

    def _on_ended(self, cid: int, job: Job, ok: bool) -> None:
        if isinstance(job, (Inpaint, InpaintPhoto)):
            self.panel.set_busy(False)
            if ok:
                self.candidates_batch = cid
                self.batch_on_photo = isinstance(job, InpaintPhoto)

    def shortcut(self) -> None:
        if self.win.tools.currentWidget() is self.panel:
            self.run()

    def pick_candidate(self, index: int) -> None:
        # The candidates shown, by the inpainting that made them: a newer one may finish first.
        if self.batch_on_photo:
            photo = self.win.photo_ctl.photo
            self.win.jobs.run(AdoptPhotoFill(index, self.candidates_batch, photo.face_index if photo else 0), self._pasted)
            return

        def done(r: FaceResult) -> None:
            self.win.state.set_face(FaceRef.from_latent(r.latent_id, f"inpainted #{index + 1}"))

        self.win.jobs.run(AdoptCandidate(index, self.candidates_batch), done)

    def _pasted(self, r: PhotoOpened) -> None:
        self.win.photo_ctl.show_fill(r)
        self.win.photo_panel.view.clear_mask()
        self.win.show_info(r.message, 8000)

    def clear(self) -> None:
        self.panel.show_candidates([])
