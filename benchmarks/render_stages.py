"""Where a live render's time goes, stage by stage, in one process (no GUI event loop).

    python benchmarks/render_stages.py MODEL [--moves 120] [--threads 1]

Replays the moves of ``benchmarks/gui_latency.py``'s scenarios through :class:`explorer.engine.Engine`
in the calling thread and times each stage of every render: ``edit`` (the edited latent),
``decode+uint8`` (the decoding to a numpy picture, as ``Engine.render`` does it) split into the
exact levels and the damped levels (``glowcore.decoding.stable``; the rest is bookkeeping), ``qimage`` (numpy ->
QImage, the worker's last step) and ``paint`` (drawing that QImage scaled to 512x512 the way the
canvas does). Scenarios: ``slider`` (Smiling across its range), ``stacked`` (Smiling, Male and
Eyeglasses at their ends, Young across its range), ``morph`` (a 48-frame morph between two faces,
scrubbed back and forth). Prints p50 / p95 per stage and the load average. Timings on a shared
machine are noisy: compare medians of interleaved runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchstats  # noqa: E402
from collections import defaultdict

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


_pct = benchstats.pct


def _wave(n, lo, hi, period=120):
    mid, amp = (lo + hi) / 2.0, (hi - lo) / 2.0
    return [mid + amp * math.sin(2 * math.pi * i / period) for i in range(1, n + 1)]


class StageClock:
    """Accumulates per-render stage times; patches glowcore.decoding.stable's level runners to split the decode."""

    def __init__(self):
        self.cur: dict[str, float] = defaultdict(float)
        self.rows: list[dict[str, float]] = []

    @contextlib.contextmanager
    def stage(self, name):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.cur[name] += (time.perf_counter() - t) * 1000.0

    def patch(self):
        from glowcore.decoding import stable

        orig = stable._level_runner
        clock = self

        def runner(model, latent, damping):
            run = orig(model, latent, damping)
            kind = "exact" if damping is None else "damped"

            def timed(i, h, eps):
                t = time.perf_counter()
                out = run(i, h, eps)
                ms = (time.perf_counter() - t) * 1000.0
                clock.cur[f"{kind} L{i}"] += ms
                clock.cur[f"{kind} levels"] += ms
                return out

            return timed

        stable._level_runner = runner
        return lambda: setattr(stable, "_level_runner", orig)

    def end(self):
        self.rows.append(dict(self.cur))
        self.cur = defaultdict(float)


def run(model_path, moves, threads, scenarios, fast=None):
    import torch
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter

    import glowcore
    from glowcore.ops.editing import slider_limit
    from explorer.app import make_app
    from explorer.engine import Engine
    from explorer.qimage import array_to_qimage
    from explorer.state import FaceRef, Snapshot

    make_app()
    eng = Engine("cpu", threads=threads or 1, fast=fast)
    eng.open_model(model_path)
    m = eng.model
    names = list(m.directions)
    spec0 = Snapshot(face=FaceRef.from_seed(0), temperature=0.7)
    eng.render(spec0)
    while eng.idle_work():  # frozen graphs, as the explorer builds them when idle
        pass
    target = QImage(512, 512, QImage.Format.Format_RGB32)

    def paint(q):
        p = QPainter(target)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(QRectF(0, 0, 512, 512), q)
        p.end()

    clock = StageClock()
    unpatch = clock.patch()
    out = {}
    try:
        for sc in scenarios:
            clock.rows = []
            if sc in ("slider", "stacked"):
                lim = {n: slider_limit(n, eng._need_model().direction_info.get(n, {})) for n in names}
                held = {n: float(lim.get(n, 2.0)) for n in ("Smiling", "Male", "Eyeglasses")} if sc == "stacked" else {}
                drag = "Young" if sc == "stacked" else "Smiling"
                values = [v * float(lim.get(drag, 2.0)) for v in _wave(moves, -1.0, 1.0)]
                for v in values:
                    amounts = tuple(sorted({**held, drag: round(v, 2)}.items()))
                    spec = Snapshot(face=FaceRef.from_seed(0), temperature=0.7, amounts=amounts)
                    t0 = time.perf_counter()
                    with clock.stage("edit"):
                        lat = eng.edited_latent(spec)
                    if hasattr(eng, "_decode_live"):  # the engine's render path (with its drag hint)
                        with clock.stage("decode+uint8"):
                            arr = eng._image(eng._decode_live(spec, lat, None)[0])
                    else:
                        with clock.stage("decode+uint8"), torch.inference_mode():
                            arr = eng._image(glowcore.to_uint8(m.decode(lat, fast=eng.fast))[0])
                    with clock.stage("qimage"):
                        q = array_to_qimage(arr)
                    with clock.stage("paint"):
                        paint(q)
                    clock.cur["total"] = (time.perf_counter() - t0) * 1000.0
                    clock.end()
            elif sc == "morph":
                from explorer.protocol import InterpParams

                a = eng.store(m.sample_latent(1, 0.7, seed=0))
                b = eng.store(m.sample_latent(1, 0.7, seed=1))
                params = InterpParams(frames=48)
                idx = [int(round(v)) for v in _wave(moves, 0, 47)]
                for i in idx:
                    t0 = time.perf_counter()
                    with clock.stage("preview"):
                        img, _ = eng.preview([a, b], params, i)
                    with clock.stage("qimage"):
                        q = array_to_qimage(img)
                    with clock.stage("paint"):
                        paint(q)
                    clock.cur["total"] = (time.perf_counter() - t0) * 1000.0
                    clock.end()
            keys = sorted({k for r in clock.rows for k in r}, key=lambda k: (k != "total", k))
            out[sc] = {k: (round(_pct([r.get(k, 0.0) for r in clock.rows], 0.5), 2), round(_pct([r.get(k, 0.0) for r in clock.rows], 0.95), 2)) for k in keys}
    finally:
        unpatch()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--moves", type=int, default=120)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scenarios", default="slider,stacked,morph")
    p.add_argument("--json")
    args = p.parse_args(argv)
    load0 = open("/proc/loadavg").read().split()[:3]
    res = run(args.model, args.moves, args.threads, [s for s in args.scenarios.split(",") if s])
    res["loadavg"] = [load0, open("/proc/loadavg").read().split()[:3]]
    for sc, stages in res.items():
        if sc == "loadavg":
            continue
        print(f"== {sc}   (ms: p50 / p95)")
        for k, (a, b) in stages.items():
            print(f"  {k:16s} {a:7.2f} / {b:7.2f}")
    print("load average before / after:", res["loadavg"])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
