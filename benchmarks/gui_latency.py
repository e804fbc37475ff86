"""GUI latency of Glow Explorer: slider event -> updated picture on screen, fps while dragging,
and start-up time to the first face.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/gui_latency.py MODEL [--threads 1]

(without a display it uses Qt's offscreen platform). The drag is simulated as slider moves at
``--rate`` events per second (60 by default, like a mouse) sweeping an attribute back and forth.
For each move, the latency is the time from the move until the canvas has painted a picture for
that move or a newer one (latest-wins rendering skips stale values, so a move may be answered by
a newer picture). fps is the number of distinct pictures painted per second during the drag.
Start-up is measured in a fresh process: from before ``python`` starts to the first face painted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if "DISPLAY" not in os.environ:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def startup_child(model: str, t0: float, threads: int | None) -> None:
    """Run in a fresh process: build the app like ``glow-explorer`` and report the first face."""
    from PySide6.QtCore import QSettings

    from explorer.app import make_app
    from explorer.window import MainWindow

    app = make_app()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(model, settings=settings, seed=0, threads=threads)
    marks: dict[str, float] = {}

    def on_paint(stamp: int) -> None:
        if "face" not in marks and win.canvas.image() is not None:
            marks["face"] = time.time() - t0
            print(json.dumps({"first_face_s": marks["face"], "window_s": marks.get("window", float("nan"))}), flush=True)
            win.close()
            app.quit()

    win.canvas.painted.connect(on_paint)
    win.show()
    app.processEvents()
    marks["window"] = time.time() - t0
    app.exec()


def measure_decode(model: str, threads: int | None, runs: int = 20) -> dict:
    """The model's bare decode time (one face, no GUI), in a thread like the worker's."""
    import threading

    out: dict = {}

    def work() -> None:
        import torch

        import glowcore
        from explorer.engine import default_fast, default_threads

        torch.set_num_threads(threads or default_threads())
        m = glowcore.load_model(model, device="cpu")
        lat = m.sample_latent(1, 0.7, seed=0)
        fast = default_fast()  # what the worker uses (bf16 networks where native)
        ts = []
        with torch.inference_mode():
            for i in range(runs + 3):
                t = time.perf_counter()
                m.decode(lat, fast=fast)
                if i >= 3:
                    ts.append((time.perf_counter() - t) * 1000.0)
        out.update(
            decode_ms_p50=round(_pct(ts, 0.5), 1), decode_ms_min=round(min(ts), 1), decode_threads=torch.get_num_threads(), decode_fast=fast
        )

    t = threading.Thread(target=work)
    t.start()
    t.join()
    return out


def measure_drag(model: str, moves: int, rate: float, threads: int | None, attribute: str | None) -> dict:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from explorer.app import make_app
    from explorer.window import MainWindow

    app = make_app()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(model, settings=settings, seed=0, threads=threads)
    win.resize(1600, 1000)
    win.show()

    def wait(cond, timeout_s: float = 300.0) -> None:
        end = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("timed out")
            loop = QEventLoop()
            QTimer.singleShot(5, loop.quit)
            loop.exec()

    wait(lambda: win.canvas.image() is not None)
    names = list(win.attributes.rows)
    if not names:
        raise SystemExit("the model has no directions: nothing to drag")
    name = attribute if attribute in names else ("Smiling" if "Smiling" in names else names[0])
    slider = win.attributes.row(name).slider
    lim = slider.maximum()

    painted: list[tuple[int, float]] = []  # (stamp, time) of each paint with a new picture
    last = {"stamp": -1}

    def on_paint(stamp: int) -> None:
        if stamp != last["stamp"]:
            last["stamp"] = stamp
            painted.append((stamp, time.perf_counter()))

    win.canvas.painted.connect(on_paint)
    render_ms: list[float] = []
    win.worker.rendered.connect(lambda res: render_ms.append(res.ms))

    # warm up: a few moves, settle
    for v in (10, -10, 0):
        slider.setValue(v)
        wait(win.settled)
    render_ms.clear()
    painted.clear()
    renders0 = win.worker.render_count
    abandoned0 = win.worker.renders_abandoned

    events: list[tuple[int, float]] = []
    values = [int(round(lim * 0.75 * __import__("math").sin(2 * 3.14159265 * i / 120))) for i in range(1, moves + 1)]
    interval_ms = max(1, int(round(1000.0 / rate)))
    timer = QTimer()
    timer.setInterval(interval_ms)
    idx = {"i": 0}

    def tick() -> None:
        i = idx["i"]
        if i >= len(values):
            timer.stop()
            return
        v = values[i]
        if v == slider.value():
            v += 1
        t = time.perf_counter()
        slider.setValue(v)  # the same path as a mouse drag: valueChanged -> state -> request
        events.append((win.last_render_stamp, t))
        idx["i"] = i + 1

    timer.timeout.connect(tick)
    t_start = time.perf_counter()
    timer.start()
    wait(lambda: idx["i"] >= len(values))
    t_drag_end = time.perf_counter()
    wait(win.settled)
    app.processEvents()
    renders = win.worker.render_count - renders0

    latencies = []
    j = 0
    for stamp, t in events:
        while j < len(painted) and painted[j][0] < stamp:
            j += 1
        if j < len(painted):
            latencies.append((painted[j][1] - t) * 1000.0)
    shown_during = [p for p in painted if p[1] <= t_drag_end]
    duration = t_drag_end - t_start
    own = {s: t for s, t in events}
    frame_latency = [(t - own[s]) * 1000.0 for s, t in painted if s in own]
    info = {
        "attribute": name,
        "moves": len(events),
        "event_rate_hz": round(len(events) / duration, 1),
        "renders": renders,
        "renders_abandoned": win.worker.renders_abandoned - abandoned0,
        "stale_results_dropped": win._dropped,
        "pictures_painted": len(painted),
        "latency_ms_p50": round(_pct(latencies, 0.5), 1),
        "latency_ms_p95": round(_pct(latencies, 0.95), 1),
        "latency_ms_max": round(max(latencies), 1) if latencies else None,
        "painted_frame_latency_ms_p50": round(_pct(frame_latency, 0.5), 1),
        "painted_frame_latency_ms_p95": round(_pct(frame_latency, 0.95), 1),
        "fps_during_drag": round(len(shown_during) / duration, 1),
        "worker_render_ms_p50": round(_pct(render_ms, 0.5), 1),
        "worker_render_ms_p95": round(_pct(render_ms, 0.95), 1),
        "device": win.device_label,
        "model": win.model_info.description if win.model_info else "",
    }
    win.close()
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model folder or .safetensors file")
    p.add_argument("--moves", type=int, default=300, help="slider moves in the simulated drag")
    p.add_argument("--rate", type=float, default=60.0, help="slider moves per second")
    p.add_argument("--threads", type=int, help="CPU threads for the model (default: torch's choice)")
    p.add_argument("--attribute", help="which slider to drag (default: Smiling)")
    p.add_argument("--startup-runs", type=int, default=3, help="fresh processes for the start-up time (0: skip)")
    p.add_argument("--decode-runs", type=int, default=20, help="bare decodes timed first, for reference (0: skip)")
    p.add_argument("--startup-child", nargs=2, metavar=("MODEL", "T0"), help=argparse.SUPPRESS)
    p.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for this run (seconds; the app's default is used otherwise)")
    p.add_argument("--abandon-before", type=float, help="the worker's ABANDON_BEFORE (0: never give up a started render), to compare")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)

    if args.startup_child:
        startup_child(args.startup_child[0], float(args.startup_child[1]), args.threads)
        return 0
    if not args.model:
        p.error("give the model to measure")
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.abandon_before is not None:
        from explorer.worker import ModelWorker

        ModelWorker.ABANDON_BEFORE = args.abandon_before

    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "platform": os.environ.get("QT_QPA_PLATFORM", "xcb" if "DISPLAY" in os.environ else "?"),
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.threads,
        "abandon_before": args.abandon_before,
    }
    try:
        with open("/proc/loadavg") as fh:
            results["loadavg_before"] = fh.read().split()[:3]
    except OSError:
        pass
    starts = []
    for _ in range(args.startup_runs):
        cmd = [sys.executable, os.path.abspath(__file__), "--startup-child", args.model, "0"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        t0 = time.time()
        cmd[4] = repr(t0)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if not line:
            print(out.stderr[-2000:], file=sys.stderr)
            raise SystemExit("start-up run failed")
        starts.append(json.loads(line[-1]))
    if starts:
        results["startup_first_face_s"] = [round(s["first_face_s"], 2) for s in starts]
        results["startup_first_face_s_median"] = round(statistics.median(s["first_face_s"] for s in starts), 2)
        results["startup_window_shown_s_median"] = round(statistics.median(s["window_s"] for s in starts), 2)
    if args.decode_runs:
        results.update(measure_decode(args.model, args.threads, args.decode_runs))
    results.update(measure_drag(args.model, args.moves, args.rate, args.threads, args.attribute))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
