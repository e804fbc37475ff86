"""Inpainting masks (glowcore.ops.inpaint.load_mask and inpaint): wrong sizes (resized), files that
are not images or are damaged, every image mode, all-zero and all-one masks, non-binary values.

A mask that loads is a boolean ``(H, W)`` array equal to an independent reading (nonzero or
painted = unknown, nearest-neighbour resizing); one that cannot load raises ``ValueError`` /
``FileNotFoundError`` naming the file. Inpainting keeps the known pixels exactly whatever the mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from glowcore import Glow, GlowConfig
from glowcore.base.images import to_uint8
from glowcore.ops.inpaint import inpaint, load_mask

from ._common import broken_images, count, encode, fuzz_settings, truncation_points

H = W = 8


def _expected_from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        a = (a != 0).any(axis=2)
    m = a != 0
    if m.shape != (H, W):
        m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((W, H), Image.Resampling.NEAREST)) >= 128
    return m


def _must_refuse(a: np.ndarray) -> bool:
    if a.dtype.kind in "UO":
        return True
    b = a[0] if a.ndim == 3 and a.shape[0] == 1 else a
    if b.ndim == 3:
        b = b.any(axis=2)
    return b.ndim != 2 or b.size == 0


@fuzz_settings(200)
@given(a=hnp.arrays(
    dtype=st.sampled_from([np.bool_, np.uint8, np.int16, np.int64, np.float32, np.float64, np.complex64, np.dtype("U2"), np.dtype("O")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
))
def test_fuzz_mask_arrays(a: np.ndarray) -> None:
    try:
        m = load_mask(a, H, W)
    except ValueError as e:
        assert "mask" in str(e), str(e)
        assert _must_refuse(a), f"refused a usable mask of shape {a.shape}, dtype {a.dtype}: {e}"
    else:
        assert not _must_refuse(a), f"accepted a mask of shape {a.shape}, dtype {a.dtype}"
        assert m.dtype == bool and m.shape == (H, W)
        np.testing.assert_array_equal(m, _expected_from_array(a))
    count("masks.arrays.fuzz")


def _mask_files(tmp: Path) -> dict[str, tuple[Path, np.ndarray | None]]:
    """Mask files in every mode: name -> (path, expected mask or None when it must be refused)."""
    rng = np.random.default_rng(0)
    hole = np.zeros((16, 24), bool)
    hole[4:12, 6:18] = True
    gray = np.where(hole, 255, 0).astype(np.uint8)
    expected = _expected_from_array(hole)
    _mask_files.expected = expected  # type: ignore[attr-defined]
    out: dict[str, tuple[Path, np.ndarray | str | None]] = {}

    def put(name: str, blob: bytes, exp) -> None:
        p = tmp / name
        p.write_bytes(blob)
        out[name] = (p, exp)

    put("L.png", encode(Image.fromarray(gray), "PNG"), expected)
    put("1bit.png", encode(Image.fromarray(hole), "PNG"), expected)
    put("I16.png", encode(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"), expected)
    put("RGB.jpg", encode(Image.fromarray(np.repeat(gray[..., None], 3, -1)), "JPEG", quality=95), expected)
    rgba = np.zeros((16, 24, 4), np.uint8)
    rgba[hole] = (200, 10, 10, 255)
    put("painted_RGBA.png", encode(Image.fromarray(rgba), "PNG"), expected)
    la = np.zeros((16, 24, 2), np.uint8)
    la[hole] = (0, 255)  # dark paint on a transparent layer: opacity decides
    put("painted_LA.png", encode(Image.fromarray(la, "LA"), "PNG"), expected)
    put("palette.png", encode(Image.fromarray(gray).convert("P"), "PNG"), expected)
    put("gray_values.png", encode(Image.fromarray(np.where(hole, 128, 127).astype(np.uint8)), "PNG"), expected)
    put("all_zero.png", encode(Image.fromarray(np.zeros((16, 24), np.uint8)), "PNG"), np.zeros((H, W), bool))
    put("all_one.png", encode(Image.fromarray(np.full((16, 24), 255, np.uint8)), "PNG"), np.ones((H, W), bool))
    anim = [Image.fromarray(gray), Image.fromarray(255 - gray)]
    put("animated.gif", encode(anim[0], "GIF", save_all=True, append_images=anim[1:]), expected)
    put("huge_not_really.png", encode(Image.fromarray(np.kron(gray, np.ones((8, 8), np.uint8))), "PNG"), expected)
    put("zero.png", b"", None)
    put("text.png", b"a mask? no", None)
    good = encode(Image.fromarray(gray), "PNG")
    for cut in truncation_points(len(good))[:-1]:  # refused, or (cut after the pixels) the whole mask
        put(f"cut{cut}.png", good[:cut], "either")
    put("random.png", rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), None)
    for name, blob in broken_images().items():  # bombs, short chunks, TIFFs with bad tag types, ...
        put(f"broken_{name}", blob, None)
    return out


def test_mask_files_in_every_mode_and_broken_ones(tmp_path: Path) -> None:
    for name, (path, expected) in _mask_files(tmp_path).items():
        try:
            m = load_mask(path, H, W)
        except ValueError as e:
            assert name in str(e), str(e)
            assert expected is None or isinstance(expected, str), f"{name} refused: {e}"
        else:
            assert expected is not None, f"{name} accepted"
            np.testing.assert_array_equal(m, _mask_files.expected if isinstance(expected, str) else expected, err_msg=name)
        count("masks.files")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_mask(tmp_path / "missing.png", H, W)
    with pytest.raises(ValueError, match="folder"):
        load_mask(tmp_path, H, W)
    for bad in ({"x": 1}, None, 3, "not/a/path/\0"):
        with pytest.raises((ValueError, FileNotFoundError)):
            load_mask(bad, H, W)
    count("masks.files", 6)


@fuzz_settings(100)
@given(blob=st.binary(max_size=600), cut=st.integers(0, 400), flips=st.lists(st.integers(0, 399), max_size=4))
def test_fuzz_damaged_mask_files(tmp_path_factory, blob: bytes, cut: int, flips: list[int]) -> None:
    base = bytearray(encode(Image.fromarray(np.eye(16, dtype=np.uint8) * 255), "PNG"))[:cut] if cut else bytearray(blob)
    for i in flips:
        if i < len(base):
            base[i] ^= 0xFF
    p = tmp_path_factory.mktemp("mask") / "mask.png"
    p.write_bytes(bytes(base))
    try:
        m = load_mask(p, H, W)
    except ValueError as e:
        assert "mask.png" in str(e), str(e)
    else:
        assert m.dtype == bool and m.shape == (H, W)
    count("masks.files.fuzz")


def test_inpainting_keeps_known_pixels_for_any_mask() -> None:
    torch.manual_seed(0)
    model = Glow(GlowConfig(image_size=H, channels=3, levels=2, steps=1, hidden=8))
    model.initialize(torch.rand(8, 3, H, W))
    model.eval()
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    masks = {
        "all_zero": np.zeros((H, W)),
        "all_one": np.ones((H, W)),
        "non_binary": rng.uniform(-1, 1, (H, W)) * (rng.random((H, W)) < 0.3),
        "nan_and_inf": np.where(rng.random((H, W)) < 0.2, np.nan, 0.0) + np.where(rng.random((H, W)) < 0.1, np.inf, 0.0),
        "bigger": rng.random((3 * H, 3 * W)) < 0.2,
        "smaller": rng.random((3, 5)) < 0.5,
        "channels": rng.random((H, W, 3)) < 0.1,
    }
    for name, mask in masks.items():
        out = inpaint(model, image, mask, candidates=2, steps=2, seed=0)
        assert out.shape == (2, 3, H, W) and torch.isfinite(out).all(), name
        unknown = load_mask(mask, H, W)
        back = to_uint8(out)
        for cand in back:
            assert np.array_equal(cand[~unknown], image[~unknown]), name
        if name == "all_zero":
            assert np.array_equal(back[0], image)
        count("masks.inpaint")
