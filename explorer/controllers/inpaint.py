"""The Inpaint tab: fill the area painted on the canvas, show the candidates, adopt one."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QObject

from ..protocol import AdoptCandidate, Candidates, FaceResult, Inpaint, InpaintParams, Job
from ..state import FaceRef

__all__ = ["InpaintController"]


class InpaintController(QObject):
    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.panel = win.inpaint
        self.candidates_batch: Optional[int] = None  # the inpainting whose candidates are shown
        self.panel.run_requested.connect(self.run)
        self.panel.pick_requested.connect(self.pick_candidate)
        win.jobs.started.connect(self._on_started)
        win.jobs.ended.connect(self._on_ended)

    def run(self, params: Optional[InpaintParams] = None) -> int:
        """Fill in the painted area of the picture on the canvas; candidates appear in the tab."""
        win = self.win
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

    def _show(self, result: Candidates) -> None:
        self.panel.show_candidates(list(result.images))

    def _on_started(self, cid: int, job: Job) -> None:
        if isinstance(job, Inpaint):
            self.panel.set_busy(True)

    def _on_ended(self, cid: int, job: Job, ok: bool) -> None:
        if isinstance(job, Inpaint):
            self.panel.set_busy(False)
            if ok:
                self.candidates_batch = cid

    def shortcut(self) -> None:
        if self.win.tools.currentWidget() is self.panel:
            self.run()

    def pick_candidate(self, index: int) -> None:
        # The candidates shown, by the inpainting that made them: a newer one may finish first.
        def done(r: FaceResult) -> None:
            self.win.state.set_face(FaceRef.from_latent(r.latent_id, f"inpainted #{index + 1}"))

        self.win.jobs.run(AdoptCandidate(index, self.candidates_batch), done)

    def clear(self) -> None:
        self.panel.show_candidates([])
