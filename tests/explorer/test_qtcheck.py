"""glow-explorer on a machine where Qt cannot load its platform plugin: one line naming what to
install (or the missing display), exit status 3, no abort and no page of Qt messages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from explorer import qtcheck

# Simulates a missing system library: a name no machine has, added to the libraries the xcb
# plugin needs; the xcb plugin itself then fails for real (no display to connect to, or this
# machine's own missing libraries).
START = """
import explorer.qtcheck as q
q.LIBRARIES = {**q.LIBRARIES, "libglow-test-absent.so.7": "libglow-test-absent7"}
from explorer.app import main
main([])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb platform plugin is Linux's")
def test_a_platform_plugin_failure_is_one_line_naming_the_missing_libraries() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["QT_QPA_PLATFORM"] = "xcb"
    proc = subprocess.run([sys.executable, "-c", START], env=env, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == qtcheck.EXIT_CODE, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("glow-explorer: cannot open the window:")
    assert "libglow-test-absent7" in lines[0] and "sudo apt-get install -y" in lines[0]


def test_missing_packages_are_found_by_loading_each_library() -> None:
    absent = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}

    def load(name: str) -> None:
        if name in absent:
            raise OSError(f"{name}: cannot open shared object file")

    if not sys.platform.startswith("linux"):
        assert qtcheck.missing_packages(load) == []
        return
    assert qtcheck.missing_packages(load) == ["libxcb-icccm4", "libxcb-keysyms1"]
    line = qtcheck.explain(["qt.qpa.plugin: Could not load the Qt platform plugin"], ["libxcb-icccm4", "libxcb-keysyms1"])
    assert line.endswith("sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1 (or scripts/install-debian-deps)")


def test_without_a_display_the_line_says_so() -> None:
    line = qtcheck.explain(["could not connect to display"], [], env={"QT_QPA_PLATFORM": "xcb"})
    assert "no display to connect to" in line and "\n" not in line
    line = qtcheck.explain(["qt.qpa.xcb: could not connect to display :9"], [], env={"DISPLAY": ":9"})
    assert line.endswith("could not connect to display :9 (QT_QPA_PLATFORM=default)")


def test_the_install_script_installs_every_library_the_check_names() -> None:
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "scripts" / "install-debian-deps").read_text()
    listed = script.split('PACKAGES="', 1)[1].split('"', 1)[0].split()
    assert set(qtcheck.LIBRARIES.values()) <= set(listed), set(qtcheck.LIBRARIES.values()) - set(listed)
