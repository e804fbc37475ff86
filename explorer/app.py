"""``glow-explorer``: start the Glow Explorer window.

Usage: ``glow-explorer [--model PATH] [--device cpu|cuda] [--seed N]``. Without ``--model`` the
last model used is opened, else the bundled face model; when none is found the window says so and
File > Open model… picks one.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from PySide6.QtCore import QCoreApplication, QSettings, Qt
from PySide6.QtWidgets import QApplication

from .icons import icon
from .qtcheck import explained_startup
from .theme import apply_theme
from .window import LINGERING, MainWindow

__all__ = ["main", "build_parser", "make_app", "requested_threads"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="glow-explorer", description="Explore the latent space of a Glow model: sliders, morphs, inpainting.")
    p.add_argument("--model", "-m", metavar="PATH", help="model folder or .safetensors file (default: last used, else the bundled face model)")
    p.add_argument("--device", metavar="DEVICE", help="torch device for the model (default: cuda if available, else cpu)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the first face (default: random)")
    p.add_argument(
        "--threads", type=int, metavar="N",
        help="CPU threads for the model (default: GLOW_THREADS, else the engine/threads setting, else measured at start-up)",
    )
    return p


def requested_threads(option: Optional[int], settings: Optional[QSettings] = None) -> Optional[int]:
    """The model's thread count asked for: ``--threads``, else ``GLOW_THREADS`` (the engine reads
    it), else the ``engine/threads`` setting; None: the engine measures (glowcore.base.threads)."""
    if option:
        return int(option)
    if os.environ.get("GLOW_THREADS", "").strip():
        return None
    value = (settings if settings is not None else QSettings("GlowExplorer", "Glow Explorer")).value("engine/threads", None)
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def make_app(argv: Optional[Sequence[str]] = None) -> QApplication:
    """The QApplication, themed (created if needed)."""
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        app = QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("Glow Explorer")
    app.setOrganizationName("GlowExplorer")
    app.setApplicationDisplayName("Glow Explorer")
    app.setWindowIcon(icon("app"))
    apply_theme(app)  # type: ignore[arg-type]
    return app  # type: ignore[return-value]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``glow-explorer``."""
    args = build_parser().parse_args(argv)
    with explained_startup():  # Qt's platform-plugin failure: one line naming what to install
        app = make_app()
    win = MainWindow(args.model, device=args.device, seed=args.seed, threads=requested_threads(args.threads))
    win.show()
    code = int(app.exec())
    if LINGERING:  # a job step that could not be interrupted: give it a moment, then leave anyway
        if not all(h.thread.wait(10_000) for h in LINGERING):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
