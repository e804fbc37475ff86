"""The bundled face model in assets/: loads by default, round-trips a real validation face,
carries the 40 CelebA directions, samples reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import glowcore
from glowcore.io.checkpoint import bundled_model_names

from ..testdata import CELEBA64 as DATA, needs_shared


def test_bundled_model_is_the_default_and_carries_40_directions() -> None:
    assert "celeba64" in bundled_model_names()
    model = glowcore.load_model(device="cpu")
    assert model.config.image_size == 64 and model.config.channels == 3
    assert len(model.directions) == 40
    for name in ("Smiling", "Young", "Male", "Eyeglasses", "Blond_Hair"):
        assert name in model.directions and model.direction_info[name]["scale"] > 0
    # bits/dim measured, not read from the metadata: the model's own samples (T = 0.7) are typical
    # for it (measured 1.65; a face model is under 2, a broken one far above)
    with torch.inference_mode():
        samples = glowcore.to_uint8(model.sample(8, 0.7, seed=0))
        bpd = model.bits_per_dim(samples, generator=torch.Generator().manual_seed(0)).mean().item()
    assert 1.0 < bpd < 2.0


@needs_shared("celeba64")
def test_bundled_model_round_trips_a_validation_face() -> None:
    model = glowcore.load_model(device="cpu")
    lines = (DATA / "list_eval_partition.txt").read_text().split("\n")
    name = next(ln.split()[0] for ln in lines if ln.strip().endswith(" 1"))
    face = np.asarray(Image.open(DATA / "img_align_celeba" / name).convert("RGB"))
    back = model.decode_uint8(model.encode(face))[0]
    assert np.abs(back.astype(int) - face.astype(int)).max() <= 1
    assert model.bits_per_dim(face).item() < 3.0  # a real face is typical for the model


def test_bundled_model_samples_are_reproducible() -> None:
    model = glowcore.load_model(device="cpu")
    a = model.sample(2, 0.7, seed=3)
    b = model.sample(2, 0.7, seed=3)
    assert torch.equal(a, b) and torch.isfinite(a).all()


@pytest.mark.skipif(not (DATA / "list_eval_partition.txt").is_file(), reason=f"CelebA validation faces not found at {DATA}")
def test_bundled_model_bits_per_dim_on_validation_faces_matches_its_metadata() -> None:
    """Measured on the first 16 CelebA validation faces (fixed dequantisation noise): what the
    model's metadata claims for the whole validation set (measured 1.434 here vs 1.444 stored)."""
    model = glowcore.load_model(device="cpu")
    lines = (DATA / "list_eval_partition.txt").read_text().split("\n")
    names = [ln.split()[0] for ln in lines if ln.strip().endswith(" 1")][:16]
    faces = np.stack([np.asarray(Image.open(DATA / "img_align_celeba" / n).convert("RGB")) for n in names])
    with torch.inference_mode():
        bpd = model.bits_per_dim(faces, generator=torch.Generator().manual_seed(0)).mean().item()
    stored = model.metadata["metrics"]["val_bpd"]
    assert bpd < 2.0
    assert abs(bpd - stored) < 0.05, f"measured {bpd:.3f} bits/dim, the metadata says {stored}"
