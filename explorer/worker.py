"""The model worker: one QObject on its own QThread that owns the model and does all torch work.

The GUI thread talks to it through thread-safe methods that never block:

* :meth:`ModelWorker.request_render`, :meth:`~ModelWorker.request_preview` and
  :meth:`~ModelWorker.request_analysis` put a stamped request into a one-slot mailbox; a newer
  request replaces an older one that has not started (latest wins), so while a slider moves the
  worker renders the newest value only and never builds a backlog.
* :meth:`ModelWorker.submit` queues a job (a typed message from :mod:`explorer.protocol`:
  :class:`~explorer.protocol.OpenModel`, :class:`~explorer.protocol.LoadPhoto`,
  :class:`~explorer.protocol.Inpaint`, ...) and returns its id; :meth:`~ModelWorker.cancel`
  stops it at its next check. Each job type has one handler here (``_run_job``, dispatched on the
  type), and each returns a typed result (:class:`~explorer.protocol.FaceResult`, ...).

Results come back through Qt signals (queued to the GUI thread) as plain messages holding
``QImage`` objects made from numpy in the worker thread. The torch side lives in
:mod:`explorer.engine`, imported lazily in the worker thread, so the window shows before torch
has even loaded. While a long job runs, its progress callback also serves pending render
requests, so sliders stay live during inpainting or export.
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from .protocol import (
    AdoptCandidate,
    AdoptPhotoFill,
    AnalysisRequest,
    AnalysisResult,
    Candidates,
    Directions,
    Done,
    Export,
    FaceResult,
    FilmFrame,
    Filmstrip,
    FitDirection,
    Inpaint,
    InpaintPhoto,
    Job,
    LoadPhoto,
    Materialize,
    OpenModel,
    OpenPhoto,
    PhotoComposite,
    PhotoCompositeRequest,
    PhotoOpened,
    PhotoResult,
    PreviewRequest,
    PreviewResult,
    Principal,
    RenderRequest,
    RenderResult,
    SaveModel,
    SavePhoto,
    describe_error,
)
from .qimage import array_to_qimage
from .render_lane import RenderLane

__all__ = ["ModelWorker", "WorkerHost", "describe_error"]


@dataclass
class _Command:
    id: int
    job: Job
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class _JobContext:
    """What a job handler gets besides its job: progress, cancel token and the job's id."""

    id: int
    progress: Callable[[int, int, str], None]
    cancel: Any  # engine.CancelToken


class ModelWorker(QObject):
    """Owns the model (through :class:`explorer.engine.Engine`) and serves the GUI's requests."""

    engine_ready = Signal(str)  # device label
    rendered = Signal(object)  # RenderResult
    render_failed = Signal(int, str)  # stamp, message
    composited = Signal(object)  # PhotoComposite
    previewed = Signal(object)  # PreviewResult
    analysed = Signal(object)  # AnalysisResult
    command_started = Signal(int, object)  # id, Job
    command_done = Signal(int, object, object)  # id, Job, its typed result
    command_failed = Signal(int, object, str, bool)  # id, Job, message, cancelled
    progress = Signal(int, int, int, str)  # id, done, total, message

    _wake = Signal()

    def __init__(self, device: Optional[str] = None, engine_factory: Optional[Callable[[], Any]] = None, threads: Optional[int] = None) -> None:
        super().__init__()
        self._device = device
        self._threads = threads
        self._engine_factory = engine_factory
        self._engine: Any = None
        self._label = ""
        self._eng_mod: Any = None
        self._lock = threading.Lock()
        self._slots: dict[str, Any] = {}
        self._commands: deque[_Command] = deque()
        self._running: Optional[_Command] = None
        self._all: dict[int, _Command] = {}
        self._ids = itertools.count(1)
        self._wake_pending = False
        self._stopping = False
        self._last_progress = 0.0
        self.render_count = 0  # main-canvas renders done (tests and benchmarks read it)
        self.renders_abandoned = 0  # renders given up early for a newer request
        self.preview_count = 0
        self._render_s = 0.0  # running mean of a full render's time (0: none yet)
        self._abandoned_last = False
        self._last_render: Optional[RenderRequest] = None  # the request of the newest picture rendered
        self._last_render_t = 0.0
        self._last_live: Any = None  # the second lane's live decoding, where it rendered that picture
        self._lane: Optional[RenderLane] = None  # a second render thread (explorer.render_lane)
        self._settle_timer = False
        self._wake.connect(self._drain)

    # ================================================================== GUI-thread API
    # Call these directly from the GUI thread. Do not connect signals to them: the worker lives in
    # its own thread, so Qt would queue such calls behind the job that is running.
    def _post_slot(self, name: str, request: Any) -> None:
        with self._lock:
            if self._stopping:
                return
            self._slots[name] = request
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._wake.emit()

    def request_render(self, request: RenderRequest) -> None:
        """Render for the main canvas; replaces any render request not yet started (the second
        render lane, where there is one, takes it at once while the worker renders)."""
        self._post_slot("render", request)
        lane = self._lane
        if lane is not None:
            lane.poke()

    def request_composite(self, request: PhotoCompositeRequest) -> None:
        """The full-size photo with the edited face pasted back; replaces any not yet started."""
        self._post_slot("composite", request)

    def request_preview(self, request: PreviewRequest) -> None:
        """Render a morph frame; replaces any preview request not yet started."""
        self._post_slot("preview", request)

    def request_analysis(self, request: AnalysisRequest) -> None:
        """Projections and bits/dim; done when no render is waiting."""
        self._post_slot("analysis", request)

    def submit(self, job: Job) -> int:
        """Queue a job; returns its id. Results arrive as ``command_done``/``command_failed``."""
        if not isinstance(job, Job):
            raise TypeError(f"submit takes a protocol.Job, not {type(job).__name__}")
        cmd = _Command(next(self._ids), job)
        with self._lock:
            if self._stopping:
                return cmd.id
            self._commands.append(cmd)
            self._all[cmd.id] = cmd
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._wake.emit()
        return cmd.id

    def cancel(self, command_id: int) -> None:
        """Cancel a queued or running command (thread-safe; it stops at its next check)."""
        with self._lock:
            cmd = self._all.get(command_id)
        if cmd is not None:
            cmd.cancel.set()

    def stop(self) -> None:
        """Cancel everything and refuse new work; call before quitting the thread."""
        with self._lock:
            self._stopping = True
            self._slots.clear()
            for cmd in self._all.values():
                cmd.cancel.set()
            self._commands.clear()
        if self._lane is not None:
            self._lane.stop()

    @property
    def lane_render_count(self) -> int:
        """Renders done by the second render lane (0 without one)."""
        return self._lane.renders if self._lane is not None else 0

    @property
    def busy_command(self) -> Optional[tuple[int, Job]]:
        cmd = self._running
        return (cmd.id, cmd.job) if cmd is not None else None

    # ================================================================== worker thread
    def _ensure_engine(self) -> Any:
        if self._engine is None:
            from . import engine as eng_mod  # torch is imported here, in the worker thread

            self._eng_mod = eng_mod
            self._engine = self._engine_factory() if self._engine_factory else eng_mod.Engine(self._device, self._threads)
            self._label = self._engine.device_label()
            self.engine_ready.emit(self._label)
        return self._engine

    @Slot()
    def _drain(self) -> None:
        with self._lock:
            self._wake_pending = False
        while True:
            with self._lock:
                if self._stopping:
                    return
                item: Any = self._commands.popleft() if self._commands else self._pop_slot(("render", "composite", "preview", "analysis"))
            if item is None:
                if not self._idle_work():
                    return
                continue  # requests may have come meanwhile
            self._handle(item)

    def _idle_work(self) -> bool:
        """Nothing is waiting: check the last picture of a paused far-edit drag in full
        (:meth:`_settle_check`), else let the engine prepare (the decoding graphs of a new model)."""
        if self._engine is None:
            return False
        if self._lane is not None:
            if self._lane.busy:  # not now: its render ends by waking the worker (_lane_render)
                return False
            self._lane.wait_idle()  # closes it: nothing renders beside the idle work
        try:
            if self._settle_check():
                return True
            did = bool(self._engine.idle_work())
            if did and self._engine.device_label() != self._label:  # the thread count was measured
                self._label = self._engine.device_label()
                self.engine_ready.emit(self._label)
            return did
        except Exception as e:  # only an optimisation: decoding works without it
            self._log(e)
            return False

    def _settle_check(self) -> bool:
        """Once the last render is ``settle_s`` old (``explorer.engine_live``) with nothing asked since
        (the drag paused), and its picture was decoded with the drag hint, check it in full
        (``Engine.check_hinted``); where the full check's picture differs, it replaces the one
        shown (a ``refined`` result of the same stamp). Earlier, a timer wakes the worker then.
        A newer request stops the check between levels. Returns whether it did anything."""
        req, live = self._last_render, self._last_live or self._engine
        if req is None or not getattr(live, "unchecked_picture", lambda: False)():
            return False
        wait = self._last_render_t + float(getattr(self._engine, "settle_s", 0.1)) - time.perf_counter()
        if wait > 0:
            if not self._settle_timer:
                self._settle_timer = True
                QTimer.singleShot(int(wait * 1000) + 1, self, self._settle_due)  # gone with the worker
            return False
        t0 = time.perf_counter()
        try:
            img = live.check_hinted(self._eng_mod.CancelToken(when=lambda: "render" in self._slots))
        except self._eng_mod.Cancelled:  # a newer request: serve it
            return True
        if img is not None:
            ms = (time.perf_counter() - t0) * 1000.0
            self.rendered.emit(RenderResult(req.stamp, req.spec, array_to_qimage(img), None, ms, img, refined=True))
        return True

    @Slot()
    def _settle_due(self) -> None:
        self._settle_timer = False
        self._wake_worker()

    def _wake_worker(self) -> None:
        """Make the worker thread look for work (from any thread)."""
        with self._lock:
            if self._stopping or self._wake_pending:
                return
            self._wake_pending = True
        self._wake.emit()

    def _serve_interactive(self) -> None:
        """Serve waiting render/preview requests (called between steps of a long job)."""
        while True:
            with self._lock:
                if self._stopping:
                    return
                item = self._pop_slot(("render", "composite", "preview"))
            if item is None:
                return
            self._handle(item)

    def _pop_slot(self, names: tuple[str, ...]) -> Any:
        """The first waiting request of ``names`` (in that order), taken out; call with the lock held."""
        return next((self._slots.pop(n) for n in names if n in self._slots), None)

    def _handle(self, item: Any) -> None:
        if isinstance(item, RenderRequest):
            self._render(item)
            return
        if self._lane is not None:  # nothing but a render runs beside the second lane's render
            self._lane.wait_idle()
        if isinstance(item, PhotoCompositeRequest):
            self._composite(item)
        elif isinstance(item, PreviewRequest):
            self._preview(item)
        elif isinstance(item, AnalysisRequest):
            self._analyse(item)
        elif isinstance(item, _Command):
            self._run_command(item)

    #: A render still in the first part of its usual time is given up when a newer request
    #: arrives (the picture would be stale on arrival); later, finishing it is quicker.
    ABANDON_BEFORE = 0.5

    def _stale_check(self, t0: float, lane: Optional[RenderLane] = None) -> Callable[[], bool]:
        """For a render started at ``t0``: is it worth giving up now? Only while it has done
        less than :data:`ABANDON_BEFORE` of a usual render, only when a newer render request is
        waiting (and ``lane``, the second render lane open beside it, if any, is busy too), and
        never twice in a row (so a slow machine still shows pictures while a slider moves)."""

        def stale() -> bool:
            return (
                "render" in self._slots
                and (lane is None or lane.busy)  # else the second lane (open for this render) takes it
                and not self._abandoned_last
                and self._render_s > 0.0
                and time.perf_counter() - t0 < self.ABANDON_BEFORE * self._render_s
            )

        return stale

    # ------------------------------------------------------------------ the second render lane
    def _lane_for(self, eng: Any) -> Optional[RenderLane]:
        """The second render lane for a render of the worker's own: made the first time the engine
        says two renders fit (``render_lanes``), never beside a job (renders served between its steps)."""
        lanes = getattr(eng, "render_lanes", None)
        if self._running is not None or lanes is None or lanes() < 2:
            return None
        if self._lane is None:
            live = eng.new_lane()
            self._lane = RenderLane(self._take_render, functools.partial(self._lane_render, live), live.enter_thread, self._wake_worker)
        return self._lane

    def _take_render(self) -> Optional[RenderRequest]:
        with self._lock:
            return None if self._stopping else self._slots.pop("render", None)

    def _emit_render(self, req: RenderRequest, img: Any, before: Any, t0: float, live: Any = None) -> float:
        """Emit the picture of ``req``; note the newest picture and which lane rendered it (the
        settle check's). Returns the render's seconds."""
        qimg, qbefore = array_to_qimage(img), (array_to_qimage(before) if before is not None else None)
        seconds = time.perf_counter() - t0
        with self._lock:
            if self._last_render is None or req.stamp >= self._last_render.stamp:
                self._last_render, self._last_render_t, self._last_live = req, time.perf_counter(), live
        self.rendered.emit(RenderResult(req.stamp, req.spec, qimg, qbefore, seconds * 1000.0, img))
        return seconds

    def _lane_render(self, live: Any, req: RenderRequest) -> None:
        """A render in the second lane's thread, beside one of the worker's (afterwards the lane wakes
        the worker, which may have gone idle meanwhile: its idle work waits for no lane)."""
        try:
            t0 = time.perf_counter()
            self._emit_render(req, *self._engine.render(req.spec, req.with_before, None, lane=live), t0, live)
        except Exception as e:
            self._log(e)
            self.render_failed.emit(req.stamp, describe_error(e))

    def _render(self, req: RenderRequest) -> None:
        lane = None
        try:
            eng = self._ensure_engine()
            lane = self._lane_for(eng)
            if lane is not None:
                lane.worker_rendering(True)
            t0 = time.perf_counter()
            try:
                img, before = eng.render(req.spec, req.with_before, self._eng_mod.CancelToken(when=self._stale_check(t0, lane)))
            except self._eng_mod.Cancelled:  # a newer request is waiting: serve it instead
                self.renders_abandoned += 1
                self._abandoned_last = True
                return
            self._abandoned_last = False
            self.render_count += 1
            seconds = self._emit_render(req, img, before, t0)
            self._render_s = seconds if self._render_s == 0.0 else 0.8 * self._render_s + 0.2 * seconds
        except Exception as e:  # the app keeps running; the message shows in the window
            self._log(e)
            self.render_failed.emit(req.stamp, describe_error(e))
        finally:
            if lane is not None:
                lane.worker_rendering(False)

    def _composite(self, req: PhotoCompositeRequest) -> None:
        try:
            eng = self._ensure_engine()
            t0 = time.perf_counter()
            got = eng.photo_patch(req.spec, req.scale, req.spread)
            if got is None:  # that photo is no longer kept: nothing to show
                return
            patch = got[1]
            if patch is None:
                self.composited.emit(PhotoComposite(req.stamp, req.spec, None, ms=(time.perf_counter() - t0) * 1000.0))
                return
            x0, y0, x1, y1, pixels = patch
            self.composited.emit(PhotoComposite(req.stamp, req.spec, array_to_qimage(pixels), (x0, y0), (x1 - x0, y1 - y0), (time.perf_counter() - t0) * 1000.0))
        except Exception as e:
            self._log(e)
            self.render_failed.emit(req.stamp, describe_error(e))

    def _preview(self, req: PreviewRequest) -> None:
        try:
            eng = self._ensure_engine()
            t0 = time.perf_counter()
            img, n = eng.preview(req.keyframes, req.params, req.index)
            self.preview_count += 1
            self.previewed.emit(PreviewResult(req.stamp, min(req.index, n - 1), n, array_to_qimage(img), (time.perf_counter() - t0) * 1000.0))
        except Exception as e:
            self._log(e)
            self.render_failed.emit(req.stamp, describe_error(e))

    def _analyse(self, req: AnalysisRequest) -> None:
        try:
            eng = self._ensure_engine()
            proj, bpd = eng.analyse(req.spec)
            self.analysed.emit(AnalysisResult(req.stamp, req.spec, proj, bpd))
        except Exception as e:
            self._log(e)

    def _progress_fn(self, cmd: _Command) -> Callable[[int, int, str], None]:
        def progress(done: int, total: int, message: str = "") -> None:
            now = time.perf_counter()
            if now - self._last_progress >= 0.05 or (total > 0 and done >= total):
                self._last_progress = now
                self.progress.emit(cmd.id, int(done), int(total), str(message))
            if cmd.job.serves_renders:
                self._serve_interactive()
            if cmd.cancel.is_set():
                self._eng_mod.CancelToken(when=cmd.cancel.is_set).check()

        return progress

    def _run_command(self, cmd: _Command) -> None:
        self._running = cmd
        job = cmd.job
        try:
            if cmd.cancel.is_set():
                self.command_failed.emit(cmd.id, job, "cancelled", True)
                return
            self.command_started.emit(cmd.id, job)
            try:
                eng = self._ensure_engine()
                ctx = _JobContext(cmd.id, self._progress_fn(cmd), self._eng_mod.CancelToken(when=cmd.cancel.is_set))
                result = self._run_job(job, eng, ctx)
            except Exception as e:
                cancelled = self._eng_mod is not None and isinstance(e, self._eng_mod.Cancelled)
                if not cancelled:
                    self._log(e)
                self.command_failed.emit(cmd.id, job, "cancelled" if cancelled else describe_error(e), cancelled)
                return
            self.command_done.emit(cmd.id, job, result)
        finally:
            self._running = None
            with self._lock:
                self._all.pop(cmd.id, None)

    # ------------------------------------------------------------------ one handler per job type
    @functools.singledispatchmethod
    def _run_job(self, job: Job, eng: Any, ctx: _JobContext) -> Any:
        raise TypeError(f"no handler for the job {type(job).__name__}")

    @_run_job.register
    def _(self, job: OpenModel, eng: Any, ctx: _JobContext) -> Any:
        return eng.open_model(job.path, progress=ctx.progress)

    @_run_job.register
    def _(self, job: Materialize, eng: Any, ctx: _JobContext) -> FaceResult:
        latent_id, img = eng.materialize(job.spec)
        return FaceResult(latent_id, array_to_qimage(img))

    @_run_job.register
    def _(self, job: LoadPhoto, eng: Any, ctx: _JobContext) -> PhotoResult:
        latent_id, img, message = eng.load_photo(job.source, progress=ctx.progress)
        return PhotoResult(latent_id, array_to_qimage(img), message, job.label)

    @_run_job.register
    def _(self, job: OpenPhoto, eng: Any, ctx: _JobContext) -> Any:
        ph = eng.open_photo(job.source, job.label, job.box, job.centre_crop, progress=ctx.progress, face=job.face, reframe=job.reframe)
        if ph is None:  # not larger than the model: its face only
            latent_id, img, message = eng.load_photo(job.source, progress=ctx.progress)
            return PhotoResult(latent_id, array_to_qimage(img), message, job.label)
        return self._opened(eng, ph, job.label, job.face)

    @staticmethod
    def _opened(eng: Any, ph: Any, label: str, face: int) -> PhotoOpened:
        a = ph.aligned
        return PhotoOpened(
            ph.latent_id, array_to_qimage(eng.decode_images(eng.latent(ph.latent_id))[0]), array_to_qimage(ph.array), label,
            ph.message, (int(ph.array.shape[1]), int(ph.array.shape[0])), tuple(a.box), ph.frame, dict(a.landmarks),
            ph.found, ph.path, tuple(tuple(float(v) for v in f) for f in a.faces), face,
        )

    @_run_job.register
    def _(self, job: SavePhoto, eng: Any, ctx: _JobContext) -> Done:
        return Done(eng.save_photo(job.spec, job.path, job.quality, job.overwrite_input, job.spread))

    @_run_job.register
    def _(self, job: AdoptCandidate, eng: Any, ctx: _JobContext) -> FaceResult:
        latent_id, img = eng.adopt_candidate(job.index, job.batch)
        return FaceResult(latent_id, array_to_qimage(img))

    @_run_job.register
    def _(self, job: Filmstrip, eng: Any, ctx: _JobContext) -> list:
        return [FilmFrame(i, array_to_qimage(a)) for i, a in eng.filmstrip(job.keyframes, job.params, job.count)]

    @staticmethod
    def _fill_options(job: Inpaint | InpaintPhoto, ctx: _JobContext) -> dict:
        p = job.params
        return dict(candidates=p.candidates, steps=p.steps, temperature=p.temperature, seed=p.seed,
                    progress=ctx.progress, cancel=ctx.cancel, batch=ctx.id)

    @_run_job.register
    def _(self, job: Inpaint, eng: Any, ctx: _JobContext) -> Candidates:
        arr = eng.inpaint(job.image, job.mask, **self._fill_options(job, ctx))
        return Candidates(tuple(array_to_qimage(a) for a in arr))

    @_run_job.register
    def _(self, job: InpaintPhoto, eng: Any, ctx: _JobContext) -> Candidates:
        arr = eng.inpaint_photo(job.spec, job.mask, spread=job.spread, **self._fill_options(job, ctx))
        return Candidates(tuple(array_to_qimage(a) for a in arr))

    @_run_job.register
    def _(self, job: AdoptPhotoFill, eng: Any, ctx: _JobContext) -> PhotoOpened:
        ph = eng.adopt_photo_fill(job.index, job.batch)
        return self._opened(eng, ph, ph.label, job.face)

    @_run_job.register
    def _(self, job: Export, eng: Any, ctx: _JobContext) -> Done:
        return Done(eng.export(job.keyframes, job.params, job.export, job.path, progress=ctx.progress, cancel=ctx.cancel))

    @_run_job.register
    def _(self, job: FitDirection, eng: Any, ctx: _JobContext) -> Directions:
        return Directions(eng.fit_direction(job.name, list(job.positives), list(job.negatives)))

    @_run_job.register
    def _(self, job: Principal, eng: Any, ctx: _JobContext) -> Directions:
        return Directions(eng.principal(job.k, job.samples, job.temperature, job.seed, progress=ctx.progress, cancel=ctx.cancel))

    @_run_job.register
    def _(self, job: SaveModel, eng: Any, ctx: _JobContext) -> Done:
        return Done(eng.save_model(job.path))

    @staticmethod
    def _log(exc: BaseException) -> None:
        if not isinstance(exc, (ValueError, OSError)):
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


class WorkerHost:
    """Creates the worker, moves it to its own thread, and shuts both down cleanly."""

    def __init__(self, device: Optional[str] = None, engine_factory: Optional[Callable[[], Any]] = None, threads: Optional[int] = None) -> None:
        self.thread = QThread()
        self.thread.setObjectName("model-worker")
        self.worker = ModelWorker(device, engine_factory, threads)
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel all work, stop the thread; True when it finished within ``timeout_ms``."""
        self.worker.stop()
        self.thread.quit()
        return bool(self.thread.wait(timeout_ms))

    @property
    def finished(self) -> bool:
        return self.thread.isFinished()

