"""Far latents of the bundled model (edits at and beyond the sliders' ends, stacked, made without
the directions' bounds, so that the latents are as far out as an unbounded edit takes them;
temperature at and beyond the slider's maximum): the decoding never shows a blown-up region, and
the repair stays one pass (no whole-image re-decodes: the costliest level is decoded once)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import glowcore
from glowcore.decoding import compiled, stable
from glowcore.ops import directions


@pytest.fixture(scope="module")
def model():
    return glowcore.load_model(device="cpu")


#: At most this share of pixels at the decoder's limit for latents beyond the sliders' reach
#: (stacked amount 5, 2.5x the slider's end, unbounded): stray pixels inside a region the edit
#: itself has already saturated. Over seeds 0-19 the bundled model leaves 0.32-1.59% there (mean
#: 0.69%), never a 3x3 blotch; for the other cases here (stacked amount 2, Eyeglasses 2, T=1.5)
#: at most 0.34%, under ACCEPT_FRACTION (0.5%), which the test keeps for them.
BEYOND_REACH_FRACTION = 0.02


def far_latents(model):
    """``{name: (latent, allowed share of pixels at the limit)}``."""
    out = {}
    for seed in (0, 3):
        base = model.sample_latent(1, 0.7, seed=seed)
        for a in (2.0, 5.0):
            out[f"seed {seed}, Smiling+Male+Eyeglasses {a}"] = (
                directions.edit(model, base, {"Smiling": a, "Male": a, "Eyeglasses": a}, bounded=False),
                stable.ACCEPT_FRACTION if a <= 2.0 else BEYOND_REACH_FRACTION,
            )
        out[f"seed {seed}, Eyeglasses 2"] = (directions.edit(model, base, {"Eyeglasses": 2.0}, bounded=False), stable.ACCEPT_FRACTION)
        # isotropic at the top even for a model with a fitted sampling prior: with one (session 11's
        # trial), T=1.5 samples stayed near enough to the faces that the exact pass did not blow up
        out[f"seed {seed}, T=1.5"] = (model.sample_latent(1, 1.5, seed=seed, fitted_prior=False), stable.ACCEPT_FRACTION)
    return out


@pytest.mark.parametrize("fast", [False, True])
def test_far_edits_decode_without_blown_regions(model, fast):
    with torch.inference_mode():
        for name, (lat, allowed) in far_latents(model).items():
            with glowcore.base.modes.fast_networks(fast):
                raw = model.reverse(lat)
                x = stable.stable_reverse(model, lat)
            assert float(stable.blown_pixels(raw).float().mean()) > 0.3, name  # the exact pass blows up
            assert torch.isfinite(x).all(), name
            at_limit = (x.abs() >= stable.BLOWN_THRESHOLD - 1e-6).any(1, keepdim=True).float()
            assert float(at_limit.mean()) <= allowed, name  # a few stray pixels at most
            assert float(F.avg_pool2d(at_limit, 3, stride=1).max()) < 1.0, name  # no 3x3 saturated blotch
            img = model.decode(lat, fast=fast)
            assert torch.isfinite(img).all() and img.min() >= 0 and img.max() <= 1


def test_far_edits_are_repaired_in_one_pass(model, monkeypatch):
    calls: list[int] = []
    real = model.reverse_level
    monkeypatch.setattr(model, "reverse_level", lambda i, h, eps: calls.append(i) or real(i, h, eps))
    n = model.config.levels
    was = compiled.enabled()
    compiled.set_enabled(False)  # every level through reverse_level, to count them
    try:
        with torch.inference_mode():
            plain = model.sample_latent(1, 0.7, seed=0)
            model.decode(plain)
            assert calls == list(range(n - 1, -1, -1))
            for name, (lat, _) in far_latents(model).items():
                calls.clear()
                model.decode(lat)
                assert calls.count(0) == 1, name  # the 64x64 level, 40% of a decode: once
                assert len(calls) <= n + 3, (name, calls)  # at most the three small levels twice
    finally:
        compiled.set_enabled(was)
