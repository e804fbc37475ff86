"""Stable decoding: extreme edits and temperatures never give NaN/Inf or blown-up regions."""

import threading

import numpy as np
import pytest
import torch

from glowcore.ops.directions import add_directions, edit, fit_label_directions
from glowcore.latent import Latent
from glowcore.decoding.stable import BLOWN_THRESHOLD, LADDER, blown_pixels, damped_reverse, stable_reverse

from .latent_helpers import gradient_images, trained_model


@pytest.fixture(scope="module")
def model():
    m = trained_model()
    images = gradient_images(64, seed=8)
    labels = images[:, :, :4].reshape(64, -1).mean(1) > images[:, :, -4:].reshape(64, -1).mean(1)
    add_directions(m, fit_label_directions(m, images, labels, ["left_bright"]))
    return m


def blown_fraction(x: torch.Tensor) -> float:
    return float(blown_pixels(x).float().mean())


@pytest.mark.parametrize("amount", [-20.0, -10.0, 10.0, 20.0])
def test_extreme_edits_do_not_blow_up(model, amount):
    latent = model.encode(gradient_images(16, seed=9))
    edited = edit(model, latent, {"left_bright": amount})
    with torch.inference_mode():
        exact = model.reverse(edited)
        stable = stable_reverse(model, edited)
        images = model.decode(edited)
    assert blown_fraction(exact) > 0.1  # the plain reverse pass does blow up here
    assert torch.isfinite(stable).all() and stable.abs().max() <= BLOWN_THRESHOLD
    at_limit = float((stable.abs() >= BLOWN_THRESHOLD - 1e-6).any(1).float().mean())
    assert at_limit <= 0.3 * blown_fraction(exact)  # the damped re-decoding brings most of it back
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0, 50.0])
def test_hot_samples_are_finite(model, temperature):
    images = model.sample(16, temperature=temperature, seed=1)
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    with torch.inference_mode():
        x = stable_reverse(model, model.sample_latent(16, temperature, seed=1))
    assert torch.isfinite(x).all()


def test_items_that_do_not_blow_up_are_decoded_exactly(model):
    latent = model.encode(gradient_images(4, seed=10))
    mixed = Latent.cat([latent, edit(model, latent[:2], {"left_bright": 20.0})])
    with torch.inference_mode():
        exact = model.reverse(mixed)
        stable = stable_reverse(model, mixed)
        decoded = model.decode(mixed)
    assert blown_fraction(exact[4:]) > 0.1 and blown_fraction(exact[:4]) == 0
    assert torch.equal(stable[:4], exact[:4])
    assert torch.equal(decoded[:4], (exact[:4] + 0.5).clamp(0, 1))
    # encoded images still round-trip
    assert (decoded[:4] - torch.from_numpy(gradient_images(4, seed=10)).permute(0, 3, 1, 2) / 255).abs().max() < 1e-3


def test_damping_is_scoped_to_the_block_and_the_thread(model):
    latent = edit(model, model.encode(gradient_images(2, seed=11)), {"left_bright": 20.0})
    with torch.inference_mode():
        exact = model.reverse(latent)
        seen = {}
        with damped_reverse(LADDER[-1]):
            damped = model.reverse(latent)
            thread = threading.Thread(target=lambda: seen.setdefault("x", model.reverse(latent)))
            thread.start()
            thread.join()
        after = model.reverse(latent)
    assert not torch.allclose(damped, exact)
    assert torch.equal(seen["x"], exact) and torch.equal(after, exact)
    x = torch.linspace(-20, 20, 401)
    y = LADDER[-1].soft_clamp(x)
    assert torch.equal(y[x.abs() <= LADDER[-1].knee], x[x.abs() <= LADDER[-1].knee])
    assert y.abs().max() < LADDER[-1].limit and bool((y[1:] >= y[:-1]).all())
    assert np.isfinite(LADDER[0].min_raw)


def test_damp_from_decodes_damped_at_once_and_reports(model):
    """The drag hint of explorer.engine: ``damp_from`` a level the exact pass blew up at gives a
    picture with no blown region, finite and within range, the same as the full check gives when
    the hint is right; ``report`` says where the decoding was damped from."""
    latent = model.encode(gradient_images(4, seed=12))
    hinted_any = 0
    for amount in (-40.0, 40.0):  # far enough that a level of this small model blows up
        edited = edit(model, latent, {"left_bright": amount})
        for i in range(edited.batch_size):
            one = edited[i]
            with torch.inference_mode():
                report = {}
                full = stable_reverse(model, one, report=report)
                assert set(report) == {"damped_from", "trouble", "hinted"} and not report["hinted"]
                if report["damped_from"] is None:
                    continue
                hinted_report = {}
                hinted = stable_reverse(model, one, damp_from=report["damped_from"], report=hinted_report)
            assert hinted_report["hinted"] and hinted_report["damped_from"] == report["damped_from"]
            assert torch.isfinite(hinted).all() and hinted.abs().max() <= BLOWN_THRESHOLD
            def at_limit(x):
                return float((x.abs() >= BLOWN_THRESHOLD - 1e-6).any(1).float().mean())

            assert at_limit(hinted) <= at_limit(full) + 0.01  # no more saturated than the full check
            if report["trouble"] is not None and report["trouble"][0] == report["damped_from"]:
                assert torch.equal(hinted, full)  # the hint was right: the same picture
            hinted_any += 1
    assert hinted_any >= 2


def test_damp_from_on_an_in_range_face_is_never_blown(model):
    """A stale hint (the face is back in range): the picture is damped, not exact, but finite,
    in range and close to the exact decoding; without the hint it is exact."""
    latent = model.encode(gradient_images(1, seed=13))
    with torch.inference_mode():
        exact = model.reverse(latent)
        assert torch.equal(stable_reverse(model, latent), exact)
        for level in range(len(latent.levels)):
            x = stable_reverse(model, latent, damp_from=level)
            assert torch.isfinite(x).all() and x.abs().max() <= BLOWN_THRESHOLD
            assert float((x - exact).abs().mean()) < 0.1


def test_a_level_out_of_range_above_the_hint_is_decided_the_general_way(model):
    """``damp_from`` below a level that blows up: that level starts the damping, as without it."""
    hot = model.sample_latent(2, 50.0, seed=1)  # the top level of this model blows up
    with torch.inference_mode():
        for i in range(2):
            report = {}
            full = stable_reverse(model, hot[i], report=report)
            assert report["trouble"] is not None and report["trouble"][0] == len(hot.levels) - 1
            hinted_report = {}
            hinted = stable_reverse(model, hot[i], damp_from=0, report=hinted_report)
            assert torch.equal(hinted, full) and not hinted_report["hinted"]


def test_one_face_takes_the_same_decisions_as_the_general_way(model, monkeypatch):
    """One face goes through ``stable._one`` (less bookkeeping): the same picture, bit for bit,
    and the same report as the general way, with and without a hint, for faces in range, far
    edits (a level blows up), hot samples (the top level blows up; only the image blows up) and
    stale hints."""
    from glowcore.decoding import stable

    latent = model.encode(gradient_images(3, seed=14))
    cases = [latent[0]]
    for amount in (-40.0, -12.0, 12.0, 40.0):
        cases += [edit(model, latent, {"left_bright": amount})[i] for i in range(3)]
    hot = model.sample_latent(6, 3.0, seed=2)
    cases += [hot[i] for i in range(6)] + [model.sample_latent(1, 50.0, seed=1)]
    # at T=4 (this model, seed 3): a few stray blown pixels after a level out of range (0), with
    # every level in range (2), more of them (1), a level out of range and nothing blown (12)
    hotter = model.sample_latent(32, 4.0, seed=3)
    cases += [hotter[i] for i in (0, 1, 2, 12)]
    kinds = set()
    with torch.inference_mode():
        for one in cases:
            for hint in (None, *range(len(one.levels))):
                got_report, want_report = {}, {}
                got = stable_reverse(model, one, damp_from=hint, report=got_report)
                monkeypatch.setattr(stable, "_one_face", False)
                want = stable_reverse(model, one, damp_from=hint, report=want_report)
                monkeypatch.setattr(stable, "_one_face", True)
                assert torch.equal(got, want) and got_report == want_report, (hint, got_report, want_report)
                if hint is None:
                    blown_image = want_report["damped_from"] is None and not torch.equal(want, model.reverse(one))
                    kinds.add("in range" if want_report["damped_from"] is None and not blown_image else "image" if blown_image else "levels")
    assert kinds == {"in range", "image", "levels"}, kinds


def test_soft_clamp_needs_no_hard_clamp_first():
    """``AffineCoupling.uncouple`` under a damping soft-clamps without clamping to
    ``max_abs_activation`` first: the same values, bit for bit, for every rung of the ladder,
    from 0 to beyond the bound, infinities included (after ``nan_to_num``)."""
    from glowcore.nn.coupling import AffineCoupling

    bound = AffineCoupling.max_abs_activation
    x = torch.cat([torch.linspace(-3 * bound, 3 * bound, 600_001), torch.logspace(-8, 30, 2001), -torch.logspace(-8, 30, 2001)])
    x = torch.cat([x, torch.tensor([float("inf"), float("-inf"), float("nan"), bound, -bound, 0.0])])
    x = torch.nan_to_num(x, nan=0.0, posinf=bound, neginf=-bound)
    for damping in LADDER:
        assert torch.equal(damping.soft_clamp(x), damping.soft_clamp(x.clamp(-bound, bound)))


def test_hint_holds_says_whether_the_hinted_picture_is_the_full_checks(model):
    """``hint_holds`` (the exact levels down to the hint only): True where the exact pass blows up
    at the hinted level, and then the hinted picture is the full check's; False for a face in
    range (the hinted picture is damped there, not the exact one)."""
    from glowcore.decoding.stable import hint_holds

    latent = model.encode(gradient_images(4, seed=12))
    held = 0
    with torch.inference_mode():
        for amount in (-40.0, 40.0):
            edited = edit(model, latent, {"left_bright": amount})
            for i in range(edited.batch_size):
                report = {}
                full = stable_reverse(model, edited[i], report=report)
                if report["trouble"] is None or report["trouble"][0] == 0:
                    continue
                level = report["trouble"][0]
                assert hint_holds(model, edited[i], level)
                assert torch.equal(stable_reverse(model, edited[i], damp_from=level), full)
                held += 1
        assert held >= 2
        one = latent[0]  # in range: the hint is stale at every level
        for level in range(1, len(one.levels)):
            assert not hint_holds(model, one, level)
            assert not torch.equal(stable_reverse(model, one, damp_from=level), stable_reverse(model, one))
        assert not hint_holds(model, one, 0)
