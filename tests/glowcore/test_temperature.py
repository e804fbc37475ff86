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


def test_without_t_the_commands_draw_the_measured_default_pair_and_with_t_one_temperature(tmp_path: Path, model: Glow, capsys) -> None:
    """`glow sample` and seed:N inputs: no -t gives DEFAULT_TEMPERATURE with the finest levels at
    DEFAULT_DETAIL_TEMPERATURE (what the explorer shows for a seed); -t T gives T everywhere."""
    import numpy as np

    from glowcore import save_model
    from glowcore.model import DEFAULT_DETAIL_TEMPERATURE, DEFAULT_TEMPERATURE
    from glowcore.io.grid import save_grid

    assert DEFAULT_DETAIL_TEMPERATURE != DEFAULT_TEMPERATURE  # else this test could not tell them apart
    save_model(model, tmp_path / "m")

    def grid(*args: str) -> np.ndarray:
        out = tmp_path / "g.png"
        assert main(["sample", "--model", str(tmp_path / "m"), "-n", "2", "--seed", "4", "-o", str(out), "--overwrite-input", *args]) == 0
        with Image.open(out) as im:
            return np.asarray(im.convert("RGB")).copy()

    def expect(detail) -> np.ndarray:
        save_grid(model.sample(2, DEFAULT_TEMPERATURE, seed=4, detail_temperature=detail), tmp_path / "e.png", ncol=2)
        with Image.open(tmp_path / "e.png") as im:
            return np.asarray(im.convert("RGB")).copy()

    assert np.array_equal(grid(), expect(DEFAULT_DETAIL_TEMPERATURE))
    assert f"finest 2 level(s) at {DEFAULT_DETAIL_TEMPERATURE:g}" in capsys.readouterr().out
    assert np.array_equal(grid("-t", str(DEFAULT_TEMPERATURE)), expect(None))
    assert "finest" not in capsys.readouterr().out
    assert np.array_equal(grid("--detail-t", "0.2"), expect(0.2))

    from glowcore.cli.commands._common import inputs_to_latent
    from glowcore.cli.commands._guard import sampling_temperatures

    t, d = sampling_temperatures(None, None)
    seed_face, _ = inputs_to_latent(model, ["seed:4"], temperature=t, detail_temperature=d)
    want = model.sample_latent(1, DEFAULT_TEMPERATURE, seed=4, detail_temperature=DEFAULT_DETAIL_TEMPERATURE)
    for a, b in zip(seed_face.levels, want.levels):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sampling_temperatures(0.9, None) == (0.9, None)
    with pytest.raises(ValueError, match="--detail-t"):
        sampling_temperatures(None, -1.0)
