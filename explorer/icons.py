"""The explorer's icons: small SVGs in ``assets/icons`` (package ``glow_explorer_assets``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtGui import QIcon

__all__ = ["icon", "icons_dir"]


def icons_dir() -> Path:
    """``assets/icons`` of a checkout, or of the installed package."""
    here = Path(__file__).resolve().parent.parent / "assets" / "icons"
    if here.is_dir():
        return here
    try:
        import glow_explorer_assets  # type: ignore[import-not-found]

        return Path(glow_explorer_assets.__file__).resolve().parent / "icons"
    except ImportError:  # pragma: no cover - broken install
        return here


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """The icon ``name`` (file ``NAME.svg``); an empty icon if it is missing."""
    path = icons_dir() / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()
