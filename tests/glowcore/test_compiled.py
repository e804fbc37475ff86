"""Frozen reverse graphs (glowcore.decoding.compiled): same pictures as the eager pass, rebuilt when the
weights change, used only where they are exact, and a failed trace falls back to eager."""

import pytest
import torch

from glowcore.decoding import compiled
from glowcore.latent import Latent
from glowcore.base.progress import Cancelled, CancelToken
from glowcore.decoding.stable import LADDER, damped_reverse

from .latent_helpers import gradient_images, trained_model, untrained_model
from .test_model import CONFIGS, tiny


def graph_of(model, lat):
    """The graphs ``model`` holds for latents like ``lat`` (none is built here)."""
    with torch.no_grad(), compiled.no_build():
        return compiled.reverse_graph(model, lat)


def eager_decode(model, latent, **kw):
    compiled.set_enabled(False)
    try:
        return model.decode(latent, **kw)
    finally:
        compiled.set_enabled(True)


@pytest.fixture(autouse=True)
def _enabled():
    was = compiled.enabled()
    compiled.set_enabled(True)
    yield
    compiled.set_enabled(was)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("batch", [1, 2])
def test_graph_decodes_like_the_eager_pass(cfg, batch):
    model = tiny(**cfg).eval()
    lat = model.sample_latent(batch, 0.8, seed=3)
    expected = eager_decode(model, lat)
    got = model.decode(lat)
    assert len(compiled.built(model)) == 1
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_round_trip_through_the_graph():
    model = trained_model()
    faces = torch.from_numpy(gradient_images(2, seed=11)).permute(0, 3, 1, 2).float() / 255
    for i in range(2):
        back = model.decode(model.encode(faces[i : i + 1]))
        assert compiled.built(model)
        assert (back - faces[i : i + 1]).abs().max() < 1e-4


def bf16_sized(**kw):
    """A model with a 16x16 level, large enough for the bf16 networks (FAST_MIN_PIXELS).

    The tests using it need no skip: the bf16 path runs on any CPU, natively or emulated (with
    ``ONEDNN_MAX_CPU_ISA=AVX2``, where ``fast_networks_supported()`` and the packed convolution are
    both off, they pass too; the traced graphs always use the plain bf16 convolutions)."""
    return tiny(image_size=32, channels=3, levels=2, steps=2, hidden=16, **kw).eval()


def test_fast_graph_matches_the_eager_fast_networks():
    model = bf16_sized()
    lat = model.sample_latent(1, 0.7, seed=5)
    expected = eager_decode(model, lat, fast=True)
    got = model.decode(lat, fast=True)
    assert any(k[2] for k in compiled.built(model))  # a graph built with the fast networks
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=0)
    exact = model.decode(lat)
    assert 0 < (got - exact).abs().mean() < 2e-3  # the bf16 networks ran, close to the exact decoding


def test_new_weights_build_a_new_graph():
    model = untrained_model(seed=4)
    lat = model.sample_latent(1, 0.7, seed=1)
    before = model.decode(lat)
    first = graph_of(model, lat)
    assert first is not None
    with torch.no_grad():
        model.levels[0].steps[0].coupling.net.conv1.weight.mul_(3.0)
        model.levels[0].steps[1].actnorm.bias.add_(0.2)
    after = model.decode(lat)
    assert graph_of(model, lat) is not first
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(after, eager_decode(model, lat), atol=1e-6, rtol=0)
    # load_state_dict of other weights: again what the eager pass gives
    other = untrained_model(seed=9)
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(model.decode(lat), eager_decode(other, lat), atol=1e-6, rtol=0)


def test_graph_is_only_used_where_it_is_exact():
    model = untrained_model(seed=2)
    small = model.sample_latent(1, 0.7, seed=0)
    assert compiled.reverse_graph(model, small) is None  # autograd on (no inference mode)
    with torch.no_grad():
        assert compiled.reverse_graph(model, small) is not None
        big = model.sample_latent(compiled.MAX_BATCH + 1, 0.7, seed=0)
        assert compiled.reverse_graph(model, big) is None
        plain = compiled.reverse_graph(model, small)
        with damped_reverse(LADDER[0]):  # the damping is frozen into graphs of its own
            damped = compiled.reverse_graph(model, small)
            assert damped is not None and damped is not plain
            torch.testing.assert_close(damped(small), model.reverse(small), atol=1e-6, rtol=0)
        assert compiled.reverse_graph(model, small) is plain
        compiled.set_enabled(False)
        assert compiled.reverse_graph(model, small) is None
        compiled.set_enabled(True)
        model.train()
        assert compiled.reverse_graph(model, small) is None
        model.eval()
    # gradients through decode_tensor (inpainting) still reach the latent
    lat = model.sample_latent(1, 0.7, seed=0)
    lat.levels[0].requires_grad_(True)
    model.decode_tensor(lat).sum().backward()
    assert lat.levels[0].grad is not None and lat.levels[0].grad.abs().sum() > 0
    assert all(p.requires_grad for p in model.parameters())  # tracing froze none for good


def test_failed_trace_falls_back_to_eager_once(monkeypatch):
    model = untrained_model(seed=3)
    lat = model.sample_latent(1, 0.7, seed=0)
    expected = eager_decode(model, lat)
    calls = []

    def broken(*a, **k):
        calls.append(1)
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "trace", broken)
    for _ in range(3):
        torch.testing.assert_close(model.decode(lat), expected, atol=0, rtol=0)
    assert calls == [1]
    assert "no TorchScript here" in model.__dict__["_reverse_graphs"]["failed"]


@pytest.mark.parametrize("fast", [False, True])
def test_first_decode_of_a_fresh_model_builds_a_graph(fast):
    model = bf16_sized()  # no eval caches yet: tracing must not capture their building
    lat = model.sample_latent(1, 0.7, seed=2)
    got = model.decode(lat, fast=fast)
    assert not compiled.is_tracing()  # the tracing flag does not outlive the build
    assert "failed" not in model.__dict__["_reverse_graphs"]
    assert compiled.built(model)
    torch.testing.assert_close(got, eager_decode(model, lat, fast=fast), atol=2e-3 if fast else 1e-6, rtol=0)


def stop_after(n: int) -> tuple[CancelToken, list]:
    """A token that cancels at its ``n``-th check (a render giving up on a stale picture), and
    the list of its checks."""
    checks: list = []

    def when() -> bool:
        checks.append(1)
        return len(checks) >= n

    return CancelToken(when=when), checks


@pytest.mark.parametrize("use_graph", [True, False])
def test_decode_checks_cancel_between_levels(use_graph):
    model = tiny(levels=3).eval()
    compiled.set_enabled(use_graph)
    lat = model.sample_latent(1, 0.7, seed=1)
    token, checks = stop_after(10)
    full = model.decode(lat, cancel=token)
    assert len(checks) == 2  # between the 3 levels
    assert bool(compiled.built(model)) == use_graph
    torch.testing.assert_close(full, eager_decode(model, lat), atol=1e-6, rtol=0)
    with pytest.raises(Cancelled):
        model.decode(lat, cancel=stop_after(2)[0])
    with pytest.raises(ValueError, match="latent shapes"):
        model.decode(Latent([t[:, :, :-1] for t in lat.levels]))


def test_no_build_uses_graphs_but_builds_none():
    model = untrained_model(seed=7)
    lat = model.sample_latent(1, 0.7, seed=0)
    with compiled.no_build():
        first = model.decode(lat)
    assert not compiled.built(model)
    second = model.decode(lat)  # builds
    assert compiled.built(model)
    assert graph_of(model, lat) is not None  # under no_build, built graphs are still used
    torch.testing.assert_close(first, second, atol=1e-6, rtol=0)


def test_a_graph_that_differs_from_the_eager_pass_is_not_used(monkeypatch):
    """A future torch whose deprecated trace/freeze computes something else: checked against the
    eager pass when built, not used, and decoding stays eager (and exact)."""
    model = untrained_model(seed=5)
    lat = model.sample_latent(1, 0.7, seed=0)
    expected = eager_decode(model, lat)
    real_freeze = torch.jit.freeze

    class Off(torch.nn.Module):
        def __init__(self, graph):
            super().__init__()
            self.graph = graph

        def forward(self, *xs):
            return self.graph(*xs) + 0.01

    monkeypatch.setattr(torch.jit, "freeze", lambda m, *a, **k: Off(real_freeze(m, *a, **k)))
    torch.testing.assert_close(model.decode(lat), expected, atol=0, rtol=0)
    assert "differs from the eager pass" in model.__dict__["_reverse_graphs"]["failed"]


def test_a_torch_without_trace_decodes_eagerly(monkeypatch):
    model = untrained_model(seed=6)
    lat = model.sample_latent(1, 0.7, seed=0)
    expected = eager_decode(model, lat)
    monkeypatch.delattr(torch.jit, "freeze")
    torch.testing.assert_close(model.decode(lat), expected, atol=0, rtol=0)
    assert "failed" in model.__dict__["_reverse_graphs"]


def test_deprecation_warnings_of_the_build_alone_are_silenced():
    """Building the graphs under ``-W error``: torch's deprecation of trace/freeze is expected
    (see glowcore.decoding.compiled) and silenced, so the graphs are built; any other warning would fail."""
    import warnings

    model = untrained_model(seed=7)
    lat = model.sample_latent(1, 0.7, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            assert compiled.reverse_graph(model, lat) is not None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.jit.trace(torch.nn.Identity(), (torch.ones(1),))
    # the wording compiled._DEPRECATED matches (if torch rewords it, the test above fails first)
    import re

    assert any(re.search(compiled._DEPRECATED, str(w.message)) for w in seen) or not seen
