"""Hostile and unusual image files against every image loader a user reaches.

Targets: :func:`glowcore.ops.photo.load_photo` (photos for the explorer and the CLI), the folder and
CelebA loaders of :mod:`glowcore.data.datasets` (training data). Valid but unusual files (16-bit, CMYK,
palette, LA, animated, EXIF-rotated, wrong extension) must load as the picture they hold; broken
ones (zero bytes, truncated, random bytes, decompression bombs) must give a clear error naming the
file, or be skipped with a warning naming it: never another exception, a hang or a full decode of
a giant image.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from PIL import Image

from glowcore.data import sources as gsources
from glowcore.data.datasets import DataWarning, load_dataset
from glowcore.io.imagefiles import IMAGE_SUFFIXES
from glowcore.ops.photo import load_photo

from ._common import broken_images, count, encode, fuzz_settings, gradient_rgb, truncation_points, valid_images, write_file

SIZE = 16
PHOTO_ERRORS = (ValueError, FileNotFoundError)


def _photo(path: Path) -> np.ndarray:
    img, msg = load_photo(path, SIZE, frame_face=False)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    assert path.name in msg
    return img


def _reference(tmp: Path, picture: np.ndarray, loader) -> np.ndarray:
    return loader(write_file(tmp, "reference_plain.png", encode(Image.fromarray(picture), "PNG")))


def _folder_decode(path: Path) -> np.ndarray:
    out = gsources._decode_folder_image(path, SIZE)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    return out


def _folder_decode_or_skip(path: Path) -> None:
    """A damaged file: the folder decoder may raise any ``Exception`` (``_build_cache`` skips the
    file with a warning naming it), but what it returns must be a picture of the right form. The
    checks stay outside the ``try`` so that their own failures are not taken for a skip."""
    try:
        out = gsources._decode_folder_image(path, SIZE)
    except Exception:
        return
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8, (out.shape, out.dtype)


# ----------------------------------------------------------------------------- valid files
@pytest.mark.parametrize("loader_name", ["photo", "folder"])
def test_unusual_but_valid_images_load_as_the_picture_they_hold(tmp_path: Path, loader_name: str) -> None:
    loader = _photo if loader_name == "photo" else _folder_decode
    cases = valid_images()
    # a wrong extension does not matter: the content decides
    png_bytes, rgb, _ = cases["rgb.png"]
    cases["png_named.jpg"] = (png_bytes, rgb, 0.5)
    cases["jpeg_named.png"] = (cases["rgb.jpg"][0], rgb, 4.0)
    cases["webp_named.png"] = (cases["rgb.webp"][0], rgb, 0.5)
    for name, (blob, expected, tol) in cases.items():
        if loader_name == "folder" and not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        got = loader(write_file(tmp_path, name, blob)).astype(float)
        ref = _reference(tmp_path, expected, loader).astype(float)
        err = np.abs(got - ref).mean()
        assert err <= tol + 1.0, f"{name}: mean abs difference {err:.2f} from the picture it holds"
        count(f"images.{loader_name}.valid")


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    """A 16-bit gray gradient must stay a gradient (a plain conversion clips it to white)."""
    ramp = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    p = write_file(tmp_path, "ramp16.png", encode(Image.fromarray(ramp), "PNG"))
    for name, img in (("photo", _photo(p)), ("folder", _folder_decode(p))):
        assert 100 < img.mean() < 155, f"{name}: 16-bit ramp came out with mean {img.mean():.1f}"
        assert img.min() < 30 and img.max() > 225, name
        count(f"images.{name}.valid")


# ----------------------------------------------------------------------------- broken files
def test_broken_images_give_clear_errors_naming_the_file(tmp_path: Path) -> None:
    for name, blob in broken_images().items():
        p = write_file(tmp_path, name, blob)
        with pytest.raises(PHOTO_ERRORS) as info:
            load_photo(p, SIZE, frame_face=False)
        assert name in str(info.value), f"{name}: {info.value}"
        if name.startswith("bomb"):
            assert "too large" in str(info.value) or "megapixel" in str(info.value), str(info.value)
        # the same from bytes: the message says what it was given
        with pytest.raises(ValueError):
            load_photo(blob, SIZE, frame_face=False)
        count("images.photo.broken", 2)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_photo(tmp_path / "missing.png", SIZE)
    with pytest.raises(ValueError, match="folder"):
        load_photo(tmp_path, SIZE)
    count("images.photo.broken", 2)


def test_every_truncation_of_every_format_is_an_error_or_a_picture(tmp_path: Path) -> None:
    im = Image.fromarray(gradient_rgb())
    blobs = {
        "t.png": encode(im, "PNG"), "t.jpg": encode(im, "JPEG", quality=90), "t.webp": encode(im, "WEBP"),
        "t.gif": encode(im.convert("P"), "GIF"), "t_prog.jpg": encode(im, "JPEG", progressive=True),
        "t_anim.webp": valid_images()["animated.webp"][0], "t_i16.png": valid_images()["gray_I16.png"][0],
        "t_cmyk.jpg": valid_images()["cmyk.jpg"][0], "t_exif6.jpg": valid_images()["exif6.jpg"][0],
    }
    for name, blob in blobs.items():
        for cut in truncation_points(len(blob)):
            p = write_file(tmp_path, f"cut{cut}_{name}", blob[:cut])
            try:
                _photo(p)
            except PHOTO_ERRORS as e:
                assert p.name in str(e), str(e)
            _folder_decode_or_skip(p)
            count("images.photo.truncated")
            count("images.folder.truncated")


@st.composite
def mutated_image(draw):
    """A valid image file with random damage: cut, flipped bytes, inserted or deleted runs."""
    kind = draw(st.sampled_from(["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]))
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    pic = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if kind == "GIF":
        pic = pic.convert("P")
    blob = bytearray(encode(pic, kind))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "flip", "insert", "delete", "set"]))
        if not blob:
            break
        i = draw(st.integers(0, len(blob) - 1))
        if op == "cut":
            del blob[i:]
        elif op == "flip":
            blob[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            blob[i:i] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del blob[i : i + draw(st.integers(1, 64))]
        else:
            blob[i] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
    ext = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}[kind]
    return bytes(blob), ext


@fuzz_settings(150)
@given(case=mutated_image())
def test_fuzz_damaged_images_photo(tmp_path_factory, case) -> None:
    blob, ext = case
    p = tmp_path_factory.mktemp("dmg") / f"damaged{ext}"
    p.write_bytes(blob)
    try:
        _photo(p)
    except PHOTO_ERRORS as e:
        assert p.name in str(e), f"{type(e).__name__}: {e}"
    count("images.photo.fuzz")


@fuzz_settings(150)
@given(case=mutated_image())
def test_fuzz_damaged_images_folder_decoder(tmp_path_factory, case) -> None:
    blob, ext = case
    p = tmp_path_factory.mktemp("dmg") / f"damaged{ext}"
    p.write_bytes(blob)
    _folder_decode_or_skip(p)
    count("images.folder.fuzz")


@fuzz_settings(100)
@given(blob=st.binary(max_size=2048), ext=st.sampled_from([".png", ".jpg", ".webp", ".gif", ".bmp", ".tif", ".jpeg"]))
def test_fuzz_random_bytes_photo(tmp_path_factory, blob: bytes, ext: str) -> None:
    p = tmp_path_factory.mktemp("rnd") / f"random{ext}"
    p.write_bytes(blob)
    try:
        _photo(p)
    except PHOTO_ERRORS as e:
        assert p.name in str(e), f"{type(e).__name__}: {e}"
    count("images.photo.fuzz")


# ------------------------------------------------------------------- whole data set loaders
def test_folder_loader_keeps_good_images_and_names_every_skipped_file(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    good = {n: b for n, (b, _, _) in valid_images().items() if n.lower().endswith(IMAGE_SUFFIXES)}
    bad = {n: b for n, b in broken_images().items() if n.lower().endswith(IMAGE_SUFFIXES)}
    for n, b in {**good, **bad}.items():
        write_file(root / "sub", n, b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(f"folder:{root}", SIZE, "all", cache_dir=tmp_path / "cache", workers=1)
    skipped_msgs = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert sorted(Path(s).name for s in ds.skipped) == sorted(bad)
    for n in bad:
        assert any(n in m for m in skipped_msgs), f"no warning names {n}"
    assert sorted(Path(s).name for s in ds.names) == sorted(good)
    assert ds.images.shape == (len(good), SIZE, SIZE, 3)
    bombs = [m for m in skipped_msgs if "bomb" in m]
    assert bombs and all("too large" in m or "megapixel" in m or "decompression" in m.lower() for m in bombs)
    count("images.folder.dataset", len(good) + len(bad))


def test_celeba_loader_skips_broken_images_and_keeps_labels_aligned(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    img_dir = root / "img_align_celeba"
    rng = np.random.default_rng(0)
    names, rows = [], []
    bad = broken_images()
    bad_names = {}
    for i in range(24):
        name = f"{i:06d}.jpg"
        if i % 4 == 3:
            key = sorted(bad)[i % len(bad)]
            blob = bad[key]
            bad_names[name] = key
        else:
            pic = np.full((SIZE, SIZE, 3), i * 10, np.uint8)
            blob = encode(Image.fromarray(pic), "PNG")  # a PNG named .jpg: content decides
        write_file(img_dir, name, blob)
        names.append(name)
        rows.append([int(v) for v in rng.choice([-1, 1], 3)])
    lines = [str(len(names)), "A B C"] + [f"{n} {' '.join(map(str, r))}" for n, r in zip(names, rows)]
    (root / "list_attr_celeba.txt").write_text("\r\n".join(lines) + "\r\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(f"celeba:{root}", SIZE, "all", cache_dir=tmp_path / "cache", workers=1)
    msgs = " ".join(str(w.message) for w in caught)
    assert sorted(ds.skipped) == sorted(bad_names)
    for n in bad_names:
        assert n in msgs
    kept = [n for n in names if n not in bad_names]
    assert ds.names == kept
    want = np.array([[1 if v > 0 else 0 for v in rows[names.index(n)]] for n in kept], np.uint8)
    np.testing.assert_array_equal(ds.labels, want)  # labels follow their images past the skips
    for j, n in enumerate(kept):
        assert abs(float(ds.images[j].mean()) - names.index(n) * 10) < 1.0
    count("images.celeba.dataset", len(names))


# ------------------------------------------------------------------ memory: no full decode
BOMB_SCRIPT = r"""
import json, resource, sys, warnings
from pathlib import Path
path = Path(sys.argv[1])
out = {}
import glowcore.ops.photo as photo, glowcore.data.sources as sources
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    photo.load_photo(path, 16, frame_face=False)
    out["photo"] = "loaded"
except ValueError as e:
    out["photo"] = str(e)
try:
    sources._decode_folder_image(path, 16)
    out["folder"] = "loaded"
except Exception as e:
    out["folder"] = f"{type(e).__name__}: {e}"
try:
    from glowcore.ops.inpaint import load_mask
    load_mask(path, 16, 16)
    out["mask"] = "loaded"
except Exception as e:
    out["mask"] = f"{type(e).__name__}: {e}"
out["base_kb"] = base
out["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", ["bomb_png_100000.png", "bomb_png_20001.png", "bomb_jpeg_60000.jpg", "bomb_gif_65535.gif"])
def test_decompression_bombs_are_refused_before_decoding(tmp_path: Path, name: str) -> None:
    p = write_file(tmp_path, name, broken_images()[name])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(p)], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for target in ("photo", "folder", "mask"):
        assert out[target] != "loaded", target
        if target == "photo":
            assert name in out[target], out[target]
        if target == "mask":  # a clear ValueError naming the file, like every other bad mask
            assert out[target].startswith("ValueError") and name in out[target], out[target]
        assert "too large" in out[target] or "megapixel" in out[target] or "decompression" in out[target].lower(), out[target]
    # a full decode of the claimed size would need gigabytes; the refusal costs (almost) nothing
    grown_mb = (out["peak_kb"] - out["base_kb"]) / 1024
    assert grown_mb < 64, f"memory grew by {grown_mb:.0f} MB while refusing {name}"
    count("images.bombs", 3)


def test_bombs_are_refused_even_with_pillows_limit_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another part of a program may lift ``PIL.Image.MAX_IMAGE_PIXELS``; our loaders keep their own limit."""
    from glowcore.ops.inpaint import load_mask

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    for name in ("bomb_png_100000.png", "bomb_gif_65535.gif", "bomb_jpeg_60000.jpg"):
        p = write_file(tmp_path, name, broken_images()[name])
        with pytest.raises(ValueError, match="megapixel|too large") as info:
            load_photo(p, SIZE, frame_face=False)
        assert name in str(info.value)
        with pytest.raises(ValueError, match="megapixel|decompression bomb"):
            gsources._decode_folder_image(p, SIZE)
        with pytest.raises(ValueError, match="too large") as info:
            load_mask(p, SIZE, SIZE)
        assert name in str(info.value)
        count("images.bombs", 3)
