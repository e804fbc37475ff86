"""From a slider move to the picture on screen, in one place.

The path of one move:

1. :class:`~explorer.widgets.attributes.AttributePanel`: the slider's ``valueChanged`` calls
   :meth:`ExplorerState.set_amount <explorer.state.ExplorerState.set_amount>` (the toolbar's
   temperature sliders call ``set_temperature``); the state records undo and emits ``changed``.
2. :meth:`Renderer.request`: the window's ``changed`` handler calls it; it takes a
   :class:`~explorer.state.Snapshot` of the state, stamps it (stamps only grow) and posts a
   :class:`~explorer.protocol.RenderRequest` into the worker's one-slot mailbox: a newer request
   replaces one not yet started (latest wins), so a fast drag never builds a backlog.
3. :class:`~explorer.worker.ModelWorker` (its own thread) takes the request, calls
   :meth:`Engine.render <explorer.engine.Engine.render>` (base latent from a cache, the edit along
   the directions, the decoding; a render still young when a newer request arrives is given up),
   and emits ``rendered`` with a :class:`~explorer.protocol.RenderResult` (a ``QImage``).
4. :meth:`Renderer.on_rendered` (GUI thread, queued signal): a result older than the picture on
   screen is dropped (a ``refined`` one, the same request's picture checked in full after a far-edit
   drag paused, replaces the picture of its stamp); else the canvas shows it, the "before" picture for Compare is kept in step,
   the history thumbnail is set, and :attr:`after_render` listeners (the photo controller, which
   asks the worker for the full-photo composite) are told.
5. 200 ms after the last picture (``idle``): the analysis (projections on every direction,
   bits/dim) for the plots, when they are visible.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QTimer

from .protocol import AnalysisRequest, AnalysisResult, RenderRequest, RenderResult

__all__ = ["Renderer"]


class Renderer(QObject):
    """Sends the state's picture to the worker and shows what comes back, newest only."""

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.last_render_stamp = 0  # the newest render asked for
        self.shown_stamp = 0  # the render on screen
        self.shown: Optional[RenderResult] = None
        self.dropped = 0  # results that arrived stale
        self.errors: list[str] = []
        self.model_stamp = 0  # stamps below this were requests for a model no longer open
        self.holding_before = False  # B held down
        self.after_render: list[Callable[[RenderResult], None]] = []
        self._before_key: Any = None
        self._analysis_stamp = 0
        self.idle = QTimer(self)
        self.idle.setSingleShot(True)
        self.idle.setInterval(200)
        self.idle.timeout.connect(self.on_idle)
        w = win.worker
        w.rendered.connect(self.on_rendered)
        w.render_failed.connect(self.on_failed)
        w.analysed.connect(self.on_analysed)

    def new_model(self) -> None:
        """A model was opened: results asked for before now are stale."""
        self.model_stamp = self.win.state.next_stamp()

    # ------------------------------------------------------------------ 2. request
    def request(self) -> None:
        win = self.win
        if win.model_info is None or win.state.face is None or win.closing:
            return
        spec = win.state.snapshot()
        with_before = (win.act_compare.isChecked() or self.holding_before) and bool(spec.amounts)
        self.last_render_stamp = win.state.next_stamp()
        win.worker.request_render(RenderRequest(self.last_render_stamp, spec, with_before))

    def settled(self) -> bool:
        """True when the picture on screen answers the newest render request."""
        return self.last_render_stamp == 0 or self.shown_stamp >= self.last_render_stamp

    # ------------------------------------------------------------------ 4. show
    def on_rendered(self, res: RenderResult) -> None:
        if res.stamp < self.shown_stamp or (res.stamp == self.shown_stamp and not res.refined):  # stale
            self.dropped += 1
            return
        win = self.win
        self.shown_stamp = res.stamp
        self.shown = res
        win.canvas.set_image(res.image, res.stamp)
        key = res.spec.base_key()
        if res.before is not None:
            win.canvas.set_before(res.before)
            self._before_key = key
        elif not res.spec.amounts:
            win.canvas.set_before(res.image)
            self._before_key = key
        elif key != self._before_key:
            win.canvas.set_before(None)
            self._before_key = None
        win.plots.add_render_time(res.ms)
        win.render_label.setText(f"render {res.ms:.0f} ms")
        self._set_history_thumb(res, update=False)
        for fn in self.after_render:
            fn(res)
        self.idle.start()

    def on_failed(self, stamp: int, message: str) -> None:
        if stamp < self.model_stamp:  # asked for before another model was opened: stale
            self.dropped += 1
            return
        self.errors.append(message)
        self.win.show_error(f"Could not render: {message}")

    def _set_history_thumb(self, res: RenderResult, update: bool) -> None:
        state = self.win.state
        entry = state.history_entry(state.current_history_id) if state.current_history_id else None
        if entry is None or entry.snapshot.face != res.spec.face or entry.thumb is res.image:
            return
        if not update and entry.thumb is not None:
            return
        entry.thumb = res.image
        self.win.history.set_image(entry.id, res.image)
        if update:
            state.update_current_history()

    # ------------------------------------------------------------------ 5. idle
    def on_idle(self) -> None:
        """After the picture settles: refresh the history thumbnail and the analysis plots."""
        res, win = self.shown, self.win
        if res is None or win.state.face is None:
            return
        self._set_history_thumb(res, update=True)
        if win.plots_dock.isVisible() and res.spec == win.state.snapshot():
            self._analysis_stamp = win.state.next_stamp()
            win.worker.request_analysis(AnalysisRequest(self._analysis_stamp, res.spec))

    def on_analysed(self, res: AnalysisResult) -> None:
        if res.stamp != self._analysis_stamp:
            return
        self.win.plots.set_projections(res.projections)
        self.win.plots.add_bits_per_dim(res.bits_per_dim)
