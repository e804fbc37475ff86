"""A direction's ``bounds``: edits move each face toward them and never past them, exactly as
before well inside them, and the bounds travel with the model (``glowcore.ops.editing``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from glowcore import Glow, GlowConfig, load_model, save_model
from glowcore.ops.directions import add_directions, edit
from glowcore.ops.editing import BOUND_KNEE, project


@pytest.fixture
def model() -> Glow:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=3, levels=2, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5))
    add_directions(m, {"Glasses": torch.randn(m.dim) * 0.2}, {"Glasses": {"scale": 2.0, "scale_neg": 1.0, "bounds": [None, 1.0]}})
    return m.eval()


def coord(model: Glow, z) -> np.ndarray:
    return project(model, z, ["Glasses"])["Glasses"]


def test_edits_never_pass_the_bound_and_are_exact_well_inside(model: Glow) -> None:
    z = model.sample_latent(6, 0.7, seed=1)
    c0 = coord(model, z)
    assert (c0 < 0.5).all()  # the faces start well inside the bound
    for a in (0.1, 0.5, 1.0, 2.0, 5.0, 50.0):
        c = coord(model, edit(model, z, {"Glasses": a}))
        assert (c <= 1.0 + 1e-6).all(), a  # never past it, however far the slider goes
        assert (c > c0).all(), a  # and always toward it
        inside = c0 + a <= BOUND_KNEE * 1.0
        np.testing.assert_allclose(c[inside], (c0 + a)[inside], atol=1e-4)  # below the knee: the plain edit
    far = coord(model, edit(model, z, {"Glasses": 50.0}))
    np.testing.assert_allclose(far, 1.0, atol=1e-3)  # far out, every face ends at the bound
    # moves grow with the amount (the slider is never dead short of the bound)
    c1, c2 = coord(model, edit(model, z, {"Glasses": 0.8})), coord(model, edit(model, z, {"Glasses": 0.9}))
    assert (c2 > c1).all()


def test_the_unbounded_side_and_unbounded_edits_are_unchanged(model: Glow) -> None:
    z = model.sample_latent(3, 0.7, seed=2)
    v = model.directions["Glasses"]
    down = edit(model, z, {"Glasses": -5.0}).flatten() - z.flatten()  # no low bound: the plain edit
    torch.testing.assert_close(down, (-5.0 * 1.0 * v)[None].expand(3, -1), rtol=1e-4, atol=1e-4)
    up = edit(model, z, {"Glasses": 5.0}, bounded=False).flatten() - z.flatten()
    torch.testing.assert_close(up, (5.0 * 2.0 * v)[None].expand(3, -1), rtol=1e-4, atol=1e-4)
    assert torch.equal(edit(model, z, {"Glasses": 0.0}).flatten(), z.flatten())


def test_a_face_already_beyond_the_bound_does_not_move_further_out(model: Glow) -> None:
    z = model.sample_latent(1, 0.7, seed=3)
    out = edit(model, z, {"Glasses": 3.0}, bounded=False)  # past the bound
    c = coord(model, out)[0]
    assert c > 1.0
    assert coord(model, edit(model, out, {"Glasses": 2.0}))[0] == pytest.approx(c, abs=1e-6)
    back = coord(model, edit(model, out, {"Glasses": -0.5}))[0]
    assert c - 0.5 - 1e-4 <= back < c  # removal still works, by at most the amount


def test_per_item_amounts_and_a_low_bound(model: Glow) -> None:
    model.direction_info["Glasses"]["bounds"] = [-0.5, 1.0]
    z = model.sample_latent(1, 0.7, seed=4)
    c0 = coord(model, z)[0]
    out = coord(model, edit(model, z, {"Glasses": [-10.0, -0.01, 0.0, 10.0]}))
    assert out[0] == pytest.approx(-0.5, abs=1e-3) and out[3] == pytest.approx(1.0, abs=1e-3)
    assert out[1] == pytest.approx(c0 - 0.005, abs=1e-5)  # (at scale_neg / scale) and out[2] == pytest.approx(c0, abs=1e-6)


def test_bounds_travel_with_the_model_and_bad_ones_are_refused(model: Glow, tmp_path: Path) -> None:
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m", device="cpu")
    assert again.direction_info["Glasses"]["bounds"] == [None, 1.0]
    z = model.sample_latent(2, 0.7, seed=5)
    np.testing.assert_allclose(coord(again, edit(again, z, {"Glasses": 9.0})), 1.0, atol=1e-3)
    for bad in ([0.5, 1.0], [None, -1.0], [None, float("nan")], "wide", [None, None, 1.0]):
        with pytest.raises(ValueError, match="bounds"):
            add_directions(model, {"Other": torch.randn(model.dim)}, {"Other": {"bounds": bad}})


def test_a_slider_reaches_its_range_else_two_or_three_for_principal_directions() -> None:
    """``slider_limit`` (the window's and the benchmarks' slider ends), which bounds do not change."""
    from glowcore.ops.editing import direction_group, slider_limit

    assert slider_limit("Smiling", {}) == 2.0 and slider_limit("pc3", {}) == 3.0
    assert slider_limit("Mine", {"kind": "principal"}) == 3.0 and direction_group("Mine", {"kind": "principal"}) == "principal"
    assert slider_limit("Eyeglasses", {"slider_range": [-1.5, 1.2]}) == 1.5
    assert slider_limit("Eyeglasses", {"range": 1.25, "bounds": [None, 0.8]}) == 1.25
    assert slider_limit("Eyeglasses", {"slider_range": [0.0, 0.0], "limit": float("nan")}) == 2.0  # unusable: the default
    assert direction_group("Eyeglasses", {}) == "attribute" and direction_group("Tagged", {"kind": "examples"}) == "custom"
