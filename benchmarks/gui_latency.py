"""GUI latency of Glow Explorer: slider event -> updated picture on screen, fps while dragging,
and start-up time to the first face.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/gui_latency.py MODEL [--threads 1]

(without a display it uses Qt's offscreen platform). It prints the CPU model and its ISA flags
(AVX2, AVX-512, AMX: the CPU families differ, docs keep one table per family). Drags are
simulated as slider moves at ``--rate`` events per second (60 by default, like a mouse) in four
scenarios (``--scenarios``): ``slider``, one attribute swept across its full range; ``stacked``,
Smiling, Male and Eyeglasses held at their ends while a fourth attribute sweeps its range (far
edits: the exact decoding blows up there and ``glowcore.decoding.stable`` repairs it); ``temperature``,
the temperature slider swept up to its maximum; ``morph``, the morph's scrub slider swept between
two keyframes (its preview picture). The bare decode of a plain and a far-edited face is timed
first, in alternating rounds. For each move, the latency is the time from the move until the canvas has painted a picture for
that move or a newer one (latest-wins rendering skips stale values, so a move may be answered by
a newer picture). fps is the number of distinct pictures painted per second during the drag.
Start-up is measured in a fresh process: from before ``python`` starts to the first face painted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchstats  # noqa: E402
from pathlib import Path

if "DISPLAY" not in os.environ:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


_pct = benchstats.pct


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


def cpu_info() -> dict:
    """The CPU this ran on: model name, the ISA extensions that matter to torch's CPU kernels, and
    the kernel level torch picked."""
    info: dict = {"cpu_model": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                info["cpu_model"] = value.strip()
            elif key.strip() == "flags":
                flags = value.split()
                keep = [f for f in flags if f in ("avx2", "fma", "f16c") or f.startswith(("avx512", "amx", "avx_vnni"))]
                info["isa_flags"] = " ".join(sorted(keep))
                break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - a torch without it
        pass
    return info


FAR = {"Smiling": 1.0, "Male": 1.0, "Eyeglasses": 1.0}  # held at this fraction of their range


def measure_decode(model: str, threads: int | None, runs: int = 20) -> dict:
    """The model's bare decode time (one face, no GUI), in a thread like the worker's: a plain
    face, and the same face with Smiling, Male and Eyeglasses at the slider's end (far edits
    that blow up the exact pass: glowcore.decoding.stable repairs them), in alternating rounds."""
    import threading

    out: dict = {}

    def work() -> None:
        import torch

        import glowcore
        from explorer.engine import default_fast, default_threads
        from glowcore.ops import directions
        from glowcore.ops.editing import slider_limit
        from glowcore.decoding import stable

        torch.set_num_threads(threads or default_threads())
        m = glowcore.load_model(model, device="cpu")
        lat = m.sample_latent(1, 0.7, seed=0)
        cases = {"plain": lat}
        names = [n for n in FAR if n in m.directions] or list(m.directions)[:3]
        if names:
            limit = max(2.0, *(slider_limit(n, m.direction_info.get(n, {})) for n in names))
            cases["far"] = directions.edit(m, lat, {n: limit for n in names})
        fast = default_fast()  # what the worker uses (bf16 networks where native)
        ts: dict[str, list[float]] = {k: [] for k in cases}
        with torch.inference_mode():
            with glowcore.base.modes.fast_networks(fast):  # the frozen graphs the explorer builds when idle
                stable.prepare(m, lat) if hasattr(stable, "prepare") else m.decode(lat, fast=fast)
            for i in range(runs + 3):
                for k, z in cases.items():
                    t = time.perf_counter()
                    m.decode(z, fast=fast)
                    if i >= 3:
                        ts[k].append((time.perf_counter() - t) * 1000.0)
        out.update(decode_ms_p50=round(_pct(ts["plain"], 0.5), 1), decode_ms_min=round(min(ts["plain"]), 1))
        if "far" in ts:
            out.update(
                decode_far_edit=f"{'+'.join(names)} at {limit:g}",
                decode_far_ms_p50=round(_pct(ts["far"], 0.5), 1),
                decode_far_ms_min=round(min(ts["far"]), 1),
                decode_far_over_plain_p50=round(_pct(ts["far"], 0.5) / _pct(ts["plain"], 0.5), 2),
            )
        out.update(decode_threads=torch.get_num_threads(), decode_fast=fast)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    return out


SCENARIOS = ("slider", "stacked", "temperature", "morph")
WAIT_S = 300.0  # the longest wait for the window before giving up


def _wave(n: int, lo: int, hi: int, period: int = 120) -> list[int]:
    """``n`` slider values sweeping ``lo .. hi`` and back like a hand (a sine of ``period`` moves)."""
    mid, amp = (lo + hi) / 2.0, (hi - lo) / 2.0
    return [int(round(mid + amp * math.sin(2 * math.pi * i / period))) for i in range(1, n + 1)]


def measure_drags(model: str, moves: int, rate: float, threads: int | None, attribute: str | None, scenarios=SCENARIOS) -> dict:
    """Open the window once and run each scenario: ``slider`` (one attribute across its full
    range), ``stacked`` (Smiling, Male and Eyeglasses held at their ends while a fourth slider
    sweeps its range), ``temperature`` (the temperature slider swept 0.2 .. 1.2, its maximum),
    ``morph`` (the morph's scrub slider swept between two keyframes)."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from explorer.app import make_app
    from explorer.window import MainWindow

    app = make_app()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(model, settings=settings, seed=0, threads=threads)
    win.resize(1600, 1000)
    win.show()

    def wait(cond, timeout_s: float = WAIT_S) -> None:
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
    held = [n for n in FAR if n in names]
    if len(held) < 3:
        held = [n for n in names if n != name][:3]
    fourth = next((n for n in ("Young", "Bangs", "Blond_Hair") if n in names and n not in held), None) or next(n for n in names if n not in held)
    # warm up: a few moves; the engine's idle work (graphs, thread calibration) done
    slider = win.attributes.row(name).slider
    for v in (10, -10, 0):
        slider.setValue(v)
        wait(win.settled)
    settle(wait, win)
    results: dict = {"device": win.device_label, "model": win.model_info.description if win.model_info else ""}

    def reset() -> None:
        for row in win.attributes.rows.values():
            if row.slider.value() != 0:
                row.slider.setValue(0)
        wait(win.settled)

    for scenario in scenarios:
        if scenario == "slider":
            s = win.attributes.row(name).slider
            info = _drag(win, wait, s.setValue, _wave(moves, s.minimum(), s.maximum()), rate, "canvas")
            info["what"] = f"{name} across its full range"
        elif scenario == "stacked":
            for n in held:
                row = win.attributes.row(n)
                row.slider.setValue(int(round(row.slider.maximum() * FAR[n] if n in FAR else row.slider.maximum())))
                wait(win.settled)
            s = win.attributes.row(fourth).slider
            info = _drag(win, wait, s.setValue, _wave(moves, s.minimum(), s.maximum()), rate, "canvas")
            info["what"] = f"{', '.join(held)} at their ends, {fourth} across its full range"
            reset()
        elif scenario == "temperature":
            s = win.temp_slider
            info = _drag(win, wait, s.setValue, _wave(moves, 20, s.maximum()), rate, "canvas")
            info["what"] = f"temperature 0.20 .. {s.maximum() / 100:.2f}"
            s.setValue(70)
            wait(win.settled)
        elif scenario == "morph":
            win.morph_ctl.add_current_keyframe()
            wait(lambda: win.interpolate.keyframes.count() >= 1)
            win.new_face()
            wait(win.settled)
            win.morph_ctl.add_current_keyframe()
            wait(lambda: win.interpolate.keyframes.count() >= 2)
            win.tools.setCurrentWidget(win.interpolate)
            s = win.interpolate.scrub
            wait(lambda: win.interpolate.shown_stamp > 0)
            info = _drag(win, wait, s.setValue, _wave(moves, s.minimum(), s.maximum()), rate, "morph")
            info["what"] = f"morph scrub over {s.maximum() + 1} frames between two keyframes"
        else:
            raise SystemExit(f"unknown scenario {scenario!r} (choose from {', '.join(SCENARIOS)})")
        results[scenario] = info
    results["device"] = win.device_label  # after the calibration
    engine = win.worker._engine
    # what the engine measured here (the thread count and bf16 against float32 differ per CPU)
    results["thread_timings_ms"] = {str(k): round(v, 2) for k, v in engine.threads.timings_ms.items()}
    results["precision_ms"] = dict(engine.precision_ms)  # unrounded: the choice is made on these
    win.close()
    return results


def settle(wait, win, quiet_s: float = 0.3) -> None:
    """Wait until the worker has been idle for ``quiet_s`` (its idle work is done)."""
    w = win.worker
    last = {"t": time.monotonic(), "busy": None}

    def quiet() -> bool:
        busy = (w.render_count + w.lane_render_count, w.busy_command)
        if busy != last["busy"]:
            last.update(busy=busy, t=time.monotonic())
        return time.monotonic() - last["t"] >= quiet_s and win.settled()

    wait(quiet)
    engine = w._engine
    if engine is not None:  # the idle work (graphs, calibration) runs in the worker thread
        wait(lambda: not getattr(engine, "_graphs_pending", 0))
    # a render is served only after the idle step in progress: two round trips, and it is done
    slider = next(iter(win.attributes.rows.values())).slider
    for v in (1, 0):
        slider.setValue(v)
        wait(win.settled)


def _hinted(engine) -> int:
    """Pictures decoded with the drag hint, by the engine and its second render lanes."""
    return getattr(engine, "hinted_renders", 0) + sum(v.hinted_renders for v in getattr(engine, "lane_views", []))


def _drag(win, wait, move, values: list[int], rate: float, target: str) -> dict:
    """Move a slider through ``values`` at ``rate`` moves per second; the latency of each move is
    the time until a picture for it (or a newer one) was painted."""
    from PySide6.QtCore import QTimer

    canvas = win.canvas if target == "canvas" else win.interpolate.preview
    stamp_of = (lambda: win.last_render_stamp) if target == "canvas" else (lambda: win.morph_ctl.preview_stamp)
    painted: list[tuple[int, float]] = []  # (stamp, time) of each paint with a new picture
    last = {"stamp": -1}

    def on_paint(stamp: int) -> None:
        if stamp != last["stamp"]:
            last["stamp"] = stamp
            painted.append((stamp, time.perf_counter()))

    canvas.painted.connect(on_paint)
    work_ms: list[float] = []
    signal = win.worker.rendered if target == "canvas" else win.worker.previewed

    def on_result(res) -> None:
        work_ms.append(res.ms)

    signal.connect(on_result)
    renders0, abandoned0, dropped0 = win.worker.render_count, win.worker.renders_abandoned, win.renderer.dropped
    lane0 = win.worker.lane_render_count
    engine = win.worker._engine
    hinted0, prefetched0 = _hinted(engine), getattr(engine, "prefetched_frames", 0)
    events: list[tuple[int, float]] = []
    interval_ms = max(1, int(round(1000.0 / rate)))
    timer = QTimer()
    timer.setInterval(interval_ms)
    idx = {"i": 0, "v": None}

    def tick() -> None:
        i = idx["i"]
        if i >= len(values):
            timer.stop()
            return
        v = values[i]
        if v == idx["v"]:
            v += 1 if i % 2 else -1
        t = time.perf_counter()
        move(v)  # the same path as a mouse drag: valueChanged -> state -> request
        idx["v"] = v
        events.append((stamp_of(), t))
        idx["i"] = i + 1

    timer.timeout.connect(tick)
    t_start = time.perf_counter()
    timer.start()
    wait(lambda: idx["i"] >= len(values))
    t_drag_end = time.perf_counter()
    if target == "canvas":
        wait(win.settled)
    else:
        wait(lambda: win.interpolate.shown_stamp >= win.morph_ctl.preview_stamp)
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    canvas.painted.disconnect(on_paint)
    signal.disconnect(on_result)
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
    return {
        "moves": len(events),
        "event_rate_hz": round(len(events) / duration, 1),
        "renders": win.worker.render_count - renders0 + win.worker.lane_render_count - lane0 if target == "canvas" else len(work_ms),
        "renders_by_second_lane": win.worker.lane_render_count - lane0,
        "renders_abandoned": win.worker.renders_abandoned - abandoned0,
        "stale_results_dropped": win.renderer.dropped - dropped0,
        # far-edit pictures decoded damped at once, morph frames decoded while idle (explorer.engine)
        "renders_with_drag_hint": _hinted(engine) - hinted0,
        "frames_prefetched": getattr(engine, "prefetched_frames", 0) - prefetched0,
        "pictures_painted": len(painted),
        "latency_ms_p50": round(_pct(latencies, 0.5), 1),
        "latency_ms_p95": round(_pct(latencies, 0.95), 1),
        "latency_ms_max": round(max(latencies), 1) if latencies else None,
        "painted_frame_latency_ms_p50": round(_pct(frame_latency, 0.5), 1),
        "painted_frame_latency_ms_p95": round(_pct(frame_latency, 0.95), 1),
        "fps_during_drag": round(len(shown_during) / duration, 1),
        "worker_render_ms_p50": round(_pct(work_ms, 0.5), 1),
        "worker_render_ms_p95": round(_pct(work_ms, 0.95), 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model folder or .safetensors file")
    p.add_argument("--moves", type=int, default=300, help="slider moves in the simulated drag")
    p.add_argument("--rate", type=float, default=60.0, help="slider moves per second")
    p.add_argument("--threads", type=int, help="CPU threads for the model (default: torch's choice)")
    p.add_argument("--attribute", help="which slider the 'slider' scenario drags (default: Smiling)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)")
    p.add_argument("--startup-runs", type=int, default=3, help="fresh processes for the start-up time (0: skip)")
    p.add_argument("--decode-runs", type=int, default=20, help="bare decodes timed first, for reference (0: skip)")
    p.add_argument("--startup-child", nargs=2, metavar=("MODEL", "T0"), help=argparse.SUPPRESS)
    p.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for this run (seconds; the app's default is used otherwise)")
    p.add_argument("--abandon-before", type=float, help="the worker's ABANDON_BEFORE (0: never give up a started render), to compare")
    p.add_argument("--lanes", type=int, choices=(1, 2), help="render lanes (GLOW_RENDER_LANES; default: the engine decides)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.lanes:
        os.environ["GLOW_RENDER_LANES"] = str(args.lanes)  # the engines here and in the start-up runs

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
        **cpu_info(),
        "platform": os.environ.get("QT_QPA_PLATFORM", "xcb" if "DISPLAY" in os.environ else "?"),
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.threads,
        "abandon_before": args.abandon_before,
        "lanes": args.lanes,
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
    scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    results.update(measure_drags(args.model, args.moves, args.rate, args.threads, args.attribute, scenarios))
    text = json.dumps(results, indent=2)
    print(text)
    print(f"\n{results['cpu_model']} ({results.get('isa_flags', '?')}), {results['device']}")
    print(f"{'scenario':12s} {'p50 ms':>7s} {'p95 ms':>7s} {'pictures/s':>10s} {'render p50/p95 ms':>18s}")
    for sc in scenarios:
        r = results[sc]
        print(f"{sc:12s} {r['latency_ms_p50']:7.1f} {r['latency_ms_p95']:7.1f} {r['fps_during_drag']:10.1f} {r['worker_render_ms_p50']:8.1f} / {r['worker_render_ms_p95']:.1f}")
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
