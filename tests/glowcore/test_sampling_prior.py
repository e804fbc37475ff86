"""The fitted top-level sampling prior (glowcore.nn.priors.FittedNoise, Glow.sampling_prior): the
fit recovers a known Gaussian, samples follow it, only the top level changes, it is saved and
loaded with the model, and a broken one is refused in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glowcore import Glow, GlowConfig, load_model, save_model
from glowcore.io.checkpoint import CheckpointError
from glowcore.nn.priors import FittedNoise

ROOT = Path(__file__).resolve().parents[2]


def _known(n: int = 20000, d: int = 48, rank: int = 4, sigma: float = 0.5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(d, generator=g)
    basis = torch.linalg.qr(torch.randn(d, rank, generator=g))[0]
    factor = basis * torch.tensor([3.0, 2.0, 1.5, 1.0])[:rank]
    x = mean + torch.randn(n, rank, generator=g) @ factor.T + sigma * torch.randn(n, d, generator=g)
    return x, mean, factor, sigma


def test_the_fit_recovers_a_known_low_rank_gaussian() -> None:
    x, mean, factor, sigma = _known()
    fit = FittedNoise.fit(x, 4)
    assert fit.sigma == pytest.approx(sigma, rel=0.03)
    torch.testing.assert_close(fit.mean, mean, atol=0.05, rtol=0)
    want, got = factor @ factor.T, fit.factor @ fit.factor.T
    assert float(torch.linalg.norm(got - want) / torch.linalg.norm(want)) < 0.05


def test_samples_follow_the_fit_and_the_temperature_scales_their_spread() -> None:
    x, *_ = _known()
    fit = FittedNoise.fit(x, 4)
    g = torch.Generator().manual_seed(1)
    e, a = torch.randn(20000, 48, generator=g), torch.randn(20000, 4, generator=g)
    torch.testing.assert_close(fit.sample(e[:3], a[:3], 0.0), fit.mean.expand(3, 48))  # temperature 0: the mean
    s = fit.sample(e, a, 1.0)
    cov = fit.factor @ fit.factor.T + fit.sigma**2 * torch.eye(48)
    assert float(torch.linalg.norm(torch.cov(s.T) - cov) / torch.linalg.norm(cov)) < 0.05
    half = fit.sample(e, a, 0.5)
    torch.testing.assert_close(half - fit.mean, 0.5 * (s - fit.mean))
    # the density it reports is the Gaussian's
    ref = torch.distributions.MultivariateNormal(fit.mean.double(), covariance_matrix=cov.double())
    torch.testing.assert_close(fit.log_prob(x[:50]), ref.log_prob(x[:50].double()), rtol=1e-6, atol=1e-4)


def test_bad_fits_are_refused() -> None:
    with pytest.raises(ValueError, match="rank"):
        FittedNoise.fit(torch.randn(100, 8), 8)
    with pytest.raises(ValueError, match="more than rank"):
        FittedNoise.fit(torch.randn(3, 8), 4)
    with pytest.raises(ValueError, match="sigma"):
        FittedNoise(torch.zeros(8), torch.zeros(8, 2), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        FittedNoise(torch.zeros(8), torch.full((8, 2), float("inf")), 1.0)


@pytest.fixture()
def model() -> Glow:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=16, channels=3, levels=3, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5))
    m.initialize(torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8))
    top = int(np.prod(m.latent_shapes[-1]))
    x, *_ = _known(n=2000, d=top, seed=3)
    m.sampling_prior = FittedNoise.fit(x, 4)
    return m.eval()


def test_only_the_top_level_is_drawn_from_the_fit(model: Glow) -> None:
    fitted = model.sample_latent(64, 0.8, seed=9, detail_temperature=0.5)
    plain = model.sample_latent(64, 0.8, seed=9, detail_temperature=0.5, fitted_prior=False)
    for a, b in zip(fitted.levels[:-1], plain.levels[:-1]):
        assert torch.equal(a, b)  # a seed's other levels are what they were
    top = fitted.levels[-1].reshape(64, -1)
    assert float((top.mean(0) - model.sampling_prior.mean).abs().mean()) < 0.3 < float(plain.levels[-1].reshape(64, -1).mean(0).sub(model.sampling_prior.mean).abs().mean())
    assert torch.equal(model.sample_latent(2, 0.8, seed=9).levels[-1], model.sample_latent(2, 0.8, seed=9).levels[-1])  # reproducible
    assert torch.isfinite(model.sample(2, 0.8, seed=9)).all()


def test_glow_info_says_how_the_top_level_is_sampled(model: Glow, tmp_path: Path, capsys) -> None:
    from glowcore.cli.main import main

    save_model(model, tmp_path / "m")
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "top level from a Gaussian fitted to real faces (rank 4)" in capsys.readouterr().out
    model.sampling_prior = None
    save_model(model, tmp_path / "plain")
    assert main(["info", str(tmp_path / "plain")]) == 0
    assert "top level from N(0, I)" in capsys.readouterr().out


def test_it_is_saved_and_loaded_with_the_model(model: Glow, tmp_path: Path) -> None:
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu")
    assert back.sampling_prior is not None and back.sampling_prior.rank == 4
    assert "top level sampled from a fitted Gaussian (rank 4)" in back.describe()  # what glow info prints
    for a, b in zip(back.sample_latent(3, 0.7, seed=2).levels, model.sample_latent(3, 0.7, seed=2).levels):
        assert torch.equal(a, b)
    save_model(model, tmp_path / "one.safetensors")
    assert load_model(tmp_path / "one.safetensors", device="cpu").sampling_prior.sigma == pytest.approx(model.sampling_prior.sigma)
    model.sampling_prior = None
    save_model(model, tmp_path / "none")
    assert load_model(tmp_path / "none", device="cpu").sampling_prior is None
    assert "sampling_prior" not in json.loads((tmp_path / "none" / "config.json").read_text())


def _rewrite(folder: Path, edit) -> None:
    """Change a saved model's tensors and/or config and fix its checksum, as a tool might."""
    import hashlib

    from safetensors.torch import load_file, save

    cfg = json.loads((folder / "config.json").read_text())
    tensors = load_file(str(folder / "model.safetensors"))
    edit(cfg, tensors)
    data = save(tensors)
    (folder / "model.safetensors").write_bytes(data)
    cfg["weights"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("edit, message", [
    (lambda c, t: t.__setitem__("sampling_prior.factor", torch.full_like(t["sampling_prior.factor"], float("nan"))), "must be finite"),
    (lambda c, t: t.pop("sampling_prior.mean"), "needs its config entry and both tensors"),
    (lambda c, t: c.pop("sampling_prior"), "needs its config entry and both tensors"),
    (lambda c, t: c["sampling_prior"].__setitem__("sigma", "big"), "sigma must be a number"),
    (lambda c, t: c["sampling_prior"].__setitem__("sigma", 0.0), "sigma must be between"),
    (lambda c, t: t.__setitem__("sampling_prior.mean", torch.zeros(5)), "the top level has"),
])
def test_a_broken_prior_is_refused_naming_the_file(model: Glow, tmp_path: Path, edit, message: str) -> None:
    save_model(model, tmp_path / "m")
    _rewrite(tmp_path / "m", edit)
    with pytest.raises(CheckpointError, match=message) as e:
        load_model(tmp_path / "m", device="cpu")
    assert str(tmp_path / "m") in str(e.value)


def test_the_fitting_script_writes_a_model_with_the_prior_and_never_over_its_own(model: Glow, tmp_path: Path, capsys) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import fit_sampling_prior

    model.sampling_prior = None
    save_model(model, tmp_path / "m")
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(120):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(faces / f"{i:03d}.png")
    argv = [str(tmp_path / "m"), "--data", f"folder:{faces}", "--faces", "60", "--rank", "3", "--val-faces", "10"]
    assert fit_sampling_prior.main([*argv, "--out", str(tmp_path / "m2")]) == 0
    assert "rank 3" in capsys.readouterr().out
    m2 = load_model(tmp_path / "m2", device="cpu")
    assert m2.sampling_prior is not None and m2.sampling_prior.rank == 3
    assert m2.metadata["sampling_prior"]["fit_faces"] == 60
    with pytest.raises(SystemExit):
        fit_sampling_prior.main([*argv, "--out", str(tmp_path / "m")])
    assert load_model(tmp_path / "m", device="cpu").sampling_prior is None
