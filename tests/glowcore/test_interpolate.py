"""Interpolation: exact keyframes, linear vs spherical, ease curves, loop and ping-pong."""

import numpy as np
import pytest
import torch

from glowcore.ops.interpolate import EASES, ease_curve, interpolate, interpolation_times, slerp
from glowcore.latent import Latent

SHAPES = ((6, 8, 8), (12, 4, 4))


def keyframes(n: int, seed: int = 0) -> Latent:
    gen = torch.Generator().manual_seed(seed)
    return Latent([torch.randn(n, *s, generator=gen) for s in SHAPES])


def equal(a: Latent, b: Latent) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.levels, b.levels))


@pytest.mark.parametrize("mode", ["linear", "slerp"])
@pytest.mark.parametrize("ease", EASES)
def test_endpoints_are_the_keyframes_exactly(mode, ease):
    kf = keyframes(3)
    path = interpolate(kf, 9, mode=mode, ease=ease)
    assert path.batch_size == 9
    assert equal(path[0], kf[0])
    assert equal(path[4], kf[1])  # the middle keyframe lands on frame 4 of 9
    assert equal(path[8], kf[2])


def test_linear_midpoint_is_the_average_and_slerp_keeps_the_length():
    kf = keyframes(2, seed=1)
    lin = interpolate(kf, 3, mode="linear")
    for lvl, a, b in zip(lin.levels, kf[0].levels, kf[1].levels):
        assert torch.allclose(lvl[1], (a[0] + b[0]) / 2, atol=1e-6)
    sph = interpolate(kf, 3, mode="slerp")
    for lvl, lin_lvl, a, b in zip(sph.levels, lin.levels, kf[0].levels, kf[1].levels):
        expected = (a.norm() + b.norm()) / 2
        assert torch.allclose(lvl[1].norm(), expected, rtol=1e-5)
        # two random Gaussian latents are nearly orthogonal: the linear midpoint shrinks by ~1/sqrt(2)
        assert lin_lvl[1].norm() < 0.85 * expected


def test_slerp_of_parallel_vectors_falls_back_to_linear():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    out = slerp(a, 2 * a, torch.tensor([0.5]))
    assert torch.allclose(out, 1.5 * a)
    zero = slerp(torch.zeros(1, 3), a, torch.tensor([0.25]))
    assert torch.isfinite(zero).all() and torch.allclose(zero, 0.25 * a)


def test_ease_curves_fix_the_ends_and_are_monotonic():
    u = np.linspace(0, 1, 101)
    for ease in EASES:
        v = ease_curve(u, ease)
        assert v[0] == 0.0 and v[-1] == 1.0
        assert np.all(np.diff(v) >= -1e-12)
    s = ease_curve(np.array([0.0, 0.01, 0.5, 0.99, 1.0]), "smooth")
    assert s[1] < 0.01 and s[3] > 0.99 and s[2] == pytest.approx(0.5)  # slow at both ends
    with pytest.raises(ValueError, match="ease"):
        ease_curve(u, "bounce")


def test_loop_is_closed_and_seamless():
    kf = keyframes(3, seed=2)
    frames = 12
    path = interpolate(kf, frames, mode="linear", loop=True)
    assert path.batch_size == frames
    assert equal(path[0], kf[0])
    assert equal(path[4], kf[1]) and equal(path[8], kf[2])
    # the step from the last frame back to the first equals a regular step of its segment
    last = path[frames - 1].flatten()
    step_back = (kf[0].flatten() - last).norm()
    step_in = (last - path[frames - 2].flatten()).norm()
    assert torch.allclose(step_back, step_in, rtol=1e-4)
    assert not equal(path[frames - 1], kf[0])


def test_pingpong_goes_there_and_back():
    kf = keyframes(3, seed=3)
    path = interpolate(kf, 17, mode="slerp", ease="smooth", pingpong=True)
    assert equal(path[0], kf[0]) and equal(path[8], kf[2]) and equal(path[16], kf[0])
    flat = path.flatten()
    assert torch.allclose(flat, flat.flip(0), atol=1e-5)


def test_interpolation_times_and_errors():
    src, dst, u = interpolation_times(2, 5)
    assert src.tolist() == [0, 0, 0, 0, 0] and dst.tolist() == [1, 1, 1, 1, 1]
    assert np.allclose(u, [0, 0.25, 0.5, 0.75, 1.0])
    still = interpolate(keyframes(1), 4)
    assert still.batch_size == 4 and equal(still[3], keyframes(1))
    with pytest.raises(ValueError, match="frames"):
        interpolate(keyframes(2), 0)
    with pytest.raises(ValueError, match="mode"):
        interpolate(keyframes(2), 5, mode="cubic")
    with pytest.raises(TypeError):
        interpolate(torch.zeros(2, 3), 5)  # type: ignore[arg-type]
