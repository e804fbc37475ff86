"""A direction's own scale for negative amounts (``scale_neg``): removal as reliable as addition."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glowcore import Glow, GlowConfig, load_model, save_model
from glowcore.ops.directions import add_directions, edit


@pytest.fixture
def model() -> Glow:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=3, levels=2, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5))
    return m.eval()


def test_negative_amounts_use_scale_neg(model: Glow, tmp_path: Path) -> None:
    v = torch.randn(model.dim)
    add_directions(model, {"Young": v}, {"Young": {"scale": 2.0, "scale_neg": 3.0}})
    z = model.sample_latent(1, 0.7, seed=0)
    up = edit(model, z, {"Young": 1.0}).flatten() - z.flatten()
    down = edit(model, z, {"Young": -0.5}).flatten() - z.flatten()
    torch.testing.assert_close(up[0], 2.0 * v, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(down[0], -1.5 * v, rtol=1e-5, atol=1e-5)
    # per-item amounts of both signs in one call
    both = edit(model, z, {"Young": [1.0, -1.0]}).flatten() - z.flatten()
    torch.testing.assert_close(both[1], -3.0 * v, rtol=1e-5, atol=1e-5)
    # it travels with the model
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m", device="cpu")
    assert again.direction_info["Young"]["scale_neg"] == 3.0
    torch.testing.assert_close(edit(again, z, {"Young": -1.0}).flatten() - z.flatten(), -3.0 * v[None], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "huge", True])
def test_bad_scale_neg_is_refused(model: Glow, bad) -> None:
    with pytest.raises(ValueError, match="scale_neg"):
        add_directions(model, {"Young": torch.randn(model.dim)}, {"Young": {"scale_neg": bad}})
