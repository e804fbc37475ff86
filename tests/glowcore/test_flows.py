"""The flow-layer contract, checked for every layer in float64 on tiny inputs (nflows / zuko style):
exact inversion, log-determinants equal to autograd Jacobians, forward and reverse cancelling."""

from __future__ import annotations

import pytest
import torch

from glowcore.nn.actnorm import ActNorm
from glowcore.nn.coupling import AdditiveCoupling, AffineCoupling
from glowcore.nn.flows import FlowLayer
from glowcore.nn.invconv import InvConv1x1, InvConv1x1LU
from glowcore.nn.priors import SplitPrior, TopPrior
from glowcore.nn.squeeze import Squeeze
from glowcore.nn.step import FlowStep

C, H, W = 4, 4, 4


def _randomize(layer: torch.nn.Module, scale: float = 0.3) -> torch.nn.Module:
    """Move every parameter away from its (often identity) initialisation."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
        for m in layer.modules():
            if isinstance(m, ActNorm):
                m.initialized.fill_(1)
    return layer


LAYERS = {
    "actnorm": lambda: ActNorm(C),
    "invconv": lambda: InvConv1x1(C),
    "invconv_lu": lambda: InvConv1x1LU(C),
    "affine": lambda: AffineCoupling(C, 8),
    "additive": lambda: AdditiveCoupling(C, 8),
    "squeeze": lambda: Squeeze(),
    "step_affine_lu": lambda: FlowStep(C, 8, "affine", True),
    "step_affine_plain": lambda: FlowStep(C, 8, "affine", False),
    "step_additive_lu": lambda: FlowStep(C, 8, "additive", True),
    "split_prior": lambda: SplitPrior(C),
    "split_prior_net": lambda: SplitPrior(C, 8),
    "top_prior": lambda: TopPrior(C, H),
}


def make(name: str) -> FlowLayer:
    torch.manual_seed(0)
    layer = _randomize(LAYERS[name]()).double()
    return layer


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, C, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def _jacobian_logdet(fn, x_item: torch.Tensor) -> torch.Tensor:
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.unsqueeze(0)).reshape(-1), x_item)
    jac = jac.reshape(x_item.numel(), x_item.numel())
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign != 0
    return logabs


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_reverse_inverts_forward(name: str, mode: str) -> None:
    layer = make(name).train(mode == "train")
    x = _x()
    y, logdet = layer(x)
    assert logdet.shape == (2,)
    assert torch.isfinite(y).all() and torch.isfinite(logdet).all()
    assert torch.allclose(layer.reverse(y), x, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", list(LAYERS))
def test_logdet_matches_autograd_jacobian(name: str) -> None:
    layer = make(name).train()
    x = _x()
    _, logdet = layer(x)
    for i in range(x.shape[0]):
        expected = _jacobian_logdet(lambda v: layer(v)[0], x[i])
        assert torch.allclose(logdet[i], expected, atol=1e-8), (name, i, logdet[i].item(), expected.item())


@pytest.mark.parametrize("name", list(LAYERS))
def test_forward_and_reverse_logdets_cancel(name: str) -> None:
    layer = make(name).train()
    x = _x()
    y, logdet = layer(x)
    for i in range(x.shape[0]):
        reverse_ld = _jacobian_logdet(layer.reverse, y[i].detach())
        assert torch.allclose(reverse_ld, -logdet[i], atol=1e-8)


@pytest.mark.parametrize("name", ["invconv", "invconv_lu", "step_affine_lu", "step_affine_plain", "affine"])
def test_eval_cache_matches_train_and_follows_weight_changes(name: str) -> None:
    layer = make(name)
    x = _x()
    y_train, ld_train = layer.train()(x)
    layer.eval()
    y_eval, ld_eval = layer(x)
    assert torch.allclose(y_eval, y_train, atol=1e-12) and torch.allclose(ld_eval, ld_train, atol=1e-12)
    assert torch.allclose(layer.reverse(y_eval), x, atol=1e-10)
    # An in-place weight change (as an optimizer step or load_state_dict makes) invalidates the cache.
    with torch.no_grad():
        for p in layer.parameters():
            p.mul_(1.1)
    y2, _ = layer(x)
    assert not torch.allclose(y2, y_eval)
    assert torch.allclose(layer.reverse(y2), x, atol=1e-10)
    fresh_y, _ = layer.train()(x)
    assert torch.allclose(fresh_y, y2, atol=1e-12)


def test_inverse_is_cached_in_eval_mode_and_dropped_by_train() -> None:
    layer = make("invconv_lu").eval()
    first = layer.inverse_weight()
    assert layer.inverse_weight() is first
    layer.train()
    assert "_eval_cache" not in layer.__dict__
    layer.eval()
    assert layer.inverse_weight() is not first


def test_actnorm_initializes_once_from_data_and_flag_is_a_buffer() -> None:
    layer = ActNorm(3)
    assert "initialized" in dict(layer.named_buffers())
    x = torch.randn(64, 3, 5, 5) * torch.tensor([1.0, 3.0, 0.5]).view(1, 3, 1, 1) + 2.0
    y, _ = layer.train()(x)
    assert bool(layer.initialized)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(y.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)
    before = [p.clone() for p in layer.parameters()]
    layer(x * 5 + 1)  # a second batch must not re-initialize
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))


def test_eval_mode_keeps_input_gradients_for_optimizing_latents() -> None:
    layer = make("step_affine_lu").eval()
    y = _x().requires_grad_(True)
    with torch.inference_mode():
        layer.reverse(y.detach())  # builds the cache inside inference mode
    x = layer.reverse(y)
    x.square().sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_affine_reverse_never_emits_nan_or_inf_far_from_data() -> None:
    layer = make("affine").eval()
    with torch.no_grad():
        layer.net.out.conv.bias.fill_(-60.0)  # scale = sigmoid(-58): would divide by ~1e-25
    y = _x() * 1e3
    x = layer.reverse(y)
    assert torch.isfinite(x).all()
    assert x.abs().max() <= AffineCoupling.max_abs_activation


def test_coupling_rejects_odd_channels() -> None:
    with pytest.raises(ValueError, match="even number of channels"):
        AffineCoupling(3, 8)
    with pytest.raises(ValueError, match="coupling must be"):
        FlowStep(4, 8, coupling="spline")


def test_actnorm_follows_a_loaded_initialized_flag() -> None:
    layer = ActNorm(2).train()
    layer(torch.randn(8, 2, 3, 3) + 5)
    layer.load_state_dict(ActNorm(2).state_dict())  # an uninitialised state: must initialise again
    y, _ = layer(torch.randn(32, 2, 3, 3) * 4 - 3)
    assert bool(layer.initialized)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(2), atol=1e-4)


def test_affine_reverse_bounds_the_scale_below_by_min_scale() -> None:
    """Where the coupling network asks for a scale far below ``min_scale``, ``reverse`` divides by
    ``min_scale`` exactly (1 / sigmoid(min_raw) = 1 / min_scale), not by the tiny scale: with the
    floor gone, the division blows a small input up to the activation bound, which the final
    ``nan_to_num`` + clamp would otherwise hide."""
    layer = make("affine").eval()
    with torch.no_grad():
        layer.net.out.conv.weight.zero_()  # shift 0 and raw -60 everywhere: scale = sigmoid(-58)
        layer.net.out.conv.bias.zero_()
        layer.net.out.logs.zero_()  # (the output scale exp(3 logs) is 1)
        layer.net.out.conv.bias[C // 2 :] = -60.0
    y = _x() * 1e-3
    x = layer.reverse(y)
    half = C // 2
    torch.testing.assert_close(x[:, :half], y[:, :half], rtol=0, atol=0)
    expected = y[:, half:] / AffineCoupling.min_scale
    torch.testing.assert_close(x[:, half:], expected, rtol=1e-6, atol=1e-9)
    assert x.abs().max() < 0.1 * AffineCoupling.max_abs_activation  # nowhere near the clamp
    # above the floor the scale is the network's own: raw -3 + 2 gives sigmoid(-1)
    with torch.no_grad():
        layer.net.out.conv.bias[C // 2 :] = -3.0
    x = layer.reverse(y)
    torch.testing.assert_close(x[:, half:], y[:, half:] / torch.sigmoid(torch.tensor(-1.0, dtype=torch.float64)), rtol=1e-9, atol=0)


def test_actnorm_initialisation_gives_zero_mean_and_unit_variance_on_a_small_batch() -> None:
    """Eight values per channel: the population (biased) variance, as the data-dependent init
    promises; the sample variance would leave a standard deviation of sqrt(7/8)."""
    layer = ActNorm(2).train()
    x = torch.randn(2, 2, 2, 2, generator=torch.Generator().manual_seed(4)) * 3 + 1
    y, _ = layer(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.transpose(0, 1).reshape(2, -1).std(1, unbiased=False), torch.ones(2), atol=0, rtol=1e-4)


@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_a_flow_step_under_autocast_keeps_its_invertible_arithmetic_in_float32(coupling: str) -> None:
    """Training with --precision bf16 runs the networks under autocast; the 1x1 convolution's
    weights (an LU product) and log-determinant must still be computed in float32. With the coupling
    network's output layer at zero (its initial state), the step is ActNorm + 1x1 conv + identity,
    so under autocast it must give the float32 result."""
    torch.manual_seed(0)
    step = _randomize(FlowStep(C, 8, coupling, True)).train()
    with torch.no_grad():
        step.coupling.net.out.conv.weight.zero_()
        step.coupling.net.out.conv.bias.zero_()
    x = torch.randn(2, C, H, W, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y32, ld32 = step(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, ld = step(x)
    assert y.dtype == torch.float32 and ld.dtype == torch.float32
    torch.testing.assert_close(y, y32, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ld, ld32, atol=1e-5, rtol=1e-6)
