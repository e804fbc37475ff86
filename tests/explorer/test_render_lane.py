"""Two render lanes (issue 18): a second thread renders the waiting slider move while the worker
renders the previous one. Behaviour only, no timing: when the lane may take work, that its
pictures equal the worker's, that it never runs beside a job, that the window never goes back to
an older picture, and that a drag settles on the newest picture checked in full, whichever lane
rendered it."""

from __future__ import annotations

import queue
import threading
import types

import numpy as np
import pytest
import torch

from explorer import engine as engine_mod
from explorer import engine_live
from explorer.protocol import Materialize
from explorer.render_lane import RenderLane
from explorer.state import FaceRef, Snapshot

from .conftest import WAIT_MS, canvas_array, wait_settled

HOLD_S = 10  # a gate holds a render at most this long (never reached when the test passes)


# ---------------------------------------------------------------------------- the lane alone
def _lane(items: list, served: list, gate: threading.Event | None = None) -> RenderLane:
    lock = threading.Lock()

    def take():
        with lock:
            return items.pop(0) if items else None

    def serve(req):
        if gate is not None:
            assert gate.wait(HOLD_S)
        served.append(req)

    return RenderLane(take, serve)


def test_the_lane_takes_work_only_while_the_worker_renders():
    items, served = ["a"], []
    lane = _lane(items, served)
    try:
        lane.poke()
        threading.Event().wait(0.1)
        assert served == [] and items == ["a"]  # the worker is not rendering: left for it
        lane.worker_rendering(True)
        for _ in range(200):
            if served:
                break
            threading.Event().wait(0.01)
        assert served == ["a"] and items == []
        lane.worker_rendering(False)
        items.append("b")
        lane.poke()
        threading.Event().wait(0.1)
        assert served == ["a"] and items == ["b"]
    finally:
        assert lane.stop()


def test_wait_idle_returns_only_after_the_lanes_render_and_closes_it():
    items, served, gate = ["a"], [], threading.Event()
    lane = _lane(items, served, gate)
    try:
        lane.worker_rendering(True)
        for _ in range(200):
            if lane.busy:
                break
            threading.Event().wait(0.01)
        assert lane.busy
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (lane.wait_idle(), done.set()))
        waiter.start()
        assert not done.wait(0.2)  # the render is held: wait_idle waits
        gate.set()
        assert done.wait(HOLD_S) and served == ["a"] and not lane.busy
        items.append("b")
        lane.poke()  # wait_idle closed the lane: nothing more until the worker renders again
        threading.Event().wait(0.1)
        assert items == ["b"]
        waiter.join()
    finally:
        gate.set()
        assert lane.stop()


# ---------------------------------------------------------------------------- the engine's side
def test_render_lanes_two_where_each_render_and_the_gui_have_a_core(monkeypatch):
    def policy(threads, cores, device="cpu", lanes=None):
        monkeypatch.setattr(engine_live.os, "cpu_count", lambda: cores)
        eng = types.SimpleNamespace(lanes=lanes, device=torch.device(device), threads=types.SimpleNamespace(threads=threads))
        return engine_live.LiveMixin.render_lanes(eng)

    assert policy(1, 3) == 2 and policy(1, 4) == 2  # a core per render, one for the GUI
    assert policy(1, 2) == 1  # 2 cores: the GUI thread would share them with two renders
    assert policy(2, 4) == 1 and policy(2, 5) == 2 and policy(3, 8) == 2
    assert policy(1, 1) == 1
    assert policy(1, 8, device="meta") == 1  # not a CPU: one render at a time
    assert policy(1, 2, lanes=1) == 1 and policy(2, 2, lanes=2) == 2  # asked for
    monkeypatch.setenv("GLOW_RENDER_LANES", "1")
    assert engine_mod.Engine("cpu", threads=1).lanes == 1
    monkeypatch.setenv("GLOW_RENDER_LANES", "2")
    assert engine_mod.Engine("cpu", threads=1).lanes == 2
    monkeypatch.setenv("GLOW_RENDER_LANES", "7")  # not 1 or 2: measured
    assert engine_mod.Engine("cpu", threads=1).lanes is None
    assert engine_mod.Engine("cpu", threads=1, lanes=1).lanes == 1


@pytest.fixture
def eng(tiny_model):
    e = engine_mod.Engine("cpu", threads=1)
    e.open_model(str(tiny_model))
    e.render(Snapshot(face=FaceRef.from_seed(1)))
    while e.idle_work():
        pass
    return e


def _specs(n: int) -> list[Snapshot]:
    rng = np.random.default_rng(0)
    names = ["Smiling", "Young", "Male", "Eyeglasses"]
    return [Snapshot(face=FaceRef.from_seed(int(rng.integers(0, 4))), temperature=float(rng.choice([0.7, 3.0, 30.0])),
                     amounts=tuple((k, float(rng.uniform(-3, 3))) for k in names[: int(rng.integers(0, 5))])) for _ in range(n)]


def test_a_lanes_picture_is_the_engines_own_also_when_both_render_at_once(eng):
    specs = _specs(24)  # plain faces and far edits of hot faces (damped decodes)
    expected = [eng.render(s)[0] for s in specs]
    lane = eng.new_lane()
    assert [np.array_equal(lane_img, e) for lane_img, e in zip((eng.render(s, lane=lane)[0] for s in specs), expected)] == [True] * len(specs)
    # the two lanes at once, over the same specs in opposite orders, many times over
    got: dict = {"engine": {}, "lane": {}}
    errors: list = []

    def run(name, order, live):
        try:
            torch.set_num_threads(1)
            for _ in range(3):
                for i in order:
                    got[name][i] = eng.render(specs[i], lane=live)[0]
        except Exception as e:  # reported below, with the assertion
            errors.append(e)

    threads = [threading.Thread(target=run, args=("engine", range(len(specs)), None)),
               threading.Thread(target=run, args=("lane", range(len(specs) - 1, -1, -1), lane))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    for name in got:
        assert [np.array_equal(got[name][i], expected[i]) for i in range(len(specs))] == [True] * len(specs), name


def test_opening_a_model_forgets_the_lanes_drag_hint(eng, tiny_model):
    lane = eng.new_lane()
    hot = Snapshot(face=FaceRef.from_seed(1), temperature=30.0, amounts=(("Smiling", 25.0),))
    lane.decode(hot, eng.edited_latent(hot), None)
    lane.reset_hint()
    assert not lane.unchecked_picture()
    lane.decode(hot, eng.edited_latent(hot), None)
    eng.open_model(str(tiny_model))
    assert not lane.unchecked_picture()


# ---------------------------------------------------------------------------- in the window
class _Gates:
    """Holds the worker's renders (``main``) and the lane's (``lane``) at their start while on."""

    def __init__(self) -> None:
        self.on = {"main": False, "lane": False}
        self.go = {"main": threading.Semaphore(0), "lane": threading.Semaphore(0)}
        self.started: dict = {"main": queue.Queue(), "lane": queue.Queue()}
        self.lane_rendering = False
        self.jobs_beside_the_lane: list[bool] = []

    def engine(self):
        gates = self

        class GatedEngine(engine_mod.Engine):
            def render(self, spec, with_before=False, cancel=None, lane=None):
                who = "lane" if lane is not None else "main"
                if who == "lane":
                    gates.lane_rendering = True
                try:
                    if gates.on[who]:
                        gates.started[who].put(spec)
                        assert gates.go[who].acquire(timeout=HOLD_S)
                    return super().render(spec, with_before, cancel, lane=lane)
                finally:
                    if who == "lane":
                        gates.lane_rendering = False

            def materialize(self, spec):
                gates.jobs_beside_the_lane.append(gates.lane_rendering)
                return super().materialize(spec)

        return GatedEngine("cpu", threads=1, lanes=2)

    def release(self) -> None:
        self.on = {"main": False, "lane": False}
        for s in self.go.values():
            for _ in range(4):
                s.release()


def _gated_window(qtbot, make_window, tiny_model):
    """A window whose engine renders in two lanes behind gates; its Young slider; settled."""
    gates = _Gates()
    win = make_window(tiny_model, engine_factory=gates.engine)
    wait_settled(qtbot, win)
    return gates, win, win.attributes.row("Young").slider


def _young(spec) -> float:
    return spec.amounts_dict.get("Young", 0.0)


def test_the_next_move_renders_beside_the_one_in_progress_and_no_older_picture_replaces_it(qtbot, make_window, tiny_model):
    gates, win, slider = _gated_window(qtbot, make_window, tiny_model)
    main0, lane0, dropped0 = win.worker.render_count, win.worker.lane_render_count, win.renderer.dropped
    gates.on["main"] = True
    try:
        slider.setValue(30)
        assert _young(gates.started["main"].get(timeout=HOLD_S)) == pytest.approx(0.3)  # held in the worker
        slider.setValue(60)  # the lane takes it while the worker renders 0.3
        qtbot.waitUntil(win.settled, timeout=WAIT_MS)  # 0.6 on screen, 0.3 still held
        assert win.worker.lane_render_count == lane0 + 1 and win.worker.render_count == main0
        shown = canvas_array(win)
    finally:
        gates.release()
    qtbot.waitUntil(lambda: win.worker.render_count == main0 + 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.renderer.dropped == dropped0 + 1, timeout=WAIT_MS)  # 0.3, older: dropped
    assert np.array_equal(canvas_array(win), shown)
    slider.setValue(0)
    wait_settled(qtbot, win)
    slider.setValue(60)
    wait_settled(qtbot, win)
    assert np.array_equal(canvas_array(win), shown)  # the lane's 0.6 is the worker's 0.6


def test_a_job_never_runs_beside_the_lanes_render(qtbot, make_window, tiny_model):
    gates, win, slider = _gated_window(qtbot, make_window, tiny_model)
    main0 = win.worker.render_count
    gates.on = {"main": True, "lane": True}
    done: list = []
    win.worker.command_done.connect(lambda cid, job, res: done.append(job))
    try:
        slider.setValue(30)
        gates.started["main"].get(timeout=HOLD_S)
        slider.setValue(60)
        gates.started["lane"].get(timeout=HOLD_S)  # both held
        win.worker.submit(Materialize(win.state.snapshot()))
        gates.go["main"].release()  # the worker finishes 0.3, then comes to the job: it waits for the lane
        qtbot.waitUntil(lambda: win.worker.render_count == main0 + 1, timeout=WAIT_MS)
        qtbot.wait(200)
        assert done == [] and gates.jobs_beside_the_lane == []
    finally:
        gates.release()
    qtbot.waitUntil(lambda: len(done) == 1, timeout=WAIT_MS)
    assert gates.jobs_beside_the_lane == [False]


def test_a_drag_settles_on_the_lanes_picture_checked_in_full(qtbot, make_window, tiny_model, monkeypatch):
    """The newest picture came from the lane: the settle check is the lane's (its drag hint), and
    its correction replaces that picture, for the same request."""
    gates, win, slider = _gated_window(qtbot, make_window, tiny_model)
    checked: list[str] = []
    corrected = np.full((16, 16, 3), 7, dtype=np.uint8)

    def check_hinted(self, cancel=None):
        checked.append("lane")
        return corrected

    monkeypatch.setattr(engine_live.LiveLane, "unchecked_picture", lambda self: not checked)
    monkeypatch.setattr(engine_live.LiveLane, "check_hinted", check_hinted)
    monkeypatch.setattr(win.worker._engine, "settle_s", 0.3)
    gates.on["main"] = True
    try:
        slider.setValue(30)
        gates.started["main"].get(timeout=HOLD_S)
        slider.setValue(60)
        qtbot.waitUntil(win.settled, timeout=WAIT_MS)  # the lane's 0.6, the newest
        stamp = win.renderer.shown_stamp
        assert not checked
    finally:
        gates.release()
    qtbot.waitUntil(lambda: np.array_equal(canvas_array(win), corrected), timeout=WAIT_MS)
    assert checked == ["lane"] and win.renderer.shown.refined and win.renderer.shown_stamp == stamp


def test_the_worker_renders_the_next_move_while_the_lane_is_still_busy(qtbot, make_window, tiny_model):
    """The worker's idle work does not wait for the lane: a move that arrives after the worker's
    render, while the lane's is still going, is rendered by the worker at once."""
    gates, win, slider = _gated_window(qtbot, make_window, tiny_model)
    main0 = win.worker.render_count
    gates.on = {"main": True, "lane": True}
    try:
        slider.setValue(30)
        gates.started["main"].get(timeout=HOLD_S)
        slider.setValue(60)
        gates.started["lane"].get(timeout=HOLD_S)  # the lane holds 0.6
        gates.on["main"] = False
        gates.go["main"].release()  # the worker finishes 0.3 and goes idle
        qtbot.waitUntil(lambda: win.worker.render_count == main0 + 1, timeout=WAIT_MS)
        slider.setValue(90)
        qtbot.waitUntil(win.settled, timeout=WAIT_MS)  # 0.9 on screen while the lane still holds 0.6
        assert gates.lane_rendering  # the lane's gate still holds it: the worker did not wait for it
        assert win.worker.render_count == main0 + 2
        shown = canvas_array(win)
    finally:
        gates.release()
    qtbot.waitUntil(lambda: win.worker.lane_render_count >= 1, timeout=WAIT_MS)
    qtbot.wait(100)
    assert np.array_equal(canvas_array(win), shown)  # the lane's older 0.6 did not replace it
