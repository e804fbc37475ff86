"""Design rule 1: the GUI thread never imports torch. Only the engine (run by the worker) does."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import explorer

PKG = Path(explorer.__file__).resolve().parent
TORCH_SIDE = {"engine.py", "engine_photo.py", "engine_live.py"}  # imported only by the worker (engine_photo, engine_live by the engine), in its thread
HEAVY = ("torch", "glowcore", "numpy.testing")


def _module_level_imports(tree: ast.Module) -> list[str]:
    """Names imported when the module is imported (not inside functions)."""
    names: list[str] = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                names.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.append(("." * node.level) + (node.module or ""))
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(node, field, []) or [])
            elif isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, ast.ExceptHandler):
                visit(node.body)

    visit(tree.body)
    return names


def test_gui_modules_do_not_import_torch_or_glowcore_at_import_time():
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel in TORCH_SIDE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in _module_level_imports(tree):
            if name.split(".")[0] in ("torch", "glowcore") or name.lstrip(".") == "engine":
                offenders.append(f"{rel}: import {name}")
    assert offenders == []


def test_only_the_worker_imports_the_engine_and_only_inside_a_function():
    importers = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module == "engine" or any(a.name == "engine" for a in node.names)):
                importers.append(rel)
            if isinstance(node, ast.Import) and any(a.name.endswith("explorer.engine") for a in node.names):
                importers.append(rel)
    assert set(importers) == {"worker.py"}


def test_opening_the_window_does_not_load_torch():
    code = r"""
import os, sys, tempfile
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QSettings
import explorer, explorer.app, explorer.window, explorer.state, explorer.protocol, explorer.runs, explorer.worker
import explorer.widgets.plots, explorer.widgets.canvas, explorer.widgets.attributes
from explorer.app import make_app
from explorer.window import MainWindow
app = make_app()
s = QSettings(os.path.join(tempfile.mkdtemp(), "s.ini"), QSettings.Format.IniFormat)
w = MainWindow(None, settings=s, open_at_start=False)
w.show()
app.processEvents()
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "glowcore"))
w.close()
print("HEAVY:" + ",".join(bad))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("HEAVY:")][-1]
    assert line == "HEAVY:", f"GUI import pulled in: {line[6:]}"


def test_gui_copies_of_engine_vocabularies_match_glowcore():
    from glowcore.ops import interpolate, video

    from explorer.protocol import EASES, MODES, VIDEO_FORMATS

    assert set(EASES) == set(interpolate.EASES)
    assert set(MODES) == set(interpolate.MODES)
    assert set(VIDEO_FORMATS) == set(video.FORMATS.values())
