"""benchmarks/gui_latency.py runs every scenario (tiny model, a few moves) so that it cannot rot.
No timing is checked: only that each scenario drove the window and measured something."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gui_latency.py"


@pytest.fixture(scope="module")
def gui_latency():
    spec = importlib.util.spec_from_file_location("gui_latency_under_test", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.WAIT_S = 60.0  # a scenario that no longer drives the window fails, not hangs
    return mod


def test_every_scenario_runs_and_reports(gui_latency, tiny_model, tmp_path, qtbot, capsys, monkeypatch):
    monkeypatch.delenv("GLOW_BF16", raising=False)  # the engine measures bf16 against float32, as in the app
    out = tmp_path / "r.json"
    args = [str(tiny_model), "--moves", "6", "--rate", "60", "--startup-runs", "1", "--decode-runs", "2", "--json", str(out)]
    assert gui_latency.main(args) == 0
    r = json.loads(out.read_text())
    assert r["cpu_model"] and "cores" in r and "torch_cpu_capability" in r
    assert r["startup_first_face_s_median"] > 0 and r["decode_ms_p50"] > 0
    assert r["decode_far_edit"] == "Smiling+Male+Eyeglasses at 2" and r["decode_far_over_plain_p50"] > 0
    assert list(gui_latency.SCENARIOS) == ["slider", "stacked", "temperature", "morph"]
    for name in gui_latency.SCENARIOS:
        sc = r[name]
        assert sc["moves"] == 6 and sc["renders"] >= 1 and sc["pictures_painted"] >= 1, name
        assert sc["renders_with_drag_hint"] >= 0 and sc["frames_prefetched"] >= 0, name
        assert all(math.isfinite(sc[k]) and sc[k] > 0 for k in ("latency_ms_p50", "latency_ms_p95", "fps_during_drag")), name
    assert "Eyeglasses" in r["stacked"]["what"] and "1.20" in r["temperature"]["what"] and "morph" in r["morph"]["what"]
    # the engine's measured choices are reported; the label agrees with the precision measured
    if r["precision_ms"]:  # a CPU with native bf16: measured
        assert set(r["precision_ms"]) == {"fast", "exact"}
        from glowcore.base.threads import choose_precision

        assert ("bf16" in r["device"]) == choose_precision(r["precision_ms"])
    else:  # nothing to choose: float32, and the label says no bf16
        assert "bf16" not in r["device"]
    printed = capsys.readouterr().out
    assert r["cpu_model"] in printed and "pictures/s" in printed


def test_the_sweeps_cover_the_whole_range(gui_latency):
    values = gui_latency._wave(120, -200, 200)
    assert min(values) == -200 and max(values) == 200
    values = gui_latency._wave(120, 20, 120)
    assert min(values) == 20 and max(values) == 120
