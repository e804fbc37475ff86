"""Variational dequantisation: a proper noise density, uniform at first, a tighter bound once trained."""

from __future__ import annotations

import math

import pytest
import torch

from glowcore import Glow, GlowConfig
from glowcore.nn.dequant import Dequantizer
from glowcore.nn.coupling import ZeroConv2d

from .test_model import tiny


def _randomized(dq: Dequantizer, scale: float = 0.3) -> Dequantizer:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in dq.modules():
            if isinstance(m, ZeroConv2d):
                m.conv.weight.normal_(0, scale, generator=g)
                m.conv.bias.normal_(0, scale, generator=g)
    return dq


def test_a_new_dequantizer_is_exactly_uniform_noise() -> None:
    dq = Dequantizer(channels=3, hidden=8)
    k = torch.randint(0, 32, (4, 3, 8, 8)).float() / 32 - 0.5
    eps = torch.randn(4, 3, 8, 8)
    u, log_q = dq(k, eps)
    assert torch.equal(u, torch.special.ndtr(eps))  # Phi(eps) is uniform on [0, 1]
    assert torch.equal(log_q, torch.zeros(4))


def test_log_q_is_the_density_of_u_checked_against_the_autograd_jacobian() -> None:
    torch.manual_seed(0)
    dq = _randomized(Dequantizer(channels=1, hidden=6)).double()
    k = torch.randint(0, 32, (2, 1, 4, 4)).double() / 32 - 0.5
    eps = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    u, log_q = dq(k, eps)
    assert u.shape == eps.shape and bool(((u > 0) & (u < 1)).all())
    assert not torch.allclose(u, torch.special.ndtr(eps))  # far from uniform
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda e: dq(k[i : i + 1], e.unsqueeze(0))[0].flatten(), eps[i])
        jac = jac.reshape(16, 16)
        # change of variables: q(u) = N(eps) / |det du/deps|
        log_n = -0.5 * (eps[i].square().sum() + 16 * math.log(2 * math.pi))
        expected = log_n - torch.linalg.slogdet(jac)[1]
        torch.testing.assert_close(log_q[i], expected, rtol=1e-9, atol=1e-9)


def test_growing_a_dequantizer_changes_nothing_until_it_is_trained() -> None:
    model = tiny(channels=3).eval()
    grown = model.with_dequantizer(6).eval()
    assert (model.config.dequant_hidden, grown.config.dequant_hidden) == (0, 6)
    assert "learned dequantisation 6 wide" in grown.describe()
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        # the bound with the new (uniform) noise is the model's log-density at k + Phi(eps)
        eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
        k = model.quantize(x)
        expected = model.log_density((k + torch.special.ndtr(eps)) / 32 - 0.5) - model.dim * math.log(32)
        torch.testing.assert_close(grown.log_prob(x, generator=torch.Generator().manual_seed(3)), expected, rtol=0, atol=0)
        # uniform noise, bin centres, encoding and decoding: untouched
        g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
        assert torch.equal(grown.log_prob(x, generator=g1, variational=False), model.log_prob(x, generator=g2))
        assert torch.equal(grown.log_prob(x, noise=False), model.log_prob(x, noise=False))
        latent = model.encode(x)
        assert torch.equal(grown.decode(latent), model.decode(latent))
    with pytest.raises(ValueError, match="already has a learned dequantiser"):
        grown.with_dequantizer(4)
    assert "dequant_hidden" not in model.config.to_dict() and grown.config.to_dict()["dequant_hidden"] == 6
    assert GlowConfig.from_dict(grown.config.to_dict()) == grown.config
    with pytest.raises(ValueError, match="dequant_hidden must be >= 0"):
        GlowConfig(dequant_hidden=-1)


def test_training_the_noise_alone_tightens_the_bound_below_uniform_noise() -> None:
    """With the flow frozen, fitting q(u | k) raises E[log p(k + u) - log q(u | k)] above the
    uniform-noise bound on the same images: the learned noise is worth having."""
    # one bit: two bins, across which the flow's density is far from flat
    model = tiny(channels=1, n_bits=1)
    x = torch.rand(64, 1, 8, 8)

    def bound(m: Glow, variational: bool) -> float:
        g = torch.Generator().manual_seed(123)
        with torch.no_grad():
            return float(torch.stack([m.bits_per_dim(x, generator=g, variational=variational) for _ in range(8)]).mean())

    grown = model.with_dequantizer(16)
    uniform = bound(grown, variational=False)
    assert bound(grown, variational=True) == pytest.approx(uniform, abs=0.01)  # starts uniform
    opt = torch.optim.Adam(grown.dequantizer.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        loss = grown.bits_per_dim(x, generator=g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    learned = bound(grown, variational=True)
    assert learned < uniform - 0.02, (learned, uniform)
    assert bound(grown, variational=False) == uniform  # the flow itself did not move

