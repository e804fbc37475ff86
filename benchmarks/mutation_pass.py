"""A small, bounded mutation pass: do the tests notice simple bugs in the code they guard?

For each target file, every simple mutation of every code line is listed (comparison operators
flipped, ``+``/``-`` swapped, ``and``/``or`` swapped, ``not`` dropped, constants 0.5/1.0/2.0 set
to 0.0, ``True``/``False`` flipped, a ``.clamp``/``.clamp_min``/``.clamp_max`` call dropped, a
``return X`` made ``return None``), and ``--per-file`` of them are chosen deterministically
(``random.Random(--seed)``). Each mutant is written over the file, the file's own tests run
(``pytest -x -q``, a timeout per mutant) and the file is restored. A mutant is *killed* when the
tests fail (or time out), *survives* when they pass. Lines of docstrings, comments, messages
(``raise``, f-strings, logging) and imports are not mutated.

    nice -n 10 python benchmarks/mutation_pass.py                 # all five targets
    nice -n 10 python benchmarks/mutation_pass.py --only flows --per-file 5 --json out.json

Run it on a clean checkout: it edits the target files in place (and restores them, also on
Ctrl-C); ``git diff`` shows any left-over. Python's bytecode cache is bypassed for the test runs
(``PYTHONPYCACHEPREFIX`` in a fresh temporary folder), so a same-size mutant written within the
same second is never hidden by a stale ``.pyc``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: target -> (file, the tests that guard it). test_train.py: only the tests that need no
#: downloaded data set (the others use Fashion-MNIST).
TARGETS: dict[str, tuple[str, list[str]]] = {
    # the flow layers: the couplings, with the clamps (nn/flows.py holds only the layer contract)
    "flows": ("glowcore/nn/coupling.py", ["tests/glowcore/test_flows.py", "tests/glowcore/test_stable.py"]),
    "checkpoint": ("glowcore/io/checkpoint.py", ["tests/glowcore/test_checkpoint.py"]),
    "inpaint": ("glowcore/ops/inpaint.py", ["tests/glowcore/test_inpaint.py"]),
    "worker": ("explorer/worker.py", [
        "tests/explorer/test_worker.py",
        "tests/explorer/test_window.py::test_a_burst_of_slider_moves_renders_only_the_newest",
        "tests/explorer/test_window.py::test_a_render_made_stale_early_gives_way_to_the_newer_one_but_never_twice_in_a_row",
        "tests/explorer/test_window.py::test_stale_results_are_dropped",
    ]),
    "train": ("glowcore/training/train.py", [
        "tests/glowcore/test_train.py::test_image_folder_training_skips_a_corrupt_image",
        "tests/glowcore/test_train.py::test_resume_keeps_the_best_checkpoint_when_the_next_evaluation_is_worse",
        "tests/glowcore/test_train.py::test_cli_errors_name_the_problem",
        "tests/glowcore/test_train.py::test_learning_rate_schedules",
    ]),
}

# (name, pattern, replacement): applied to one occurrence in a line at a time
OPERATORS: list[tuple[str, str, str]] = [
    ("<= -> <", r"<=", "<"),
    (">= -> >", r">=", ">"),
    ("< -> <=", r"(?<![<=!>])<(?![<=])", "<="),
    ("> -> >=", r"(?<![>=!<-])>(?![>=])", ">="),
    ("== -> !=", r"==", "!="),
    ("!= -> ==", r"!=", "=="),
    ("+ -> -", r"(?<=\s)\+(?=\s)", "-"),
    ("- -> +", r"(?<=\s)-(?=\s)", "+"),
    ("and -> or", r"\band\b", "or"),
    ("or -> and", r"\bor\b", "and"),
    ("drop not", r"\bnot\s+", ""),
    ("0.5 -> 0.0", r"(?<![\w.])0\.5(?![\d])", "0.0"),
    ("1.0 -> 0.0", r"(?<![\w.])1\.0(?![\d])", "0.0"),
    ("2.0 -> 0.0", r"(?<![\w.])2\.0(?![\d])", "0.0"),
    ("True -> False", r"\bTrue\b", "False"),
    ("False -> True", r"\bFalse\b", "True"),
    ("drop .clamp*()", r"\.clamp(?:_min|_max)?\([^()]*\)", ""),
    ("return X -> return None", r"^(\s*)return\s+\S.*[^(\[{,\\\s]\s*$", r"\1return None"),
]

SKIP_LINE = re.compile(r"^\s*(#|@|def |class |import |from |raise |assert |say\(|log\(|print\()|_fail\(|f\"|f'|warnings\.warn|__all__")


@dataclass
class Mutant:
    target: str
    file: str
    line: int
    op: str
    before: str
    after: str
    outcome: str = ""  # killed | survived | timeout | invalid
    seconds: float = 0.0


def code_lines(text: str) -> list[int]:
    """0-based indices of lines that hold code worth mutating (not docstrings, comments, messages)."""
    out = []
    in_doc: str | None = None
    for i, line in enumerate(text.splitlines()):
        s = line.strip()
        if in_doc:
            if in_doc in s:
                in_doc = None
            continue
        for q in ('"""', "'''"):
            if s.startswith(q) or s.startswith("r" + q):
                if s.count(q) == 1:
                    in_doc = q
                break
        else:
            if s and not SKIP_LINE.search(line):
                out.append(i)
    return out


def candidates(target: str, rel: str) -> list[Mutant]:
    text = (ROOT / rel).read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for i in code_lines(text):
        line = lines[i]
        code = line.split("  #", 1)[0]  # not in a trailing comment
        for name, pat, rep in OPERATORS:
            for m in re.finditer(pat, code, flags=re.M):
                new = code[: m.start()] + m.expand(rep) + code[m.end():] + line[len(code):]
                if new != line:
                    found.append(Mutant(target, rel, i + 1, name, line.strip(), new.strip()))
    return found


def run_tests(tests: list[str], timeout: float) -> tuple[str, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="mutpyc-"))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - t0
    return ("survived" if proc.returncode == 0 else "killed"), time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(TARGETS), help="targets (default: all)")
    ap.add_argument("--per-file", type=int, default=15, help="mutants per target file")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run (a timeout counts as killed)")
    ap.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    ap.add_argument("--list", action="store_true", help="only list the chosen mutants")
    args = ap.parse_args(argv)

    def interrupted(signum, frame):  # a kill restores the file being mutated, like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)

    results: list[Mutant] = []
    for target in args.only or list(TARGETS):
        rel, tests = TARGETS[target]
        path = ROOT / rel
        original = path.read_text(encoding="utf-8")
        pool = candidates(target, rel)
        chosen = sorted(random.Random(f"{args.seed}-{target}").sample(pool, min(args.per_file, len(pool))), key=lambda m: m.line)
        print(f"== {rel}: {len(pool)} candidate mutants, {len(chosen)} chosen; tests: {' '.join(tests)}", flush=True)
        if args.list:
            for m in chosen:
                print(f"  {rel}:{m.line} [{m.op}] {m.before}  ->  {m.after}")
            continue
        base, secs = run_tests(tests, args.timeout)
        if base != "survived":
            print(f"  the tests fail on the unmutated code ({base}, {secs:.0f} s): skipping {rel}", flush=True)
            continue
        print(f"  baseline passes in {secs:.0f} s", flush=True)
        try:
            for m in chosen:
                lines = original.splitlines(keepends=True)
                old = lines[m.line - 1]
                indent = old[: len(old) - len(old.lstrip())]
                lines[m.line - 1] = indent + m.after + ("\n" if old.endswith("\n") else "")
                path.write_text("".join(lines), encoding="utf-8")
                try:
                    compile("".join(lines), str(path), "exec")
                except SyntaxError:
                    m.outcome = "invalid"
                else:
                    m.outcome, m.seconds = run_tests(tests, args.timeout)
                    if m.outcome == "timeout":
                        m.outcome = "killed (timeout)"
                path.write_text(original, encoding="utf-8")
                results.append(m)
                print(f"  {m.outcome:16s} {rel}:{m.line} [{m.op}] {m.before}  ->  {m.after}  ({m.seconds:.0f} s)", flush=True)
        finally:
            path.write_text(original, encoding="utf-8")

    valid = [m for m in results if m.outcome != "invalid"]
    killed = [m for m in valid if m.outcome.startswith("killed")]
    survived = [m for m in valid if m.outcome == "survived"]
    print(f"\n{len(valid)} mutants ({len(results) - len(valid)} invalid left out): {len(killed)} killed, {len(survived)} survived")
    for m in survived:
        print(f"  survived: {m.file}:{m.line} [{m.op}] {m.before}  ->  {m.after}")
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in results], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
