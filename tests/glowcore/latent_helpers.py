"""Tiny models and images shared by the latent-operation tests (trained once per session)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from glowcore import Glow, GlowConfig

TINY = GlowConfig(image_size=16, channels=3, levels=2, steps=2, hidden=16, n_bits=5)


def gradient_images(n: int, seed: int) -> np.ndarray:
    """Horizontal colour gradients, 16x16: each column is one colour, so a hole is predictable
    from the pixels above and below it (and the gradient's two ends)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, 16)[None, None, :, None]
    c0 = rng.random((n, 1, 1, 3))
    c1 = rng.random((n, 1, 1, 3))
    img = np.broadcast_to(c0 + (c1 - c0) * x, (n, 16, 16, 3))
    return np.ascontiguousarray((img * 255).round().astype(np.uint8))


def untrained_model(seed: int = 0) -> Glow:
    """A tiny model with ActNorm initialised on random images (eval mode)."""
    torch.manual_seed(seed)
    model = Glow(TINY)
    model.initialize(torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def saved_model_with_smiling(folder, length: float = 0.1):
    """An untrained tiny model with one random "Smiling" direction (``length`` x a normal vector),
    saved in ``folder / "model"``: what the command-line tests edit."""
    from glowcore import save_model
    from glowcore.ops.directions import add_directions

    model = untrained_model()
    vec = length * torch.randn(model.dim, generator=torch.Generator().manual_seed(0))
    add_directions(model, {"Smiling": vec}, {"method": "mean-diff", "kind": "labels"})
    path = folder / "model"
    save_model(model, path)
    return path


@functools.lru_cache(maxsize=1)
def _trained_state() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny layers: one thread is faster, and immune to a busy machine
    try:
        return _train()
    finally:
        torch.set_num_threads(threads)


def _train() -> dict:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        data = torch.from_numpy(gradient_images(2048, seed=0)).permute(0, 3, 1, 2).float() / 255
        model = Glow(TINY)
        model.initialize(data[:256])
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(0)
        for _ in range(400):
            idx = torch.randint(0, data.shape[0], (64,), generator=gen)
            loss = model.bits_per_dim(data[idx], generator=gen).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def trained_model() -> Glow:
    """A tiny model trained for a few seconds on :func:`gradient_images` (a fresh copy each call)."""
    model = Glow(TINY)
    model.load_state_dict(_trained_state())
    return model.eval()
