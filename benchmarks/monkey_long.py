"""The long GUI hardening run: the monkey test with many actions, and each closing moment repeated.

    python benchmarks/monkey_long.py                          # 50,000 actions, seed 20261128, closes x10
    python benchmarks/monkey_long.py --actions 20000 --seed 7 --closes 5

It runs ``pytest tests/explorer/test_hardening_gui.py`` in a subprocess (offscreen, one torch
thread) with ``GLOW_MONKEY_ACTIONS`` / ``GLOW_MONKEY_SEED`` (the monkey's length and seed) and
``GLOW_CLOSE_REPEATS`` (each close-at-a-moment test that many times, with different moments), then
prints the figures for docs/hardening.md: actions, wall time, RSS at the start (after the warm-up)
and at the end, the jobs run, and the close-to-finished times (median and maximum per moment).
The full pytest output goes to ``--log``. The tests make no timing assertions; the times are
measurements on whatever machine runs this.
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
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--actions", type=int, default=50_000, help="monkey actions (default 50,000)")
    ap.add_argument("--seed", type=int, default=20261128, help="the monkey's seed (default 20261128)")
    ap.add_argument("--closes", type=int, default=10, help="repeats of each closing-moment test (default 10)")
    ap.add_argument("--rss-bound", type=float, default=200.0, help="allowed RSS growth in MB (default 200)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--log", default=str(Path(tempfile.gettempdir()) / "glow_monkey_long.log"), help="the full pytest output")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "figures.json"
        env = {
            **os.environ, "GLOW_MONKEY_ACTIONS": str(args.actions), "GLOW_MONKEY_SEED": str(args.seed),
            "GLOW_CLOSE_REPEATS": str(args.closes), "GLOW_MONKEY_RSS_MB": str(args.rss_bound),
            "GLOW_MONKEY_REPORT": str(report), "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
        }
        cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/explorer/test_hardening_gui.py", "-o", "timeout=7200"]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        figures = json.loads(report.read_text()) if report.is_file() else {}
    Path(args.log).write_text(proc.stdout + proc.stderr, encoding="utf-8")
    summary = next((ln for ln in reversed(proc.stdout.splitlines()) if " passed" in ln or " failed" in ln), "(no summary)")
    if proc.returncode:
        print(f"FAILED: the full output is in {args.log}\n")
    print(f"## Long GUI run ({date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPUs)\n")
    print(f"`python benchmarks/monkey_long.py --actions {args.actions} --seed {args.seed} --closes {args.closes}`: "
          f"{summary.strip('= ')}; wall time {wall / 60:.1f} min.\n")
    m = figures.get("monkey")
    if m:
        print(f"* monkey: {m['actions']:,} actions (seed {m['seed']}) in {m['seconds'] / 60:.1f} min; RSS {m['rss_start_mb']:.0f} MB "
              f"after {m['warmup_actions']:,} warm-up actions, {m['rss_end_mb']:.0f} MB at the end "
              f"({m['rss_end_mb'] - m['rss_start_mb']:+.0f} MB), peak {m['peak_rss_mb']:.0f} MB; exceptions {m['exceptions']}; "
              f"{m['renders']:,} renders, {m['previews']:,} morph previews, {m['videos_written']} videos written, "
              f"{m['latents_held']} latents held by the engine at the end")
        print(f"* jobs: {', '.join(f'{k} {v}' for k, v in m['jobs'].items())}")
        series = m.get("rss_every_1000_actions", [])
        if series:
            step = max(1, len(series) // 10)
            print("* RSS (MB) after N actions: " + ", ".join(f"{n:,}: {r:.0f}" for n, r in series[::step]))
    closes = figures.get("close", {})
    if closes:
        print("\n| closing moment | runs | median ms | max ms |\n|---|---:|---:|---:|")
        for moment, times in closes.items():
            print(f"| {moment} | {len(times)} | {statistics.median(times) * 1000:.0f} | {max(times) * 1000:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"wall_s": round(wall, 1), "summary": summary, **figures}, indent=2))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
