"""Per-level temperature: coarse levels (pose, identity) and fine ones (texture) set apart."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from glowcore import Glow, GlowConfig
from glowcore.cli.main import main


@pytest.fixture(scope="module")
def model() -> Glow:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=16, channels=3, levels=4, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5))
    m.initialize(torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8))
    return m.eval()


def test_one_temperature_draws_what_it_always_drew(model: Glow) -> None:
    gen = torch.Generator().manual_seed(5)
    expect = [torch.randn((2, *s), generator=gen) * 0.7 for s in model.latent_shapes]
    got = model.sample_latent(2, 0.7, seed=5)
    for a, b in zip(got.levels, expect):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_detail_temperature_scales_only_the_finest_levels(model: Glow) -> None:
    assert model.detail_levels == 2
    plain = model.sample_latent(1, 1.0, seed=3)
    mixed = model.sample_latent(1, 0.9, seed=3, detail_temperature=0.5)
    per_level = model.sample_latent(1, [0.5, 0.5, 0.9, 0.9], seed=3)
    for i, (p, m, q) in enumerate(zip(plain.levels, mixed.levels, per_level.levels)):
        torch.testing.assert_close(m, p * (0.5 if i < 2 else 0.9))
        torch.testing.assert_close(q, m, rtol=0, atol=0)


def test_zero_detail_gives_the_same_picture_for_seeds_that_share_coarse_noise(model: Glow) -> None:
    a = model.sample(1, 0.8, seed=11, detail_temperature=0.0, detail_seed=1)
    b = model.sample(1, 0.8, seed=11, detail_temperature=0.0, detail_seed=2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # with detail noise the two differ, and only in their fine levels
    la = model.sample_latent(1, 0.8, seed=11, detail_temperature=0.6, detail_seed=1)
    lb = model.sample_latent(1, 0.8, seed=11, detail_temperature=0.6, detail_seed=2)
    assert not torch.equal(la.levels[0], lb.levels[0])
    torch.testing.assert_close(la.levels[-1], lb.levels[-1], rtol=0, atol=0)
    assert not torch.equal(model.decode(la), model.decode(lb))


@pytest.mark.parametrize("kw, message", [
    ({"temperature": float("nan")}, "finite number >= 0"),
    ({"temperature": -0.1}, "finite number >= 0"),
    ({"temperature": 0.7, "detail_temperature": float("inf")}, "finite number >= 0"),
    ({"temperature": [0.5, 0.7]}, "one temperature per level \\(4, finest first\\), got 2"),
])
def test_bad_temperatures_are_refused(model: Glow, kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model.sample_latent(1, seed=0, **kw)


def test_cli_detail_temperature(tmp_path: Path, model: Glow, capsys) -> None:
    from glowcore import save_model

    save_model(model, tmp_path / "m")
    out = tmp_path / "grid.png"
    assert main(["sample", "--model", str(tmp_path / "m"), "-n", "3", "-t", "0.9", "--detail-t", "0.4", "-o", str(out)]) == 0
    assert "finest 2 level(s) at 0.4" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.size == (3 * 18 + 2, 18 + 2)
    assert main(["sample", "--model", str(tmp_path / "m"), "-t", "0.9", "--detail-t", "nan", "-o", str(tmp_path / "x.png")]) != 0
    assert "--detail-t must be a finite number" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
