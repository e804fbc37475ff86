"""Fixtures for the explorer tests: a tiny model on disk and an opened window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import glowcore

DIRECTION_NAMES = ["Smiling", "Young", "Male", "Blond_Hair", "Eyeglasses", "Bangs", "Wavy_Hair", "Pale_Skin"]
WAIT_MS = 90_000  # generous: the CI machine is small and shared; these are not timing checks


def build_tiny_model(path: Path) -> Path:
    torch.manual_seed(0)
    m = glowcore.Glow(glowcore.GlowConfig(image_size=16, levels=2, steps=2, hidden=16))
    m.initialize(torch.rand(64, 3, 16, 16))
    m.eval()
    g = torch.Generator().manual_seed(1)
    for name in DIRECTION_NAMES:
        v = torch.randn(m.dim, generator=g)
        m.directions[name] = v / v.norm() * 4.0
        m.direction_info[name] = {"kind": "labels", "method": "mean-diff"}
    glowcore.save_model(m, path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def canvas_array(win) -> np.ndarray:
    from explorer.qimage import qimage_to_array

    return qimage_to_array(win.canvas.image())


def wait_settled(qtbot, win) -> None:
    """Wait until the picture on screen answers the newest render request."""
    qtbot.waitUntil(win.settled, timeout=WAIT_MS)


@pytest.fixture
def make_window(qtbot, settings):
    """Open windows on a model; every window is closed (and its worker thread checked) at the end."""
    from explorer.app import make_app
    from explorer.window import MainWindow

    make_app()
    wins = []

    def make(model, wait: bool = True, **kw):
        win = MainWindow(str(model) if model is not None else None, settings=settings, seed=kw.pop("seed", 7), **kw)
        qtbot.addWidget(win)
        win.show()
        wins.append(win)
        if wait:
            qtbot.waitUntil(lambda: win.canvas.image() is not None, timeout=WAIT_MS)
        return win

    yield make
    for win in wins:
        win.close()
        assert win.host.finished, "the worker thread did not finish when the window closed"


@pytest.fixture
def window(make_window, tiny_model):
    return make_window(tiny_model)
