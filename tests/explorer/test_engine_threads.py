"""The engine's thread count: measured once the first face is shown, unless one is asked for
(``--threads``, ``GLOW_THREADS`` or the ``engine/threads`` setting)."""

from __future__ import annotations

import torch

from explorer.app import requested_threads
from explorer.state import FaceRef, Snapshot


def _idle(eng) -> None:
    while eng.idle_work():
        pass


def test_calibration_picks_a_valid_count_after_the_first_face(monkeypatch, tiny_model):
    from explorer import engine as engine_mod
    from glowcore.base import threads

    monkeypatch.delenv("GLOW_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        eng = engine_mod.Engine("cpu")
        assert eng.threads.source == "default"
        eng.open_model(str(tiny_model))
        eng.render(Snapshot(face=FaceRef.from_seed(1)))
        assert eng.threads.source == "default"  # the first face does not wait for it
        _idle(eng)
        assert eng.threads.source == "calibrated"
        assert eng.threads.threads in threads.candidates() and set(eng.threads.timings_ms) == set(threads.candidates())
        assert torch.get_num_threads() == eng.threads.threads
        assert "calibrated" in eng.device_label()
        eng.open_model(str(tiny_model))  # a second model: measured once per engine
        eng.render(Snapshot(face=FaceRef.from_seed(1)))
        calls = []
        monkeypatch.setattr(engine_mod, "calibrate", lambda *a, **k: calls.append(1))
        _idle(eng)
        assert not calls
    finally:
        torch.set_num_threads(before)


def test_a_requested_count_or_glow_threads_skips_the_calibration(monkeypatch, tiny_model):
    from explorer import engine as engine_mod

    before = torch.get_num_threads()
    calls = []
    monkeypatch.setattr(engine_mod, "calibrate", lambda *a, **k: calls.append(1))
    try:
        monkeypatch.setenv("GLOW_THREADS", "2")
        eng = engine_mod.Engine("cpu")
        assert (eng.threads.threads, eng.threads.source) == (2, "GLOW_THREADS") and torch.get_num_threads() == 2
        eng3 = engine_mod.Engine("cpu", threads=1)  # an explicit count beats the variable
        assert (eng3.threads.threads, eng3.threads.source) == (1, "requested") and torch.get_num_threads() == 1
        for e in (eng, eng3):
            e.open_model(str(tiny_model))
            e.render(Snapshot(face=FaceRef.from_seed(1)))
            _idle(e)
        assert not calls
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_setting_is_used_unless_the_option_or_the_variable_says_otherwise(monkeypatch, settings):
    monkeypatch.delenv("GLOW_THREADS", raising=False)
    assert requested_threads(None, settings) is None  # nothing asked: the engine measures
    settings.setValue("engine/threads", 3)
    assert requested_threads(None, settings) == 3
    assert requested_threads(2, settings) == 2  # --threads first
    monkeypatch.setenv("GLOW_THREADS", "1")
    assert requested_threads(None, settings) is None  # the engine reads GLOW_THREADS
    monkeypatch.delenv("GLOW_THREADS")
    for bad in ("0", "-2", "lots"):
        settings.setValue("engine/threads", bad)
        assert requested_threads(None, settings) is None


def test_bf16_or_float32_is_measured_once_where_bf16_is_native(monkeypatch, tiny_model):
    """Where the CPU computes bf16 natively and nothing was asked for, the engine times the live
    decode both ways once the first face is shown and keeps the faster (issue 18: CPUs differ);
    its pictures are then the float32 decoding's where that won."""
    import numpy as np

    import glowcore
    from explorer import engine as engine_mod

    monkeypatch.setattr(engine_mod, "default_fast", lambda: True)
    monkeypatch.delenv("GLOW_BF16", raising=False)  # the suite's conftest sets it
    calls = []

    def exact_wins(decode, rounds=3):
        calls.append((decode(True), decode(False)))  # both paths decode
        return False, {"fast": 10.0, "exact": 9.0}

    monkeypatch.setattr(engine_mod, "calibrate_precision", exact_wins)
    before = torch.get_num_threads()
    try:
        eng = engine_mod.Engine("cpu", threads=1)
        assert eng.fast
        eng.open_model(str(tiny_model))
        spec = Snapshot(face=FaceRef.from_seed(1), amounts=(("Smiling", 0.8),))
        eng.render(spec)
        _idle(eng)
        assert len(calls) == 1 and not eng.fast and eng.precision_ms == {"fast": 10.0, "exact": 9.0}
        assert "bf16" not in eng.device_label()
        exact = glowcore.to_uint8(eng.model.decode(eng.edited_latent(spec), fast=False))[0]
        assert np.array_equal(eng.render(spec)[0], exact)
        eng.open_model(str(tiny_model))  # once per engine
        eng.render(spec)
        _idle(eng)
        assert len(calls) == 1
        asked = engine_mod.Engine("cpu", threads=1, fast=True)  # asked for: not measured
        asked.open_model(str(tiny_model))
        asked.render(spec)
        _idle(asked)
        assert len(calls) == 1 and asked.fast
        for value, fast in (("1", True), ("0", False)):  # GLOW_BF16 decides without measuring
            monkeypatch.setenv("GLOW_BF16", value)
            told = engine_mod.Engine("cpu", threads=1)
            told.open_model(str(tiny_model))
            told.render(spec)
            _idle(told)
            assert len(calls) == 1 and told.fast is fast
    finally:
        torch.set_num_threads(before)
