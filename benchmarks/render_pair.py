"""Issue #18: one render thread against two, on a 2-core CPU.

    python benchmarks/render_pair.py MODEL [--sweeps 4] [--moves 180] [--rate 60]

The window renders every slider move in one model worker thread (latest request wins). When a
render takes about as long as the time between moves (16.7 ms at 60 moves/s), a move waits for
the render in progress and then its own, so its latency is about two renders. Here the same
paced drags as ``render_ab.py --paced`` (a move posted every 1/``rate`` s from this thread, with
``--gui-load`` ms of pure Python per move, no painting) go to **one** worker, or to **two**
workers with an engine each (each engine has its own model and one torch thread): a move goes to
an idle worker, or, when both are busy, replaces the pending request of the one whose newest
request is older. A move's latency is the time until the first result with its stamp or a newer
one arrives here, from either worker. A third configuration is what the app does since: **lanes**,
one worker whose second render lane (``explorer.render_lane``) takes the waiting move while the
worker renders, over one engine (one model, a drag hint per lane). The configurations take turns
drag by drag. Prints, per scenario and configuration, latency and render p50 / p95 and how many
moves were rendered.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_ab  # noqa: E402  (engines, the drags' moves and the paced drag, as render_ab makes them)
from benchstats import pct as _pct  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default="celeba64")
    p.add_argument("--moves", type=int, default=180)
    p.add_argument("--sweeps", type=int, default=3, help="drags per configuration and scenario")
    p.add_argument("--rate", type=float, default=60.0, help="moves per second")
    p.add_argument("--gui-load", type=float, default=1.0, help="ms of Python per move in the posting thread")
    p.add_argument("--scenarios", default="slider,stacked")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    import torch
    from PySide6.QtWidgets import QApplication

    from explorer.worker import WorkerHost

    QApplication.instance() or QApplication([])
    torch.set_num_threads(1)
    engines = [render_ab.engines(args.model, None, 1)[0][1] for _ in range(4)]
    for e, lanes in zip(engines, (1, 1, 1, 2)):
        e.lanes = lanes
    configs = {"one": [WorkerHost(engine_factory=(lambda e=engines[0]: e))],
               "two": [WorkerHost(engine_factory=(lambda e=e: e)) for e in engines[1:3]],
               "lanes": [WorkerHost(engine_factory=(lambda e=engines[3]: e))]}
    order = list(configs)
    res: dict = {"loadavg_before": open("/proc/loadavg").read().split()[:3], "rate": args.rate, "gui_ms": args.gui_load}
    stamp = [0]
    try:
        for sc in [s for s in args.scenarios.split(",") if s]:
            specs = render_ab.scenario_specs(engines[0], sc, args.moves)
            lat: dict = {k: [] for k in configs}
            ren: dict = {k: [] for k in configs}
            for k in range(args.sweeps):
                for label in order[k % len(order):] + order[: k % len(order)]:
                    a, b = render_ab.drag([h.worker for h in configs[label]], specs, args.rate, args.gui_load, stamp)
                    lat[label] += a
                    ren[label] += b
                    time.sleep(0.3)  # a pause between drags
            res[sc] = {label: {"latency_p50": round(_pct(lat[label], 0.5), 2), "latency_p95": round(_pct(lat[label], 0.95), 2),
                               "render_p50": round(_pct(ren[label], 0.5), 2), "render_p95": round(_pct(ren[label], 0.95), 2),
                               "moves": len(lat[label]), "renders": len(ren[label])} for label in configs}
            for label, v in res[sc].items():
                print(f"{sc:12s} {label}: move -> picture p50 {v['latency_p50']:6.2f}  p95 {v['latency_p95']:6.2f} ms; "
                      f"render p50 {v['render_p50']:6.2f}  p95 {v['render_p95']:6.2f} ms; {v['renders']} renders for {v['moves']} moves")
    finally:
        for hosts in configs.values():
            for h in hosts:
                h.shutdown()
    res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    return render_ab._finish(res, args.json)


if __name__ == "__main__":
    sys.exit(main())
