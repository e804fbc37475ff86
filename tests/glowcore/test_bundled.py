"""The bundled face model in assets/: loads by default, round-trips a real validation face,
carries the 40 CelebA directions, samples reproducibly."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import glowcore
from glowcore.checkpoint import bundled_model_names

from ..testdata import CELEBA64 as DATA, needs_shared


def test_bundled_model_is_the_default_and_carries_40_directions() -> None:
    assert "celeba64" in bundled_model_names()
    model = glowcore.load_model(device="cpu")
    assert model.config.image_size == 64 and model.config.channels == 3
    assert len(model.directions) == 40
    for name in ("Smiling", "Young", "Male", "Eyeglasses", "Blond_Hair"):
        assert name in model.directions and model.direction_info[name]["scale"] > 0
    assert model.metadata["metrics"]["val_bpd"] < 2.0


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
