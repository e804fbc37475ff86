"""The long hardening run: the tests of tests/hardening with larger budgets, and its figures.

    python benchmarks/fuzz_long.py                      # 20x the CI fuzz budgets, 20 training kills
    python benchmarks/fuzz_long.py --scale 5 --kills 20 -k "kill or labels"

It runs ``pytest tests/hardening`` in a subprocess with ``GLOW_FUZZ_SCALE`` (every hypothesis
budget multiplied, random rather than derandomized inputs, every-byte truncations, every pair of
kill points, more kill-looped saves and exports) and ``GLOW_KILLS`` (``glow train`` SIGKILLed and
resumed that many times), then prints the cases run per target, the wall time and the peak
memory (max RSS of the test process and its children) as a Markdown table for docs/hardening.md.
Uses one torch thread throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=20.0, help="multiplier of every fuzz budget (default 20)")
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs of the training run (default 20)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the kill schedule (default: the tests' own)")
    ap.add_argument("-k", dest="select", default=None, help="pytest -k expression to run a subset")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--log", default=str(Path(tempfile.gettempdir()) / "glow_fuzz_long.log"),
                    help="the full pytest output (failures with hypothesis' reproduction blobs) goes here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "cases.json"
        env = {**os.environ, "GLOW_FUZZ_SCALE": str(args.scale), "GLOW_KILLS": str(args.kills),
               "GLOW_FUZZ_REPORT": str(report), "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
        if args.seed is not None:
            env["GLOW_KILL_SEED"] = str(args.seed)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--disable-warnings", "tests/hardening", "-o", "timeout=7200"]
        if args.select:
            cmd += ["-k", args.select]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        cases = json.loads(report.read_text()) if report.is_file() else {}
    Path(args.log).write_text(proc.stdout + proc.stderr, encoding="utf-8")
    summary = next((ln for ln in reversed(proc.stdout.splitlines()) if " passed" in ln or " failed" in ln), "(no summary)")
    if proc.returncode:
        print(f"FAILED: the full output is in {args.log}\n")
    print(f"## Long hardening run ({date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPUs)")
    print()
    print(f"`python benchmarks/fuzz_long.py --scale {args.scale:g} --kills {args.kills}`: {summary.strip('= ')}; "
          f"wall time {wall / 60:.1f} min; peak RSS of the test process {peak_mb:.0f} MB.")
    print()
    print("| target | cases |")
    print("|---|---:|")
    for target, n in sorted(cases.items()):
        print(f"| {target} | {n} |")
    print(f"| **total** | **{sum(cases.values())}** |")
    if args.json:
        Path(args.json).write_text(json.dumps({"scale": args.scale, "kills": args.kills, "wall_s": round(wall, 1),
                                               "peak_rss_mb": round(peak_mb), "summary": summary, "cases": cases}, indent=2))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
