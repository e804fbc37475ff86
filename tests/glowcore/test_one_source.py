"""Values that once had copies in several modules now have one source: these tests change or
exercise the source and check that every user follows it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glowcore.base.limits import MAX_LEVELS
from glowcore.io.checkpoint import CheckpointError, load_model


def test_train_choices_follow_the_library(monkeypatch):
    from glowcore.cli.main import build_parser
    from glowcore.nn import coupling
    from glowcore.training import config

    monkeypatch.setitem(coupling.COUPLINGS, "spline", coupling.AffineCoupling)
    monkeypatch.setattr(config, "PRECISIONS", (*config.PRECISIONS, "fp8"))
    monkeypatch.setattr(config, "LR_SCHEDULES", (*config.LR_SCHEDULES, "step"))
    args = build_parser().parse_args(["train", "--coupling", "spline", "--precision", "fp8", "--lr-schedule", "step"])
    assert (args.coupling, args.precision, args.lr_schedule) == ("spline", "fp8", "step")


def test_one_level_cap_for_configs_runs_and_model_files(tmp_path: Path):
    from glowcore.model import GlowConfig
    from glowcore.training.config import TrainConfig
    from glowcore.training.trainstate import TrainingError

    n = MAX_LEVELS + 1
    with pytest.raises(ValueError, match=f"levels must be at most {MAX_LEVELS}"):
        GlowConfig(image_size=2**n, levels=n, steps=1, hidden=1)
    with pytest.raises(TrainingError, match=f"levels must be <= {MAX_LEVELS}"):
        TrainConfig(data="folder:x", out=str(tmp_path / "run"), levels=n).validate()
    folder = tmp_path / "model"
    folder.mkdir()
    arch = {"image_size": 2**n, "channels": 1, "levels": n, "steps": 1, "hidden": 1, "coupling": "affine", "lu": True}
    (folder / "config.json").write_text(json.dumps({"format": "glow-explorer-model", "format_version": 1, "architecture": arch,
                                                    "preprocessing": {"n_bits": 5}, "weights": {"file": "model.safetensors"}}))
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=f"levels must be <= {MAX_LEVELS}"):
        load_model(folder)


def _odd_images(folder: Path) -> dict[str, np.ndarray]:
    """Images whose conversion to RGB needs care: 16-bit gray, RGBA over white, a transparent
    palette, and formats beyond JPEG/PNG/WebP."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (16, 16, 1), dtype=np.uint8)
    Image.fromarray((rng.integers(0, 65536, (16, 16))).astype(np.uint16)).save(folder / "deep.png")
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(folder / "alpha.png")
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pal.info["transparency"] = 0
    pal.save(folder / "palette.png", transparency=0)
    Image.fromarray(rgb).save(folder / "plain.bmp")
    Image.fromarray(rgb).save(folder / "plain.tif")
    return {p.name: p for p in sorted(folder.iterdir())}


def test_data_sets_and_photos_decode_an_image_alike(tmp_path: Path):
    from glowcore.data.datasets import load_dataset
    from glowcore.ops.photo import load_photo

    root = tmp_path / "faces"
    root.mkdir()
    files = _odd_images(root)
    ds = load_dataset(f"folder:{root}", 16, "all", cache_dir=tmp_path / "cache")
    assert sorted(ds.names) == sorted(files)  # BMP and TIFF too, as the photo commands take
    for name, image in zip(ds.names, ds.images):
        photo, _ = load_photo(files[name], 16, frame_face=False)
        np.testing.assert_array_equal(image, photo, err_msg=name)
