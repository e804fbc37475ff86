"""The model worker on its own thread with a scripted engine: which renders it gives up for a
newer request and which it finishes (no model, no window: the worker's own rules)."""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest

from explorer.protocol import Principal, RenderRequest
from explorer.worker import WorkerHost

from .conftest import WAIT_MS


class GatedEngine:
    """Each render announces its spec, waits for the test to let it go on, then checks its cancel
    token once (as the real engine does between decoding levels) and returns a tiny picture."""

    def __init__(self) -> None:
        self.starts: queue.Queue = queue.Queue()
        self.go = threading.Semaphore(0)

    def device_label(self) -> str:
        return "scripted"

    def idle_work(self) -> bool:
        return False

    def render(self, spec, with_before=False, cancel=None):
        self.starts.put(spec)
        assert self.go.acquire(timeout=30)
        cancel.check()
        return np.full((4, 4, 3), len(spec), np.uint8), None


@pytest.fixture
def scripted(qtbot):
    engine = GatedEngine()
    host = WorkerHost(engine_factory=lambda: engine)
    host.worker.ABANDON_BEFORE = 1e9  # however long the gate held it, a render counts as just started
    delivered: list[str] = []
    host.worker.rendered.connect(lambda result: delivered.append(result.spec))
    yield host.worker, engine, delivered
    for _ in range(8):  # never leave the worker waiting at the gate
        engine.go.release()
    assert host.shutdown(), "the worker thread did not stop"


def _render(worker, stamp: int, spec: str) -> None:
    worker.request_render(RenderRequest(stamp, spec))  # type: ignore[arg-type]


def test_the_worker_gives_up_a_stale_render_in_every_burst_not_only_the_first(qtbot, scripted):
    worker, engine, delivered = scripted
    _render(worker, 1, "first")  # one finished render: the worker now knows a render's usual time
    assert engine.starts.get(timeout=30) == "first"
    engine.go.release()
    qtbot.waitUntil(lambda: delivered == ["first"], timeout=WAIT_MS)
    stamp = 1
    for burst in range(3):
        expected_abandoned = worker.renders_abandoned + 1
        a, b, c = (f"{burst}-{n}" for n in "abc")
        _render(worker, stamp + 1, a)
        assert engine.starts.get(timeout=30) == a
        _render(worker, stamp + 2, b)  # arrives while a renders: a is given up
        engine.go.release()
        assert engine.starts.get(timeout=30) == b
        _render(worker, stamp + 3, c)  # arrives right after a render was given up: b is finished
        engine.go.release()
        assert engine.starts.get(timeout=30) == c
        engine.go.release()
        stamp += 3
        qtbot.waitUntil(lambda: len(delivered) == 1 + 2 * (burst + 1), timeout=WAIT_MS)
        assert delivered[-2:] == [b, c], f"burst {burst}: {delivered}"
        assert worker.renders_abandoned == expected_abandoned, f"burst {burst}: the stale render was finished"
    assert worker.render_count == 1 + 2 * 3


class SteppingEngine(GatedEngine):
    """A long job (principal directions) that reports progress step after step until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def principal(self, k, samples, temperature, seed, progress=None, cancel=None):
        for i in range(100_000):
            self.steps = i
            progress(i, 100_000, "sampling")  # the worker's progress callback raises when cancelled
            if i == 1:
                self.starts.put("principal")
            assert self.go.acquire(timeout=30) if i == 2 else True
        return "finished"


def test_a_cancelled_command_is_reported_as_cancelled_not_as_an_error(qtbot):
    engine = SteppingEngine()
    host = WorkerHost(engine_factory=lambda: engine)
    failed: list[tuple] = []
    done: list[tuple] = []
    host.worker.command_failed.connect(lambda *a: failed.append(a))
    host.worker.command_done.connect(lambda *a: done.append(a))
    try:
        principal = Principal(k=2)
        job = host.worker.submit(principal)
        assert engine.starts.get(timeout=30) == "principal"
        host.worker.cancel(job)
        engine.go.release()
        qtbot.waitUntil(lambda: bool(failed or done), timeout=WAIT_MS)
        assert done == [] and failed == [(job, principal, "cancelled", True)]
        assert engine.steps < 100  # it stopped at its next check
    finally:
        for _ in range(4):
            engine.go.release()
        assert host.shutdown(), "the worker thread did not stop"
