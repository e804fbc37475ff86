"""Interleaved A/B of the live render (``Engine.render``, what the worker thread calls per slider
move), one process, no GUI event loop: this tree against another checkout of the project.

    git archive main | tar -x -C /tmp/base        # the tree to compare with
    python benchmarks/render_ab.py MODEL --base /tmp/base [--sweeps 3] [--moves 180]

The other tree's ``explorer/engine.py``, ``glowcore/decoding/stable.py`` and affine coupling
reverse (``glowcore/nn/coupling.py``, traced into that side's frozen graphs) are loaded beside
this tree's (the rest of glowcore is this tree's for both); each side gets an :class:`~explorer.engine.Engine` of its own with the model opened and
its idle work done (frozen graphs, as the explorer builds them when idle). The moves of
``benchmarks/gui_latency.py``'s scenarios (``slider``: Smiling swept across its range;
``stacked``: Smiling, Male and Eyeglasses at 2, Young swept; ``temperature``: 0.2 .. 1.2) are
rendered by both, the order alternating every move, so that a busy machine slows both alike.
Prints per scenario and side the render time p50 / p95 / mean, the pictures decoded with the
drag hint, how many pictures differ between the sides, and the load average. Timings only
compare within a run. ``--gui-load MS``: a thread holds the GIL for MS ms every 1/60 s, as the
GUI thread does during a drag (each torch call the render makes from Python may then wait for it).

``--paced 60``: the drags as the window makes them, without painting: each side's engine behind
a ``ModelWorker`` thread, a move posted every 1/60 s (``--gui-load`` ms of Python per move in this
thread), the latency of each move until its picture or a newer one arrives; the sides take turns
drag by drag.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SCALE = 100  # slider ticks per unit (explorer.widgets.attributes.SCALE)


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchstats import pct as _pct  # noqa: E402


def _wave(n, lo, hi, period=120):
    """The slider values of gui_latency's drags (a sine of ``period`` moves, no value twice in a row)."""
    mid, amp = (lo + hi) / 2.0, (hi - lo) / 2.0
    out, prev = [], None
    for i in range(1, n + 1):
        v = int(round(mid + amp * math.sin(2 * math.pi * i / period)))
        if v == prev:
            v += 1 if (i - 1) % 2 else -1
        out.append(v)
        prev = v
    return out


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def engines(model: str, base: str | None, threads: int):
    """(label, Engine) for this tree and, with ``base``, the other tree's engine and stable decoding."""
    from explorer import engine as here
    from explorer.state import FaceRef, Snapshot

    from glowcore.nn.coupling import AffineCoupling

    sides = [("new", here.Engine, AffineCoupling.uncouple)]
    if base:
        stable_b = _load("glowcore.decoding._stable_base", os.path.join(base, "glowcore/decoding/stable.py"))
        engine_b = _load("explorer._engine_base", os.path.join(base, "explorer/engine.py"))
        coupling_b = _load("glowcore.nn._coupling_base", os.path.join(base, "glowcore/nn/coupling.py"))
        engine_b.stable = stable_b
        sides.insert(0, ("base", engine_b.Engine, coupling_b.AffineCoupling.uncouple))
    out = []
    mine = AffineCoupling.uncouple
    try:
        for label, cls, uncouple in sides:
            # the side's affine coupling reverse is traced into its engine's frozen graphs (the
            # live renders run those graphs only; each engine has a model of its own)
            AffineCoupling.uncouple = uncouple
            eng = cls("cpu", threads=threads)
            eng.open_model(model)
            eng.render(Snapshot(face=FaceRef.from_seed(0), temperature=0.7))
            while eng.idle_work():
                pass
            out.append((label, eng))
    finally:
        AffineCoupling.uncouple = mine
    return out


def scenario_specs(eng, scenario: str, moves: int):
    from explorer.state import FaceRef, Snapshot
    from glowcore.ops.editing import slider_limit

    m = eng.model
    face = FaceRef.from_seed(0)
    if scenario == "temperature":
        return [Snapshot(face=face, temperature=v / 100.0) for v in _wave(moves, 20, 120)]
    lim = lambda n: slider_limit(n, m.direction_info.get(n, {}))  # noqa: E731
    held = {n: lim(n) for n in ("Smiling", "Male", "Eyeglasses")} if scenario == "stacked" else {}
    drag = "Young" if scenario == "stacked" else "Smiling"
    t = int(round(lim(drag) * SCALE))
    specs = []
    for v in _wave(moves, -t, t):
        amounts = {**held, drag: v / SCALE}
        specs.append(Snapshot(face=face, temperature=0.7, amounts=tuple(sorted((k, a) for k, a in amounts.items() if a))))
    return specs


class GuiLoad:
    """A thread that holds the GIL like the explorer's GUI thread during a drag: every
    ``period_s`` it runs pure Python for ``busy_s`` (a slider move's handlers and the paint), so
    the render's Python-level steps wait for the GIL as they do in the app."""

    def __init__(self, busy_s: float, period_s: float = 1 / 60) -> None:
        import threading

        self.busy_s, self.period_s = busy_s, period_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        nxt = time.perf_counter()
        while not self.stop.is_set():
            end = time.perf_counter() + self.busy_s
            x = 0
            while time.perf_counter() < end:
                for i in range(200):
                    x += i * i
            nxt += self.period_s
            time.sleep(max(0.0, nxt - time.perf_counter()))

    def __enter__(self):
        if self.busy_s > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def run(model: str, base: str | None, scenarios, moves: int, sweeps: int, threads: int, gui_ms: float = 0.0) -> dict:
    import torch

    torch.set_num_threads(threads)
    sides = engines(model, base, threads)
    with GuiLoad(gui_ms / 1000.0):
        return _run(sides, scenarios, moves, sweeps, gui_ms)


def _run(sides, scenarios, moves: int, sweeps: int, gui_ms: float) -> dict:
    import numpy as np

    res: dict = {"loadavg_before": open("/proc/loadavg").read().split()[:3], "gui_load_ms": gui_ms}
    for sc in scenarios:
        specs = scenario_specs(sides[0][1], sc, moves)
        ms = {label: [] for label, _ in sides}
        hinted0 = {label: getattr(eng, "hinted_renders", 0) for label, eng in sides}
        differ = 0
        k = 0
        for _ in range(sweeps):
            for spec in specs:
                imgs = {}
                order = sides if k % 2 == 0 else sides[::-1]
                k += 1
                for label, eng in order:
                    t = time.perf_counter()
                    img, _ = eng.render(spec)
                    ms[label].append((time.perf_counter() - t) * 1000.0)
                    imgs[label] = img
                if len(imgs) == 2 and not np.array_equal(*imgs.values()):
                    differ += 1
        res[sc] = {
            label: {
                "p50": round(_pct(v, 0.5), 2),
                "p95": round(_pct(v, 0.95), 2),
                "mean": round(sum(v) / len(v), 2),
                "hinted": getattr(eng, "hinted_renders", 0) - hinted0[label],
            }
            for (label, eng), v in ((s, ms[s[0]]) for s in sides)
        }
        res[sc]["renders"] = len(specs) * sweeps
        res[sc]["pictures_differ"] = differ if len(sides) == 2 else None
    res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    return res


def drag(workers, specs, rate: float, gui_ms: float, stamp: list) -> tuple[list, list]:
    """Post ``specs`` as one paced drag to ``workers`` (``ModelWorker``s), a move every 1/``rate`` s
    with ``gui_ms`` of Python in this thread per move: to an idle worker, or, when all are busy, in
    place of the pending request of the one whose newest request is oldest. Returns the latency
    of each move (until its picture or a newer one arrives, from any worker) and the render
    times, in ms. ``stamp``: a one-item list, the last stamp used (shared across drags)."""
    from PySide6.QtCore import QEventLoop, QTimer

    from explorer.protocol import RenderRequest

    busy: list = [None] * len(workers)  # the newest stamp each worker was given, until its result
    sent: list[tuple[int, float]] = []
    got: list[tuple[int, float]] = []
    renders: list[float] = []

    def slot(idx: int):
        def on_result(r) -> None:
            got.append((r.stamp, time.perf_counter()))
            renders.append(r.ms)
            if busy[idx] is not None and r.stamp >= busy[idx]:
                busy[idx] = None

        return on_result

    from PySide6.QtCore import QObject, Slot

    class Receiver(QObject):
        """Results arrive here, in this thread, as the window's Renderer (a QObject) gets them: a
        plain function as the slot would run wherever Qt finds the sender's thread (a result
        emitted from a second render lane would wait for the worker thread's event loop)."""

        def __init__(self, fn) -> None:
            super().__init__()
            self.fn = fn

        @Slot(object)
        def on_result(self, r) -> None:
            self.fn(r)

    receivers = [Receiver(slot(i)) for i in range(len(workers))]
    slots = [rc.on_result for rc in receivers]
    for w, s in zip(workers, slots):
        w.rendered.connect(s)
    timer = QTimer()
    timer.setInterval(max(1, int(round(1000.0 / rate))))
    i = [0]

    def tick() -> None:
        if i[0] >= len(specs):
            timer.stop()
            return
        end = time.perf_counter() + gui_ms / 1000.0
        while time.perf_counter() < end:  # the GUI thread's own work per move
            pass
        stamp[0] += 1
        sent.append((stamp[0], time.perf_counter()))
        free = [j for j, b in enumerate(busy) if b is None]
        j = free[0] if free else min(range(len(busy)), key=lambda q: busy[q])
        busy[j] = stamp[0]
        workers[j].request_render(RenderRequest(stamp[0], specs[i[0]]))
        i[0] += 1

    timer.timeout.connect(tick)
    timer.start()
    while not (i[0] >= len(specs) and got and max(g[0] for g in got) >= sent[-1][0]):
        loop = QEventLoop()
        QTimer.singleShot(5, loop.quit)
        loop.exec()
    for w, s in zip(workers, slots):
        w.rendered.disconnect(s)
    lat = []
    for st, t in sent:
        arrivals = [ta for sg, ta in got if sg >= st]
        if arrivals:
            lat.append((min(arrivals) - t) * 1000.0)
    return lat, renders


def paced(model: str, base: str | None, scenarios, moves: int, sweeps: int, threads: int, rate: float, gui_ms: float) -> dict:
    """The drags as the window makes them, without painting: each side's engine in a
    :class:`~explorer.worker.ModelWorker` on its own thread, render requests posted at ``rate``
    per second from this (the GUI) thread, which also spends ``gui_ms`` of pure Python per move
    (a slider move's handlers); the latency of a move is the time until a result for it or a
    newer one arrives here. The sides take turns drag by drag (order alternating per sweep)."""
    import torch

    from explorer.worker import WorkerHost

    torch.set_num_threads(threads)
    sides = engines(model, base, threads)
    hosts = {label: WorkerHost(engine_factory=(lambda e=eng: e)) for label, eng in sides}
    res: dict = {"loadavg_before": open("/proc/loadavg").read().split()[:3], "rate": rate, "gui_ms": gui_ms}
    stamp = [0]
    try:
        for sc in scenarios:
            specs = scenario_specs(sides[0][1], sc, moves)
            lat: dict = {label: [] for label, _ in sides}
            work: dict = {label: [] for label, _ in sides}
            for k in range(sweeps):
                for label, eng in (sides if k % 2 == 0 else sides[::-1]):
                    got_lat, got_ms = drag([hosts[label].worker], specs, rate, gui_ms, stamp)
                    lat[label] += got_lat
                    work[label] += got_ms
                    time.sleep(0.3)  # a pause between drags
            res[sc] = {
                label: {
                    "latency_p50": round(_pct(v, 0.5), 2),
                    "latency_p95": round(_pct(v, 0.95), 2),
                    "render_p50": round(_pct(work[label], 0.5), 2),
                    "render_p95": round(_pct(work[label], 0.95), 2),
                    "renders": len(work[label]),
                }
                for label, v in lat.items()
            }
    finally:
        for h in hosts.values():
            h.shutdown()
    res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--base", help="another checkout of the project to compare with (else this tree alone)")
    p.add_argument("--scenarios", default="slider,stacked,temperature")
    p.add_argument("--moves", type=int, default=180)
    p.add_argument("--sweeps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gui-load", type=float, default=0.0, metavar="MS", help="a thread runs MS ms of pure Python every 1/60 s, holding the GIL like the GUI thread (0: none)")
    p.add_argument("--paced", type=float, metavar="RATE", help="instead: drags at RATE moves per second through each side's ModelWorker thread, latency of each move (see paced())")
    p.add_argument("--json")
    args = p.parse_args(argv)
    from explorer.app import make_app

    make_app()
    if args.paced:
        res = paced(args.model, args.base, [s for s in args.scenarios.split(",") if s], args.moves, args.sweeps, args.threads, args.paced, args.gui_load)
        for sc, r in res.items():
            if isinstance(r, dict):
                print(f"== {sc} at {args.paced:g} moves/s (GUI thread {args.gui_load:g} ms of Python per move)")
                for label, v in r.items():
                    print(f"  {label:5s} move -> result p50 {v['latency_p50']:6.2f}  p95 {v['latency_p95']:6.2f} ms; render p50 {v['render_p50']:6.2f}  p95 {v['render_p95']:6.2f} ms ({v['renders']} renders)")
        return _finish(res, args.json)
    res = run(args.model, args.base, [s for s in args.scenarios.split(",") if s], args.moves, args.sweeps, args.threads, args.gui_load)
    for sc, r in res.items():
        if not isinstance(r, dict):
            continue
        print(f"== {sc}: {r['renders']} renders per side, pictures that differ: {r['pictures_differ']}")
        for label, v in r.items():
            if isinstance(v, dict):
                print(f"  {label:5s} render p50 {v['p50']:6.2f}  p95 {v['p95']:6.2f}  mean {v['mean']:6.2f} ms  hinted {v['hinted']}")
    return _finish(res, args.json)


def _finish(res: dict, json_path) -> int:
    print("load average before / after:", res["loadavg_before"], res["loadavg_after"])
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
