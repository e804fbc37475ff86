"""The Interpolate tab: keyframes, the morph preview and filmstrip, and the video export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer

from ..protocol import Export, ExportParams, FaceResult, Filmstrip, LoadPhoto, PhotoResult, PreviewRequest, PreviewResult

__all__ = ["MorphController"]


class MorphController(QObject):
    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.panel = win.interpolate
        self.preview_stamp = 0  # the newest preview asked for
        self._timer = QTimer(self)  # the filmstrip follows edits of the keyframes after a pause
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.refresh)
        p = self.panel
        p.add_current_requested.connect(self.add_current_keyframe)
        p.add_file_requested.connect(self.add_keyframe_file)
        p.changed.connect(lambda: self._timer.start())
        p.preview_requested.connect(self.request_preview)
        p.export_requested.connect(self.export_video)
        win.worker.previewed.connect(self.on_previewed)

    # ------------------------------------------------------------------ keyframes
    def add_current_keyframe(self) -> None:
        win = self.win
        if win.model_info is None or win.state.face is None:
            return
        spec = win.state.snapshot()
        label = spec.face.label if spec.face else ""
        if spec.amounts:
            label += " (edited)"
        win.materialize(spec, lambda r: self.panel.add_keyframe(r.latent_id, r.image, label))

    def add_keyframe_file(self, path: str) -> None:
        if self.win.model_info is None:
            return

        def done(r: PhotoResult) -> None:
            self.panel.add_keyframe(r.latent_id, r.image, r.label)

        self.win.jobs.run(LoadPhoto(path, Path(path).name), done)

    def add_keyframe_result(self, r: FaceResult, label: str) -> None:
        self.panel.add_keyframe(r.latent_id, r.image, label)

    # ------------------------------------------------------------------ preview
    def refresh(self) -> None:
        """The filmstrip and the preview frame, after the keyframes or the parameters changed."""
        if not self.panel.ready():
            return
        stamp = self.win.state.next_stamp()
        job = Filmstrip(self.panel.keyframe_ids(), self.panel.params(), 12)

        def failed(message: str, cancelled: bool) -> None:
            if not cancelled and stamp > self.win.renderer.model_stamp:  # else its keyframes are gone: stale
                self.win.show_error(f"{job.fail_title}: {message}")

        self.win.jobs.run(job, self.panel.set_filmstrip, failed)
        self.request_preview(self.panel.scrub.value())

    def request_preview(self, index: int) -> None:
        if not self.panel.ready() or self.win.model_info is None:
            return
        self.preview_stamp = self.win.state.next_stamp()
        self.win.worker.request_preview(PreviewRequest(self.preview_stamp, self.panel.keyframe_ids(), self.panel.params(), int(index)))

    def on_previewed(self, res: PreviewResult) -> None:
        self.panel.show_preview(res)

    # ------------------------------------------------------------------ export
    def export_video(self, path: str, eparams: ExportParams) -> int:
        """Export the morph through the keyframes to ``path`` (a job with progress and Cancel)."""
        ids = self.panel.keyframe_ids()
        if len(ids) < 2:
            self.win.show_error("Add at least two keyframes to export a morph.")
            return 0
        return self.win.jobs.run(
            Export(ids, self.panel.params(), eparams, path),
            lambda r: self.win.show_info(r.message.capitalize() if r.message else "Exported.", 10000),
        )

    def export_shortcut(self) -> None:
        self.win.show_tool(self.panel)
        if self.panel.ready():
            self.panel.choose_export()

    def play_shortcut(self) -> None:
        if self.win.tool_shown(self.panel):
            self.panel.toggle_play()
