"""The multi-scale Glow: exactness, log-likelihood accounting, sampling, shapes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import Tensor

from glowcore import Glow, GlowConfig, Latent, to_uint8
from glowcore.nn.coupling import ZeroConv2d


def perturbed(model: Glow, scale: float = 0.05, seed: int = 0) -> Glow:
    """Give the zero-initialised convolutions and priors non-trivial weights, so the model is far
    from the identity (as after training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ZeroConv2d):
                m.conv.weight.normal_(0, scale, generator=g)
                m.conv.bias.normal_(0, scale, generator=g)
        for level in model.levels:
            for p in level.prior.parameters():
                p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


def tiny(**kw) -> Glow:
    cfg = dict(image_size=8, channels=1, levels=2, steps=2, hidden=8, n_bits=5)
    cfg.update(kw)
    torch.manual_seed(0)
    model = Glow(GlowConfig(**cfg))
    model.initialize(torch.rand(16, cfg["channels"], cfg["image_size"], cfg["image_size"]))
    return perturbed(model)


CONFIGS = [
    dict(coupling=c, lu=lu, levels=lv, channels=ch)
    for c, lu, lv, ch in itertools.product(["affine", "additive"], [True, False], [1, 2], [1, 3])
] + [dict(coupling=c, lu=True, levels=2, channels=3, prior_hidden=4) for c in ("affine", "additive")]


def _ids(cfg: dict) -> str:
    prior = f"-P{cfg['prior_hidden']}" if cfg.get("prior_hidden") else ""
    return f"{cfg['coupling']}-{'lu' if cfg['lu'] else 'plain'}-L{cfg['levels']}-C{cfg['channels']}{prior}"


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_whole_model_logdet_matches_autograd_jacobian(cfg: dict) -> None:
    model = tiny(image_size=4, hidden=6, **cfg).double().train()
    x = torch.rand(2, cfg["channels"], 4, 4, dtype=torch.float64) - 0.5
    latent, logdet = model(x)
    assert logdet.shape == (2,)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0))[0].flatten()[0], x[i])
        jac = jac.reshape(x[i].numel(), x[i].numel())
        assert torch.allclose(torch.linalg.slogdet(jac)[1], logdet[i], atol=1e-8)
    back = model.reverse(latent)
    assert torch.allclose(back, x, atol=1e-10)
    # reverse Jacobian cancels the forward one
    for i in range(2):
        lat_i = latent[i].flatten()[0]
        jac_r = torch.autograd.functional.jacobian(
            lambda v: model.reverse(Latent.from_flat(v, model.latent_shapes)).flatten(), lat_i.detach()
        )
        assert torch.allclose(torch.linalg.slogdet(jac_r)[1], -logdet[i], atol=1e-8)


def test_latent_holds_every_level_and_has_the_data_dimension() -> None:
    model = tiny(image_size=16, channels=3, levels=3)
    latent = model.encode(torch.rand(2, 3, 16, 16))
    assert len(latent.levels) == 3
    assert latent.shapes == model.latent_shapes == ((6, 8, 8), (12, 4, 4), (48, 2, 2))
    assert latent.flatten().shape == (2, 3 * 16 * 16)
    again = Latent.from_flat(latent.flatten(), latent.shapes)
    assert all(torch.equal(a, b) for a, b in zip(again.levels, latent.levels))


def test_every_parameter_receives_a_gradient() -> None:
    model = tiny(image_size=8, channels=3).train()
    model.zero_grad()
    model.bits_per_dim(torch.rand(4, 3, 8, 8)).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_train_and_eval_give_the_same_log_prob_after_initialization() -> None:
    model = tiny(image_size=8, channels=3)
    x = torch.rand(4, 3, 8, 8)
    lp_train = model.train().log_prob(x, generator=torch.Generator().manual_seed(1))
    lp_eval = model.eval().log_prob(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(lp_train, lp_eval, atol=1e-4)


def test_encode_decode_round_trip_64x64_float32() -> None:
    torch.manual_seed(0)
    model = Glow(GlowConfig(image_size=64, levels=4, steps=2, hidden=32))
    faces = torch.rand(4, 3, 64, 64)
    model.initialize(faces)
    perturbed(model, 0.02).eval()
    latent = model.encode(faces)
    assert latent.flatten().std() > 0.1  # a real, non-trivial transform
    back = model.decode(latent)
    assert back.dtype == torch.float32
    assert (back - faces).abs().max().item() < 1e-4
    # uint8 numpy in, same round trip
    arr = to_uint8(faces)
    assert np.array_equal(model.decode_uint8(model.encode(arr)), arr)


def test_encoding_is_deterministic() -> None:
    model = tiny(channels=3).eval()
    x = torch.rand(2, 3, 8, 8)
    a, b = model.encode(x), model.encode(x)
    assert all(torch.equal(u, v) for u, v in zip(a.levels, b.levels))


def test_sampling_is_reproducible_with_a_seed_and_temperature_scales_every_level() -> None:
    model = tiny(channels=3).eval()
    a = model.sample(3, temperature=0.7, seed=42)
    b = model.sample(3, temperature=0.7, seed=42)
    c = model.sample(3, temperature=0.7, seed=43)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    hot, cold = model.sample_latent(1, 1.0, seed=5), model.sample_latent(1, 0.5, seed=5)
    for h, c_ in zip(hot.levels, cold.levels):
        assert torch.allclose(c_, 0.5 * h)
    zero = model.sample_latent(2, 0.0, seed=1)
    assert all(torch.count_nonzero(t) == 0 for t in zero.levels)


@pytest.mark.parametrize("n_bits", [1, 3, 8])
def test_bits_per_dim_accounting_matches_the_probability_mass(n_bits: int) -> None:
    """Summed over every possible image, the discrete probabilities must add up to the continuous
    density's mass on [-0.5, 0.5]^D. Using 256 bins instead of 2**n_bits (a known mistake in
    public Glow code) breaks this by a factor 2**((8 - n_bits) D)."""
    model = tiny(image_size=2, channels=1, levels=1, steps=1, hidden=4, n_bits=1).eval()
    model.config = GlowConfig(**{**model.config.to_dict(), "n_bits": n_bits})
    d = model.dim
    bins = 2**n_bits
    if bins**d > 5000:  # enumerate a subset of bins uniformly at random, then rescale
        idx = torch.randint(0, bins, (4000, d), generator=torch.Generator().manual_seed(0))
        weight = bins**d / 4000
    else:
        idx = torch.tensor(list(itertools.product(range(bins), repeat=d)))
        weight = 1.0
    u8 = (idx * 2 ** (8 - n_bits)).to(torch.uint8).view(-1, 1, 2, 2)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        probs = torch.stack([model.log_prob(u8, generator=gen).exp() for _ in range(64)]).mean(0)
        total = probs.sum().item() * weight
        cube = torch.rand(200_000, 1, 2, 2, generator=gen) - 0.5
        mass = model.log_density(cube).exp().mean().item()
    assert total == pytest.approx(mass, rel=0.1)
    bpd = model.bits_per_dim(u8[:4], generator=torch.Generator().manual_seed(2))
    lp = model.log_prob(u8[:4], generator=torch.Generator().manual_seed(2))
    assert torch.allclose(bpd, -lp / (d * math.log(2)))


def test_bits_per_dim_of_uniform_noise_is_about_n_bits_under_a_flat_model() -> None:
    # Fair random bits hold exactly 1 bit/dim: no model can code them in less on average (cross-
    # entropy >= entropy, and the dequantised bound is >= the discrete one), and the uniform model
    # on [-0.5, 0.5]^D needs exactly 1. This near-identity flow pays a little more (measured 1.38-1.41
    # over data and noise seeds); a wrong bin count or log base leaves [1, 2] (256 bins: +7; no
    # D log(2**n_bits) term: -1; nats: x0.69).
    model = tiny(image_size=8, channels=1, n_bits=1).eval()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 1, 8, 8, generator=g) > 0.5).float()
    bpd = model.bits_per_dim(x, generator=g).mean().item()
    assert 1.0 < bpd < 2.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=60, levels=4), "multiple of 2\\*\\*levels"),
        (dict(image_size=8, levels=4), "cannot be halved"),
        (dict(channels=0), "channels must be >= 1"),
        (dict(levels=0), "levels must be >= 1"),
        (dict(steps=0), "steps must be >= 1"),
        (dict(n_bits=9), "n_bits must be between 1 and 8"),
        (dict(coupling="spline"), "coupling must be one of"),
        (dict(hidden=2.5), "hidden must be an integer"),
    ],
)
def test_bad_configs_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GlowConfig(**kwargs)


def test_bad_input_shapes_raise_clear_errors() -> None:
    model = tiny(channels=3)
    with pytest.raises(ValueError, match=r"expected images of shape \(batch, 3, 8, 8\)"):
        model(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="expected 3 channel"):
        model.encode(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="do not match this model"):
        model.reverse(Latent([torch.zeros(1, 2, 2, 2)]))


def test_latent_arithmetic_acts_on_every_level() -> None:
    model = tiny(channels=3)
    a = model.sample_latent(2, 1.0, seed=1)
    b = model.sample_latent(2, 1.0, seed=2)
    mix = 0.25 * a + b * 0.75
    for x, y, m in zip(a.levels, b.levels, mix.levels):
        assert torch.allclose(m, 0.25 * x + 0.75 * y)
    assert torch.allclose((a - a).flatten(), torch.zeros_like(a.flatten()))
    assert Latent.cat([a, b]).batch_size == 4
    assert a[1].batch_size == 1 and torch.equal(a[1].flatten()[0], a.flatten()[1])
    mask = a.level_mask([-1])
    assert torch.count_nonzero(mask.levels[0]) == 0 and torch.all(mask.levels[-1] == 1)


def test_initialized_reports_actnorm_state() -> None:
    model = Glow(GlowConfig(image_size=8, channels=1, levels=2, steps=1, hidden=4))
    assert not model.initialized
    model.initialize(torch.rand(8, 1, 8, 8))
    assert model.initialized


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_keeps_the_flow_exact_and_logdets_float32(dtype: torch.dtype) -> None:
    model = tiny(image_size=8, channels=3).train()
    x = torch.rand(2, 3, 8, 8) - 0.5
    with torch.autocast("cpu", dtype=dtype):
        latent, logdet = model(x)
        back = model.reverse(latent)
        loss = model.bits_per_dim(x + 0.5).mean()
    assert logdet.dtype == torch.float32 and all(t.dtype == torch.float32 for t in latent.levels)
    # The low-precision networks are the same function both ways: nearly every pixel comes back to
    # float32 round-off. Where float32 round-off moves a network input across a rounding boundary of
    # `dtype`, that pixel's shift/scale differ by about one unit in the last place of a network
    # output (|s|, |t| below ~1: at most eps/2); measured over 40 inputs, 1.1e-4 (float16) and
    # 3.5e-4 (bfloat16) on AMD Zen, 4.1e-5 seen on Intel AVX512-FP16. Running the networks at another
    # precision on the way back puts most pixels off (76% or more beyond 1e-5 over the 40 inputs; on
    # this input a median error of 3.2e-5 (float16), 2.7e-4 (bfloat16)): the median catches it.
    err = (back - x).abs()
    assert err.median() < 1e-5 and err.max() < torch.finfo(dtype).eps / 2
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    _, logdet32 = model(x)
    assert torch.allclose(logdet, logdet32, rtol=1e-2)


def test_absurd_levels_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="levels must be at most 16"):
        GlowConfig(levels=10**12)


def test_fast_decoding_runs_bf16_networks_close_to_the_exact_decoding() -> None:
    import threading

    from glowcore.base import modes
    from glowcore.nn import coupling

    model = tiny(image_size=32, channels=3, levels=2, steps=2, hidden=32).eval()  # 16x16 and 8x8 levels
    z = model.sample_latent(4, 0.7, seed=1)
    exact = model.decode(z)
    fast = model.decode(z, fast=True)
    diff = (fast - exact).abs()
    assert 0 < diff.max() < 0.02  # the bf16 path ran, and its pixels stay close
    # levels smaller than FAST_MIN_PIXELS keep float32 networks (faster there): all-small is exact
    small = tiny(image_size=16, channels=3, levels=2, steps=2, hidden=32).eval()
    assert torch.equal(small.decode(z_small := small.sample_latent(2, 0.7, seed=1), fast=True), small.decode(z_small))
    assert torch.equal(model.decode(z), exact)  # the switch is off again after the call
    # only this thread: another thread decoding meanwhile stays exact
    seen: list[Tensor] = []
    with modes.fast_networks():
        t = threading.Thread(target=lambda: seen.append(model.decode(z)))
        t.start()
        t.join()
    assert torch.equal(seen[0], exact)
    # never with autograd (training, latent optimisation): decode_tensor stays exact
    with modes.fast_networks():
        assert torch.allclose(model.decode_tensor(z), exact, atol=1e-6)
    # the plain-convolution fallback (no oneDNN packed op) computes the same bf16 networks
    model.train().eval()  # drop the eval caches (the packed weights)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coupling, "_packed_conv_available", lambda: False)
        fallback = model.decode(z, fast=True)
    model.train().eval()
    assert 0 < (fallback - exact).abs().max() < 0.02
    assert (fallback - fast).abs().max() < 0.01


def test_read_only_images_are_copied_not_warned_about() -> None:
    import warnings

    from glowcore import to_tensor

    arr = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    ro = arr.copy()
    ro.flags.writeable = False  # like a memory-mapped data set
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = to_tensor(ro, 3)
    assert torch.equal(t, to_tensor(arr, 3))


def test_prior_networks_grow_a_trained_model_without_changing_what_it_computes() -> None:
    model = tiny(channels=3).eval()
    grown = model.with_prior_networks(6).eval()
    assert (model.config.prior_hidden, grown.config.prior_hidden) == (0, 6)
    assert grown.num_parameters() > model.num_parameters() and "prior networks 6 wide" in grown.describe()
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(grown.log_prob(x, noise=False), model.log_prob(x, noise=False), rtol=0, atol=0)
        latent = model.encode(x)
        torch.testing.assert_close(grown.decode(latent), model.decode(latent), rtol=0, atol=0)
    # the new networks learn: a gradient reaches their zero-initialised output
    grown.train()
    (-grown.log_prob(x).mean()).backward()
    assert grown.levels[0].prior.net.out.conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="already have networks"):
        grown.with_prior_networks(4)
    # the paper's priors keep the config as earlier versions wrote it
    assert "prior_hidden" not in model.config.to_dict() and grown.config.to_dict()["prior_hidden"] == 6
    assert GlowConfig.from_dict(grown.config.to_dict()) == grown.config
    with pytest.raises(ValueError, match="prior_hidden must be >= 0"):
        GlowConfig(prior_hidden=-1)
