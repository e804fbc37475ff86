"""Glow Explorer: the PySide6 desktop app (``glow-explorer``).

The GUI modules never import torch: the model lives in a worker thread (:mod:`explorer.worker`)
that imports :mod:`explorer.engine`, and through it torch and glowcore, when it first needs them.
"""

from ._compat import protect_singletons

__all__ = ["main"]

# PySide6 6.12.0 loses a reference to None/True on every Qt call on Python < 3.12, which aborts
# the interpreter after a few thousand user actions (see explorer/_compat.py).
protect_singletons()


def main(argv=None) -> int:
    """Start the app (see :func:`explorer.app.main`)."""
    from .app import main as _main

    return _main(argv)
