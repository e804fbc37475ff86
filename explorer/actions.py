"""Every command of the window, declared once: menus, toolbar, shortcuts and the F1 list.

:data:`ACTIONS` is the table: one :class:`ActionSpec` per command, naming its text, the window
method it calls (a dotted path from the window, e.g. ``"morph_ctl.add_current_keyframe"``), its
shortcuts, icon, tooltip and the line the F1 list shows. :data:`MENUS` and :data:`TOOLBAR` place
the actions by name; :data:`KEYS` adds the keys that are not actions (hold B). :func:`build_actions`
makes the ``QAction`` objects (``window.act_<name>``), :func:`build_menus` the menu bar and
:func:`shortcut_rows` the F1 list, so a shortcut is written in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from PySide6.QtGui import QAction, QKeySequence

from .icons import icon

__all__ = ["ActionSpec", "ACTIONS", "MENUS", "TOOLBAR", "KEYS", "build_actions", "build_menus", "shortcut_rows", "resolve"]

Key = Union[str, QKeySequence.StandardKey]
SK = QKeySequence.StandardKey


@dataclass(frozen=True)
class ActionSpec:
    """One command. ``slot``: dotted path from the window to the method called (with the checked
    state for ``checkable`` actions). ``keys``: shortcuts (the first is the main one).
    ``help``: its line in the F1 list ("" to leave it out); ``keys_text``: how F1 writes the keys
    (default: the shortcuts, joined with " / ")."""

    name: str
    text: str
    slot: str
    keys: tuple[Key, ...] = ()
    icon: str = ""
    tip: str = ""
    checkable: bool = False
    help: str = ""
    keys_text: str = ""


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("new", "New face", "new_face", ("N",), "new-face", "A new random face (N)", help="New face (random seed)"),
    ActionSpec("undo", "Undo", "state.undo", (SK.Undo,), "undo", "Undo (Ctrl+Z)", help="Undo", keys_text="Ctrl+Z"),
    ActionSpec("redo", "Redo", "state.redo", (SK.Redo, "Ctrl+Y"), "redo", "Redo (Ctrl+Shift+Z)", help="Redo", keys_text="Ctrl+Shift+Z / Ctrl+Y"),
    ActionSpec("back", "Previous face", "step_history_back", ("Alt+Left",), help="Previous face in the history"),
    ActionSpec("fwd", "Next face", "step_history_forward", ("Alt+Right",), help="Next face in the history"),
    ActionSpec("reset", "Reset all attributes", "reset_attributes", ("Ctrl+R",), "reset", "Set every slider back to 0 (Ctrl+R)", help="Reset all attributes"),
    ActionSpec("search", "Find attribute", "focus_search", ("Ctrl+F",), help="Search the attributes"),
    ActionSpec("compare", "Compare", "set_compare", ("Ctrl+B",), "compare", "Split view: before the edits | after (Ctrl+B; hold B to peek)", checkable=True,
               help="Split view: before | after (the whole photo too, when a photo is open)"),
    ActionSpec("pixel", "Pixelated", "set_pixelated", ("P",), "pixel", "Show pixels crisp instead of smoothed (P)", checkable=True, help="Smooth or pixelated scaling"),
    ActionSpec("fit", "Fit", "zoom_fit", ("Ctrl+0",), "zoom-fit", "Fit the picture to the window (Ctrl+0)", help="Fit the picture (also the mouse wheel zooms)"),
    ActionSpec("zoom_in", "Zoom in", "zoom_in", ("Ctrl+=", "Ctrl++"), help="Zoom in", keys_text="Ctrl+="),
    ActionSpec("zoom_out", "Zoom out", "zoom_out", ("Ctrl+-",), help="Zoom out"),
    ActionSpec("open_photo", "Open photo…", "choose_photo", (SK.Open,), "open-photo",
               "Open your photo: the face is found and encoded, every slider works on it, and the whole photo follows (Ctrl+O)",
               help="Open a photo (or drag and drop one, or paste with Ctrl+V)", keys_text="Ctrl+O"),
    ActionSpec("paste", "Paste photo", "paste_photo", (SK.Paste,), "", "Paste a picture from the clipboard (Ctrl+V)"),
    ActionSpec("open_model", "Open model…", "choose_model", ("Ctrl+Shift+O",), "open-model", "Open another Glow model (folder or .safetensors file)", help="Open a model"),
    ActionSpec("save", "Save", "save_picture", (SK.Save,), "save", "Save the picture (Ctrl+S); with a photo open, the whole photo at full size",
               help="Save the picture (with a photo open: the full-size photo)", keys_text="Ctrl+S"),
    ActionSpec("save_big", "Save enlarged…", "save_picture_enlarged", ("Ctrl+Shift+S",), "save", "Save the picture 4x enlarged (Ctrl+Shift+S)", help="Save the picture 4x enlarged"),
    ActionSpec("save_face", "Save face…", "save_face", ("Ctrl+Alt+S",), "save", "Save the model-size face as PNG (Ctrl+Alt+S)", help="Save the model-size face"),
    ActionSpec("copy", "Copy", "copy_picture", (SK.Copy,), "copy", "Copy the picture, 4x enlarged (Ctrl+C)", help="Copy the picture (4x enlarged)", keys_text="Ctrl+C"),
    ActionSpec("keyframe", "Add keyframe", "morph_ctl.add_current_keyframe", ("K",), "plus", "Add the current face as a keyframe (K)", help="Add the current face as a keyframe"),
    ActionSpec("play", "Play / pause morph", "morph_ctl.play_shortcut", ("Space",), help="Play / pause the morph (Interpolate tab)"),
    ActionSpec("export", "Export video…", "morph_ctl.export_shortcut", ("Ctrl+E",), "export", "Export the morph as MP4, GIF or WebP (Ctrl+E)", help="Export the morph as a video"),
    ActionSpec("inpaint", "Fill in", "inpaint_ctl.shortcut", ("Ctrl+Return",), "run", help="Fill in the painted area (Inpaint tab)"),
    ActionSpec("save_model", "Save model with directions…", "directions_ctl.save_model_as"),
    ActionSpec("cancel", "Cancel job", "cancel_job", ("Esc",), "cancel", help="Cancel the running job"),
    ActionSpec("quit", "Quit", "close", (SK.Quit,)),
    ActionSpec("help", "Keyboard shortcuts", "show_shortcuts", ("F1",), help="This list"),
    ActionSpec("about", "About Glow Explorer", "show_about"),
)

#: Keys that are not actions (handled in the window's key events), for the F1 list.
KEYS: tuple[tuple[str, str], ...] = (("Hold B", "Show the face (and photo) before the edits"),)

#: The menu bar: menu title and action names in order (None: a separator; "docks": the dock toggles).
MENUS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("&File", ("open_photo", "paste", None, "open_model", None, "save", "save_face", "save_big", "copy", None, "export", None, "save_model", "quit")),
    ("&Edit", ("undo", "redo", None, "new", "back", "fwd", None, "reset", "search", None, "keyframe")),
    ("&View", ("compare", "pixel", None, "fit", "zoom_in", "zoom_out", None, "docks")),
    ("&Help", ("help", "about")),
)

#: The toolbar: action names, None for a separator, "@sampling" where the seed and temperature
#: controls go (built by :mod:`explorer.layout`).
TOOLBAR: tuple[Any, ...] = ("new", "@sampling", None, "undo", "redo", None, "compare", "pixel", "fit", None, "save", "copy", None, "open_photo")


def resolve(root: Any, path: str) -> Callable[..., Any]:
    """The callable at dotted ``path`` from ``root`` (looked up when called, so controllers made
    after the actions, or replaced, are found)."""
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _keys_text(spec: ActionSpec) -> str:
    if spec.keys_text:
        return spec.keys_text
    return " / ".join(k if isinstance(k, str) else QKeySequence(k).toString() for k in spec.keys)


def build_actions(window: Any) -> dict[str, QAction]:
    """Make every action of :data:`ACTIONS` on ``window`` (also as ``window.act_<name>``)."""
    out: dict[str, QAction] = {}
    for spec in ACTIONS:
        a = QAction(spec.text, window)
        if spec.icon:
            a.setIcon(icon(spec.icon))
        if spec.keys:
            a.setShortcuts([QKeySequence(k) for k in spec.keys])
        if spec.tip:
            a.setToolTip(spec.tip)
            a.setStatusTip(spec.tip)
        a.setCheckable(spec.checkable)
        if spec.checkable:
            a.toggled.connect(lambda on, p=spec.slot: resolve(window, p)(on))
        else:
            a.triggered.connect(lambda *_, p=spec.slot: resolve(window, p)())
        window.addAction(a)
        setattr(window, f"act_{spec.name}", a)
        out[spec.name] = a
    return out


def build_menus(window: Any, actions: dict[str, QAction], docks: list[Any]) -> None:
    mb = window.menuBar()
    for title, names in MENUS:
        m = mb.addMenu(title)
        for name in names:
            if name is None:
                m.addSeparator()
            elif name == "docks":
                for d in docks:
                    m.addAction(d.toggleViewAction())
            else:
                m.addAction(actions[name])


def shortcut_rows() -> list[tuple[str, str]]:
    """The F1 list: (keys, what they do), from :data:`ACTIONS` and :data:`KEYS`."""
    rows = [(_keys_text(s), s.help) for s in ACTIONS if s.help and s.keys]
    return rows + list(KEYS)
