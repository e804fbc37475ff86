"""What the window remembers between runs (QSettings): layout, view, sampling, favourites, model.

Every key the app stores is read and written here, and every value read is checked: a settings
file edited by hand or left by another version never stops the window from opening.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional

from PySide6.QtCore import QByteArray, QSettings

from .state import DEFAULT_FAVOURITES

__all__ = ["Settings"]


def _flag(value: Any) -> bool:
    return value in (True, "true", "1", 1)


class Settings:
    """Typed access to the app's QSettings (default: the user's; tests pass an .ini file)."""

    def __init__(self, qsettings: Optional[QSettings] = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings("GlowExplorer", "Glow Explorer")

    # ------------------------------------------------------------------ values
    def favourites(self) -> list[str]:
        favs = self.q.value("favourites", None)
        if isinstance(favs, str):
            return [favs] if favs else []
        return list(favs) if isinstance(favs, (list, tuple)) else list(DEFAULT_FAVOURITES)

    def set_favourites(self, names: Any) -> None:
        self.q.setValue("favourites", list(names))

    def temperatures(self) -> dict[str, float]:
        """The saved temperatures, by state attribute name (clamped to 0..1.2; bad values left out)."""
        out = {}
        for key, attr in (("sampling/temperature", "temperature"), ("sampling/detail_temperature", "detail_temperature")):
            t = self.q.value(key, None)
            if t is None:
                continue
            try:
                v = float(t)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                out[attr] = min(1.2, max(0.0, v))
        return out

    def last_model(self) -> Optional[str]:
        """The model opened last, when it still exists."""
        last = self.q.value("model/last", "")
        return str(last) if last and os.path.exists(str(last)) else None

    def set_last_model(self, path: str) -> None:
        self.q.setValue("model/last", path)

    def jpeg_quality(self) -> int:
        try:
            return min(100, max(1, int(self.q.value("photo/jpeg_quality", 95))))
        except (TypeError, ValueError):
            return 95

    def set_jpeg_quality(self, quality: int) -> None:
        self.q.setValue("photo/jpeg_quality", int(quality))

    # ------------------------------------------------------------------ the window
    def restore_window(self, win: Any) -> None:
        """Geometry, docks, view options, tools tab and the plotted run."""
        s = self.q
        geo = s.value("window/geometry")
        if isinstance(geo, (QByteArray, bytes)):
            win.restoreGeometry(QByteArray(geo))
        st = s.value("window/state")
        if isinstance(st, (QByteArray, bytes)):
            win.restoreState(QByteArray(st))
        win.act_pixel.setChecked(_flag(s.value("view/pixelated", False)))
        win.photo_panel.spread.setChecked(_flag(s.value("photo/spread", True)))
        try:
            win.tools.setCurrentIndex(int(s.value("view/tools_tab", 0)))
        except (TypeError, ValueError):
            pass
        run = s.value("plots/run_dir", "")
        if run and os.path.isdir(str(run)):
            win.plots.open_run(str(run))

    def save_window(self, win: Any) -> None:
        s = self.q
        s.setValue("window/geometry", win.saveGeometry())
        s.setValue("window/state", win.saveState())
        s.setValue("view/pixelated", win.act_pixel.isChecked())
        s.setValue("photo/spread", win.photo_panel.spread.isChecked())
        s.setValue("view/tools_tab", win.tools.currentIndex())
        s.setValue("sampling/temperature", win.state.temperature)
        s.setValue("sampling/detail_temperature", win.state.detail_temperature)
        self.set_favourites(win.state.favourites)
        if win.plots.run.run_dir is not None:
            s.setValue("plots/run_dir", str(win.plots.run.run_dir))
        s.sync()
