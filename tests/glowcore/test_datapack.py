"""Compact data packs: lossless at the bit depth, size budget, as a data spec, damaged files named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from glowcore.data.datasets import DataError, dataset_channels, default_image_size, load_dataset
from glowcore.data.packing import build_pack
from glowcore.data.packs import load_pack_split, pack_arrays, pack_info

from .test_ema import synthetic_faces


def test_pack_round_trip_is_exact_at_its_bit_depth(tmp_path: Path) -> None:
    train, val = synthetic_faces(20, seed=3), synthetic_faces(5, seed=4)
    labels = np.random.default_rng(0).integers(0, 2, (25, 2)).astype(np.uint8)
    pack_arrays(tmp_path / "p.pack", train, val, n_bits=5, train_labels=labels[:20], val_labels=labels[20:], label_names=["a", "b"])
    got = load_pack_split(tmp_path / "p.pack", "train")
    np.testing.assert_array_equal(got.images >> 3, train >> 3)  # every 5-bit value kept
    np.testing.assert_array_equal(got.images & 7, 0)
    np.testing.assert_array_equal(got.labels, labels[:20])
    assert got.label_names == ["a", "b"] and got.image_size == 16 and got.channels == 3
    both = load_dataset(f"pack:{tmp_path / 'p.pack'}", None, "all")
    assert len(both) == 25
    assert default_image_size(f"pack:{tmp_path / 'p.pack'}") == 16 and dataset_channels(f"pack:{tmp_path / 'p.pack'}") == 3


def test_one_channel_images_pack_too(tmp_path: Path) -> None:
    gray = synthetic_faces(6, seed=5)[..., :1]
    pack_arrays(tmp_path / "g.pack", gray, gray[:2], n_bits=8)
    got = load_dataset(f"pack:{tmp_path / 'g.pack'}", None, "val")
    np.testing.assert_array_equal(got.images, gray[:2])
    assert got.labels is None


def test_build_pack_keeps_to_its_size_budget(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "imgs"
    root.mkdir()
    for i, img in enumerate(synthetic_faces(60, size=32, seed=6)):
        Image.fromarray(img).save(root / f"{i:03d}.png")
    whole = build_pack(f"folder:{root}", tmp_path / "all.pack", max_mb=10, val_images=2, image_size=32)
    assert whole.images == {"train": whole.available["train"], "val": 2}
    limit = 0.065536 + whole.bytes / 1e6 / 2  # about half of what all of them take
    half = build_pack(f"folder:{root}", tmp_path / "half.pack", max_mb=limit, val_images=2, image_size=32)
    assert half.bytes <= limit * 1e6 and 0 < half.images["train"] < whole.images["train"]
    assert pack_info(tmp_path / "half.pack")["counts"]["train"] == half.images["train"]


def test_damaged_packs_are_named(tmp_path: Path) -> None:
    good = tmp_path / "good.pack"
    pack_arrays(good, synthetic_faces(4), synthetic_faces(2))
    with pytest.raises(DataError, match="no such data pack"):
        load_dataset(f"pack:{tmp_path / 'missing.pack'}", None, "train")
    (tmp_path / "junk.pack").write_bytes(b"not a safetensors file at all")
    with pytest.raises(DataError, match="junk.pack: not a data pack"):
        load_dataset(f"pack:{tmp_path / 'junk.pack'}", None, "train")
    tensors = load_file(str(good))
    save_file(tensors, str(tmp_path / "untagged.pack"))
    with pytest.raises(DataError, match="untagged.pack: not a glow-explorer data pack"):
        pack_info(tmp_path / "untagged.pack")
    from safetensors import safe_open

    with safe_open(str(good), framework="numpy") as f:
        meta = f.metadata()
    bad = dict(tensors)
    bad["train.offsets"] = bad["train.offsets"][::-1].copy()
    save_file(bad, str(tmp_path / "offsets.pack"), metadata=meta)
    with pytest.raises(DataError, match="offsets.pack: damaged data pack"):
        load_dataset(f"pack:{tmp_path / 'offsets.pack'}", None, "train")
    bad = dict(tensors)
    bad["train.data"] = np.full_like(bad["train.data"], 7)
    save_file(bad, str(tmp_path / "bytes.pack"), metadata=meta)
    with pytest.raises(DataError, match="bytes.pack: damaged data pack .*cannot be decoded"):
        load_dataset(f"pack:{tmp_path / 'bytes.pack'}", None, "train")
    save_file(tensors, str(tmp_path / "size.pack"), metadata={**meta, "image_size": "9999999"})
    with pytest.raises(DataError, match="size.pack: damaged data pack metadata"):
        pack_info(tmp_path / "size.pack")
    with pytest.raises(DataError, match="holds 16x16 images, not 32x32"):
        load_dataset(f"pack:{good}", 32, "train")
    with pytest.raises(DataError, match="splits train, val, not 'test'"):
        load_dataset(f"pack:{good}", None, "test")
    assert json.loads(meta["counts"]) == {"train": 4, "val": 2}


def test_make_datapack_command(tmp_path: Path, capsys) -> None:
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location("make_datapack", Path(__file__).resolve().parents[2] / "scripts" / "make_datapack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    root = tmp_path / "imgs"
    root.mkdir()
    for i, img in enumerate(synthetic_faces(30, seed=8)):
        Image.fromarray(img).save(root / f"{i:03d}.png")
    assert mod.main(["--data", f"folder:{root}", "--out", str(tmp_path / "p.pack"), "--val-images", "1"]) == 0
    assert "train 28 of 28, val 1 of 2 images, 5-bit" in capsys.readouterr().out
    assert len(load_dataset(f"pack:{tmp_path / 'p.pack'}", None, "train")) == 28
    assert mod.main(["--data", f"folder:{tmp_path / 'nothing'}", "--out", str(tmp_path / "q.pack")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("make_datapack: ") and "nothing" in err[0]
    assert not (tmp_path / "q.pack").exists()
