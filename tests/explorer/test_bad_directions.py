"""A model whose direction metadata cannot make a slider (NaN or absurd ranges in config.json)
is refused with a message naming the file, instead of leaving the window on "Opening the model..."
with no sliders (issue 17)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from .conftest import WAIT_MS


@pytest.mark.parametrize("entry", [{"slider_range": [math.nan, 1]}, {"slider_range": [1e308, 1]}, {"range": 1e15}, {"scale": math.nan}])
def test_a_model_with_unusable_slider_metadata_shows_an_error(qtbot, make_window, tiny_model, tmp_path, entry):
    bad = tmp_path / "bad_model"
    shutil.copytree(tiny_model, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["directions"]["Smiling"].update(entry)
    (bad / "config.json").write_text(json.dumps(cfg))
    win = make_window(bad, wait=False)
    qtbot.waitUntil(lambda: "Could not open the model" in win.message.text(), timeout=WAIT_MS)
    assert win.message.kind == "error"
    assert "config.json" in win.message.text() and "Smiling" in win.message.text()
