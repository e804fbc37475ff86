"""The engine's live paths (issue 18): a far-edit drag decodes damped at once where the previous
picture blew up, never showing a blown-up picture, and checks in full now and then; the morph
preview keeps its frames and decodes the next ones while idle. Behaviour only, no timing."""

from __future__ import annotations

import numpy as np
import pytest
import glowcore
from explorer import engine as engine_mod
from explorer import engine_live
from explorer.protocol import InterpParams
from explorer.state import FaceRef, Snapshot
from glowcore.decoding import stable

#: A face of the 16x16 test model hot enough that its exact pass blows up at level 1.
HOT = dict(face=FaceRef.from_seed(1), temperature=30.0)


@pytest.fixture
def eng(tiny_model):
    e = engine_mod.Engine("cpu", threads=1)
    e.open_model(str(tiny_model))
    e.render(Snapshot(face=FaceRef.from_seed(1)))
    while e.idle_work():  # the graphs, as when the explorer is idle
        pass
    return e


def full_check(eng, spec) -> np.ndarray:
    """The picture glowcore's stable decoding gives without any hint."""
    return eng._image(glowcore.to_uint8(eng.model.decode(eng.edited_latent(spec), fast=eng.fast))[0])


def saturated(a: np.ndarray) -> float:
    px = a if a.ndim == 3 else a[..., None]
    return float(((px == 0) | (px == 255)).all(-1).mean())


def test_far_edit_drag_uses_the_hint_and_never_shows_a_blown_picture(eng, monkeypatch):
    monkeypatch.setattr(engine_live, "HINT_MIN_PEAK", stable.TROUBLE)  # this small model blows up by ~1e2
    calls: list = []
    real = stable.stable_reverse

    def spy(model, latent, cancel=None, damp_from=None, report=None):
        out = real(model, latent, cancel, damp_from=damp_from, report=report)
        calls.append((damp_from, dict(report or {})))
        return out

    monkeypatch.setattr(stable, "stable_reverse", spy)
    values = np.linspace(20.0, 30.0, 14)
    for v in values:
        spec = Snapshot(**HOT, amounts=(("Smiling", float(v)),))
        img, _ = eng.render(spec)
        calls_here = len(calls)
        expected = full_check(eng, spec)
        del calls[calls_here:]  # the reference decode above is not part of the drag
        assert img.dtype == np.uint8
        assert saturated(img) <= saturated(expected) + 0.01  # never more blown than the full check
        if calls[-1][0] is not None and calls[-1][1]["damped_from"] == calls[-1][0]:
            np.testing.assert_array_equal(img, expected)  # the hint was right: the same picture
    hinted = [c[0] is not None for c in calls]
    assert not hinted[0] and any(hinted)
    run = longest = 0
    for h in hinted:
        run = run + 1 if h else 0
        longest = max(longest, run)
    assert longest <= engine_live.HINT_RENEW - 1  # checked in full every HINT_RENEW pictures

    # other sliders moved, or a pause: a full check
    calls.clear()
    eng.render(Snapshot(**HOT, amounts=(("Smiling", 30.0), ("Young", 0.5))))
    assert calls[-1][0] is None
    monkeypatch.setattr(engine_live, "HINT_GAP_S", 0.0)
    eng.render(Snapshot(**HOT, amounts=(("Smiling", 30.0), ("Young", 0.5))))
    assert calls[-1][0] is None


def test_plain_drags_are_decoded_exactly(eng):
    """No blow-up, no hint: every picture of a drag is glowcore's decoding, bit for bit."""
    for v in np.linspace(-2.0, 2.0, 7):
        spec = Snapshot(face=FaceRef.from_seed(3), amounts=(("Smiling", float(v)),))
        img, _ = eng.render(spec)
        np.testing.assert_array_equal(img, full_check(eng, spec))
    assert eng._hint is None


def test_morph_preview_keeps_frames_and_prefetches_the_scrub_direction(eng, monkeypatch):
    a = eng.store(eng.model.sample_latent(1, 0.7, seed=0))
    b = eng.store(eng.model.sample_latent(1, 0.7, seed=1))
    params = InterpParams(frames=12)
    decoded: list[int] = []
    real = eng.decode_images

    def counting(latent, cancel=None):
        decoded.append(latent.batch_size)
        return real(latent, cancel)

    monkeypatch.setattr(eng, "decode_images", counting)
    first, n = eng.preview([a, b], params, 3)
    again, _ = eng.preview([a, b], params, 3)
    assert n == 12 and len(decoded) == 1
    np.testing.assert_array_equal(first, again)
    eng.preview([a, b], params, 4)  # scrubbing forwards
    assert eng.idle_work() and len(decoded) == 3  # one frame per idle step: the next one, 5
    eng.preview([a, b], params, 5)
    assert len(decoded) == 3  # it was ready
    while eng.idle_work():
        pass
    assert len(decoded) == 12  # every frame once, then idle
    frames = eng.interp_latents([a, b], params)
    for i in (0, 7, 11):
        shown, _ = eng.preview([a, b], params, i)
        np.testing.assert_array_equal(shown, eng._image(real(frames[i])[0]))  # as decoded fresh
    assert len(decoded) == 12
    # other morph settings: other frames
    eng.preview([a, b], InterpParams(frames=6), 2)
    assert len(decoded) == 13
    # back to the sliders: no morph prefetching while rendering
    eng.render(Snapshot(face=FaceRef.from_seed(1)))
    assert not eng.idle_work()


def _bundled_engine():
    try:
        e = engine_mod.Engine("cpu", threads=1)
        e.open_model(None)
    except Exception as exc:  # pragma: no cover - a checkout without the bundled model
        pytest.skip(f"no bundled model: {exc}")
    if not {"Smiling", "Male", "Eyeglasses", "Young"} <= set(e.model.directions):
        pytest.skip("the bundled model lacks the benchmark's directions")
    return e


def _stacked_drag(e):
    """The drag of the GUI benchmark's stacked scenario: Smiling, Male and Eyeglasses at 2 while
    Young sweeps in slider steps. Returns (pictures drawn with the drag hint, pictures equal to
    the full check's); asserts none is blown up."""
    hinted = same = 0
    values = np.linspace(-2.0, 2.0, 41)  # 0.1 a move: faster than a hand at 60 moves/s (0.04-0.07)
    for v in values:
        spec = Snapshot(face=FaceRef.from_seed(0), amounts=tuple(sorted({"Smiling": 2.0, "Male": 2.0, "Eyeglasses": 2.0, "Young": float(v)}.items())))
        hinted += e._hint is not None
        img, _ = e.render(spec)
        expected = full_check(e, spec)
        assert saturated(img) <= max(0.005, saturated(expected) + 0.005)
        same += bool(np.array_equal(img, expected))
    return hinted, same, len(values)


def test_far_edits_of_the_bundled_model_are_never_blown_on_screen():
    """The stacked drag on the bundled model with its directions' bounds taken away (skipped
    where the model is not installed), so that the latents go as far out as the sliders' ends
    took them before the bounds: every picture is the full check's, most of them decoded with
    the hint."""
    e = _bundled_engine()
    for info in e.model.direction_info.values():
        info.pop("bounds", None)
    hinted, same, n = _stacked_drag(e)
    assert hinted >= n // 2
    assert same == n


def test_the_bounds_keep_the_stacked_drag_near_the_data():
    """With the bundled model's bounds (Eyeglasses' among them) the same drag stays where the
    exact pass holds: no picture needs the far-edit hint, every one is the full check's."""
    e = _bundled_engine()
    assert e.model.direction_info["Eyeglasses"].get("bounds")
    hinted, same, n = _stacked_drag(e)
    assert hinted == 0
    assert same == n


def test_morph_frames_stay_within_the_memory_bound(eng, monkeypatch):
    a = eng.store(eng.model.sample_latent(1, 0.7, seed=0))
    b = eng.store(eng.model.sample_latent(1, 0.7, seed=1))
    params = InterpParams(frames=20)
    first, _ = eng.preview([a, b], params, 0)
    monkeypatch.setattr(engine_mod, "FRAME_CACHE_BYTES", 5 * first.nbytes)
    steps = 0
    while eng.idle_work():
        steps += 1
        assert steps < 20
    assert len(eng._frames) == 5 and steps == 4
    shown, _ = eng.preview([a, b], params, 10)  # beyond the bound: decoded, not kept
    assert len(eng._frames) == 5 and shown.shape == first.shape


def _hot_drag(eng, monkeypatch, values):
    monkeypatch.setattr(engine_live, "HINT_MIN_PEAK", stable.TROUBLE)  # this small model blows up by ~1e2
    for v in values:
        spec = Snapshot(**HOT, amounts=(("Smiling", float(v)),))
        img, _ = eng.render(spec)
    return spec, img


def test_a_hinted_picture_is_checked_when_the_drag_pauses(eng, monkeypatch):
    """The last picture of a far-edit drag, decoded with the hint, is checked with the exact
    levels the hint skipped: right, it stays (nothing returned) and the hint counts as renewed."""
    spec, img = _hot_drag(eng, monkeypatch, np.linspace(20.0, 21.0, 3))
    assert eng.unchecked_picture() and eng._hint is not None and eng._hint[2] < engine_live.HINT_RENEW - 1
    np.testing.assert_array_equal(img, full_check(eng, spec))
    assert eng.check_hinted() is None
    assert not eng.unchecked_picture() and eng.settle_checks == 1
    assert eng._hint is not None and eng._hint[2] == engine_live.HINT_RENEW - 1  # renewed
    assert eng.check_hinted() is None and eng.settle_checks == 1  # nothing left to check
    # a full check (not hinted) leaves nothing to check either
    eng._hint = None
    eng.render(spec)
    assert not eng.unchecked_picture()


def test_a_stale_hint_is_corrected_when_the_drag_pauses(eng, monkeypatch):
    """A hint that no longer holds (the face is back in range at the hinted level): the picture
    was damped from there; the check returns the full check's picture and drops the hint. A
    newer request stops the check and leaves the picture unchecked."""
    monkeypatch.setattr(engine_live, "HINT_GAP_S", 1e9)
    # this face of the 16x16 model goes out of range without blowing up: the full check decodes
    # it exactly, damping from level 1 changes it
    spec = Snapshot(face=FaceRef.from_seed(3), temperature=4.0, amounts=(("Smiling", 0.5),))
    ctx = (spec.face, ("Smiling",), spec.fixed, spec.coarse_only)
    eng._hint = (ctx, 1, 3, 0.0)  # as if the previous picture of this drag had blown up at level 1
    img, _ = eng.render(spec)
    expected = full_check(eng, spec)
    assert eng.unchecked_picture() and not np.array_equal(img, expected)  # damped, not exact
    with pytest.raises(engine_mod.Cancelled):
        eng.check_hinted(engine_mod.CancelToken(when=lambda: True))
    assert eng.unchecked_picture()
    fixed = eng.check_hinted()
    assert fixed is not None
    np.testing.assert_array_equal(fixed, expected)
    assert eng._hint is None and not eng.unchecked_picture()
