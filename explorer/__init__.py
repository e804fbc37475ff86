"""Glow Explorer: the PySide6 desktop app (``glow-explorer``).

The GUI modules never import torch: the model lives in a worker thread (:mod:`explorer.worker`)
that imports :mod:`explorer.engine`, and through it torch and glowcore, when it first needs them.
"""

__all__ = ["main"]


def main(argv=None) -> int:
    """Start the app (see :func:`explorer.app.main`)."""
    from .app import main as _main

    return _main(argv)
