"""A second render thread beside the model worker (issue 18): two slider moves render at once.

A render of the bundled model on one CPU thread takes about as long as the time between slider
moves at 60 per second (15-18 ms against 16.7 ms), so with one render thread a move usually waits
for the render in progress and then for its own: two renders of latency. A :class:`RenderLane` is
a second thread that takes the worker's waiting render request **while the worker is itself
rendering**, so consecutive moves render side by side, each on a core of its own, and no move
waits for another's picture. That pays where the GUI thread has a core besides the two renders'
(3 or more cores); on 2 cores its painting competes with both renders, which then take longer,
and two lanes measured no faster for twice the CPU, so one is the default there (docs/explorer.md,
"Two render lanes").

The rules that keep it safe without locking the engine everywhere:

* it renders only while the worker renders (:meth:`RenderLane.worker_rendering`), never beside a
  job, a photo composite, a morph frame, the analysis or idle work: the worker calls
  :meth:`RenderLane.wait_idle` before any of those, so nothing changes the model or the engine's
  state while the lane decodes (two renders share the model read-only, each with a drag hint of
  its own: ``explorer.engine_live.LiveLane``; the engine locks the caches they share);
* it takes requests from the worker's own one-slot mailbox (``take``), so the latest request
  still wins and nothing queues; pictures from both threads carry their request's stamp, and the
  window shows none older than the one on screen;
* the engine decides whether two renders fit (``Engine.render_lanes``: a CPU with a core for each
  render's threads and one for the GUI, or ``GLOW_RENDER_LANES``); the worker creates a lane only
  then.

Qt-free: the worker passes plain callables, and its ``serve`` emits the worker's signals (queued
to the GUI thread like the worker's own).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

__all__ = ["RenderLane"]


class RenderLane:
    """A daemon thread that renders the worker's waiting request while the worker renders.

    ``take()`` pops the worker's waiting render request (``None``: none); ``serve(request)``
    renders it in this thread and emits its picture; ``setup()`` runs once in the thread first;
    ``after()`` runs after each render, once the lane is idle again (the worker, which does not
    wait for the lane to do its idle work, is woken by it)."""

    def __init__(
        self,
        take: Callable[[], Any],
        serve: Callable[[Any], None],
        setup: Optional[Callable[[], None]] = None,
        after: Optional[Callable[[], None]] = None,
    ) -> None:
        self._take = take
        self._serve = serve
        self._setup = setup
        self._after = after
        self._cond = threading.Condition()
        self._open = False  # the worker is rendering and a second render may start
        self._busy = False  # this thread is rendering
        self._stopping = False
        self.renders = 0  # requests served (tests and benchmarks read it)
        self._thread = threading.Thread(target=self._run, name="render-lane", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy

    def worker_rendering(self, on: bool) -> None:
        """The worker starts (``True``) or ends (``False``) a render: while it renders, this
        thread may take a waiting request."""
        with self._cond:
            self._open = on and not self._stopping
            if self._open:
                self._cond.notify_all()

    def poke(self) -> None:
        """A render request was posted to the worker: take it if the worker is rendering."""
        with self._cond:
            if self._open:
                self._cond.notify_all()

    def wait_idle(self) -> None:
        """Close the lane and wait until its render, if any, is done (the worker calls this before
        any work but a render)."""
        with self._cond:
            self._open = False
            while self._busy:
                self._cond.wait()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop the thread (after its render in progress); True when it ended within ``timeout_s``."""
        with self._cond:
            self._stopping = True
            self._open = False
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _next(self) -> Any:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if self._open:
                    req = self._take()
                    if req is not None:
                        self._busy = True
                        return req
                self._cond.wait()

    def _run(self) -> None:
        if self._setup is not None:
            self._setup()
        while True:
            req = self._next()
            if req is None:
                return
            try:
                self._serve(req)
            finally:
                with self._cond:
                    self._busy = False
                    self.renders += 1
                    self._cond.notify_all()
                if self._after is not None:
                    self._after()
