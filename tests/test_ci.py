"""CI follows the README: .ci/run runs the README's "On a fresh machine" commands word for word."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fresh_machine_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [ln.strip() for block in blocks for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def test_ci_runs_the_readme_commands() -> None:
    commands = _fresh_machine_commands()
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    window = [c for c in commands if c.endswith("glow-explorer")]  # opens a window: not for CI
    assert len(window) == 1 and len(commands) >= 3
    for command in commands:
        if command not in window:
            assert command in ci, f".ci/run does not run the README's {command!r}"
    ran = [ln for ln in ci if ln and not ln.startswith("#") and ln not in commands]
    assert ran == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "rm -rf .venv", "lint-imports"], ran  # nothing else
