"""Say in one line why Qt cannot open a window, instead of Qt's abort.

When Qt cannot load its platform plugin (on a fresh Debian/Ubuntu, typically the xcb plugin's
``libxcb-cursor0``, ``libxcb-icccm4`` and ``libxcb-keysyms1`` are missing) it prints several lines,
"Reinstalling the application may fix this problem", and aborts. ``explained_startup()`` wraps the
creation of the QApplication: Qt's platform messages are held back while it starts, and its fatal
message is replaced by one line naming the missing system libraries and the command that installs
them (or the missing display), then the process exits with status 3.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import Callable, Iterator

from PySide6.QtCore import QtMsgType, qInstallMessageHandler

EXIT_CODE = 3

# What Qt's xcb platform plugin loads (soname -> Debian/Ubuntu package). scripts/install-debian-deps
# installs the same list.
LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def missing_packages(load: Callable[[str], object] = ctypes.CDLL) -> list[str]:
    """The packages of LIBRARIES whose library cannot be loaded (Linux only; else none)."""
    if not sys.platform.startswith("linux"):
        return []
    missing = []
    for soname, package in LIBRARIES.items():
        try:
            load(soname)
        except OSError:
            missing.append(package)
    return missing


def explain(messages: list[str], missing: list[str], env: dict | None = None) -> str:
    """The one line for a platform-plugin failure, from Qt's messages and the missing packages."""
    env = os.environ if env is None else env
    head = "glow-explorer: cannot open the window:"
    if missing:
        return (f"{head} Qt's xcb platform plugin needs the system libraries {', '.join(missing)}; "
                f"install them with: sudo apt-get install -y {' '.join(missing)} (or scripts/install-debian-deps)")
    platform = env.get("QT_QPA_PLATFORM", "")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY") and platform in ("", "xcb", "wayland"):
        return f"{head} no display to connect to (DISPLAY is not set); run it in a desktop session, or over ssh -X"
    detail = next((m.split(": ", 1)[-1] for m in messages if "could not connect" in m.lower()), None)
    detail = detail or next((m for m in messages if m.strip()), "Qt could not initialise a platform plugin")
    return f"{head} {detail.splitlines()[0].strip()} (QT_QPA_PLATFORM={platform or 'default'})"


_exit = os._exit  # replaced in tests


@contextlib.contextmanager
def explained_startup() -> Iterator[None]:
    """Run the QApplication's creation under a handler that turns Qt's platform failure into one line."""
    held: list[str] = []

    def handler(kind, context, message: str) -> None:
        category = str(getattr(context, "category", "") or "")
        if kind == QtMsgType.QtFatalMsg and "platform plugin" in message:
            sys.stderr.write(explain(held + [message], missing_packages()) + "\n")
            sys.stderr.flush()
            _exit(EXIT_CODE)
        elif kind != QtMsgType.QtFatalMsg and (category.startswith("qt.qpa") or "platform plugin" in message):
            held.append(message)
        else:
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(None)
    for message in held:  # it started after all: show what Qt had to say
        sys.stderr.write(message + "\n")
