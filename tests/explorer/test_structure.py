"""The explorer's structure (issue #16): actions declared once, typed jobs with one handler each,
no reaching into other objects' private members, no oversized module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import explorer
from explorer import protocol

PKG = Path(explorer.__file__).resolve().parent
MAX_LINES = 600
ALLOWED_PRIVATE = {"os._exit", "sys._getframe"}


def test_no_module_of_the_app_is_over_600_lines():
    long = {p.relative_to(PKG).as_posix(): n for p in PKG.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def _private_accesses(tree: ast.AST) -> list[str]:
    """``obj._name`` where ``obj`` is not ``self``/``cls`` (another object's private member)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            text = ast.unparse(node)
            if text not in ALLOWED_PRIVATE:
                out.append(f"{getattr(node, 'lineno', '?')}: {text}")
    return out


def test_the_app_never_touches_another_objects_private_members():
    offenders = {}
    for path in sorted(PKG.rglob("*.py")):
        found = _private_accesses(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            offenders[path.relative_to(PKG).as_posix()] = found
    assert offenders == {}


def test_the_private_access_check_catches_one():
    assert sorted(_private_accesses(ast.parse("self.jobbar._cancel()\nself._ok = 1\ncanvas._before\n"))) == ["1: self.jobbar._cancel", "3: canvas._before"]


def test_every_job_type_has_a_worker_handler_and_a_kind_of_its_own():
    from explorer.worker import ModelWorker

    jobs = [c for c in vars(protocol).values() if isinstance(c, type) and issubclass(c, protocol.Job) and c is not protocol.Job]
    assert len(jobs) >= 10
    registry = ModelWorker.__dict__["_run_job"].dispatcher.registry
    assert [j.__name__ for j in jobs if j not in registry] == []
    kinds = [j.kind for j in jobs]
    assert len(set(kinds)) == len(kinds)
    assert all(j.fail_title for j in jobs)


def test_the_worker_refuses_an_untyped_job(qtbot):
    from explorer.worker import WorkerHost

    host = WorkerHost(engine_factory=lambda: None)
    try:
        with pytest.raises(TypeError):
            host.worker.submit("principal")  # the old string-and-dict form
    finally:
        assert host.shutdown()


# ---------------------------------------------------------------------- actions as data
def test_menus_toolbar_and_f1_list_come_from_the_one_table():
    from explorer.actions import ACTIONS, KEYS, MENUS, TOOLBAR, shortcut_rows

    names = {a.name for a in ACTIONS}
    assert len(names) == len(ACTIONS)
    placed = {n for _, items in MENUS for n in items if n not in (None, "docks")}
    assert placed <= names
    assert {n for n in TOOLBAR if n not in (None, "@sampling")} <= names
    rows = shortcut_rows()
    helped = [a for a in ACTIONS if a.help and a.keys]
    assert [r[1] for r in rows[: len(helped)]] == [a.help for a in helped]
    assert rows[len(helped):] == list(KEYS)


def test_every_action_calls_something_on_the_window_and_no_shortcut_is_taken_twice(window):
    from PySide6.QtGui import QKeySequence

    from explorer.actions import ACTIONS, resolve

    seen: dict[str, str] = {}
    for spec in ACTIONS:
        assert callable(resolve(window, spec.slot)), spec.slot
        act = getattr(window, f"act_{spec.name}")
        assert act.text() == spec.text
        for seq in act.shortcuts():
            key = seq.toString(QKeySequence.SequenceFormat.PortableText)
            assert seen.get(key, spec.name) == spec.name, f"{key}: {spec.name} and {seen[key]}"
            seen[key] = spec.name
    assert window.act_keyframe.shortcut().toString() == "K"
    # the F1 list writes each action's main shortcut
    from explorer.actions import shortcut_rows

    text = " ".join(k for k, _ in shortcut_rows())
    for spec in ACTIONS:
        if spec.help and spec.keys and isinstance(spec.keys[0], str):
            assert spec.keys[0] in text, spec.name


def test_a_menu_action_runs_its_slot(qtbot, window):
    """Triggering Edit > Reset all attributes through the menu bar resets the sliders."""
    win = window
    win.attributes.row("Smiling").slider.setValue(120)
    assert win.state.amount("Smiling") != 0
    edit = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Edit")
    reset = next(a for a in edit.actions() if a.text() == "Reset all attributes")
    reset.trigger()
    assert win.state.amount("Smiling") == 0
