"""Morphs at a chosen size: the photo's own detail at its keyframe, the model's frames between."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import glowcore
from glowcore.ops.align import align, render_face
from glowcore.cli.main import main
from glowcore.base.images import to_uint8
from glowcore.ops.interpolate import interpolation_times
from glowcore.ops.morphsize import detail_weights, photo_keyframe, resize, sized_frames
from glowcore.ops.video import probe_video


@pytest.fixture(scope="module")
def model():
    return glowcore.load_model(device="cpu")


def _photo(model, seed: int) -> np.ndarray:
    """A model face enlarged 4x into a larger grey photo (the face detector finds it)."""
    face = to_uint8(model.sample(1, 0.5, seed=seed))[0]
    canvas = np.full((300, 320, 3), 90, np.uint8)
    canvas[20:276, 30:286] = np.asarray(Image.fromarray(face).resize((256, 256), Image.Resampling.BICUBIC))
    return canvas


def test_detail_weights_hold_one_photo_at_a_time() -> None:
    u = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    wa, wb = detail_weights(np.zeros(7, int), np.ones(7, int), u)
    assert wa[0] == 1.0 and wb[-1] == 1.0 and wa[-1] == 0.0 and wb[0] == 0.0
    assert np.all(np.diff(wa) <= 0) and np.all(np.diff(wb) >= 0)
    assert np.all((wa == 0) | (wb == 0))  # never two photos' detail in one frame
    assert wa[3] == wb[3] == 0.0  # half-way: the model's frame alone
    with pytest.raises(ValueError, match="reach"):
        detail_weights(np.zeros(1, int), np.zeros(1, int), np.zeros(1), reach=0.8)


def test_sized_frames_add_detail_near_photos_and_clip() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    d0 = np.full((32, 32, 3), 300.0, np.float32)  # pushes every colour out of range: clipped
    d2 = rng.normal(0, 20, (32, 32, 3)).astype(np.float32)
    src, dst, u = interpolation_times(3, 5)  # frames at u = 0, .5, 0 (keyframe 1), .5, 1 (keyframe 2)
    frames5 = [frames[0], frames[1], frames[1], frames[2], frames[2]]
    out = list(sized_frames(frames5, src, dst, u, [d0, None, d2], 32))
    assert all(o.shape == (32, 32, 3) and o.dtype == np.uint8 for o in out)
    assert (out[0] == 255).all()  # clipped, never wrapped round to dark
    assert np.array_equal(out[1], np.clip(np.rint(resize(frames[1], 32)), 0, 255).astype(np.uint8))  # half-way: no detail
    assert np.array_equal(out[2], out[1])  # keyframe 1 is not a photo
    assert np.array_equal(out[4], np.clip(np.rint(resize(frames[2], 32) + d2), 0, 255).astype(np.uint8))
    with pytest.raises(ValueError, match="size"):
        list(sized_frames(frames5, src, dst, u, [None] * 3, 4000))


def test_a_photo_keyframe_comes_back_as_the_aligned_photo_at_full_size(model) -> None:
    photo = _photo(model, 3)
    key = photo_keyframe(model, photo, 192, name="p.png")
    assert "face found" in key.message and key.detail.shape == (192, 192, 3)
    recon = to_uint8(model.decode(key.latent))[0]
    first = next(sized_frames([recon], np.zeros(1, int), np.zeros(1, int), np.zeros(1), [key.detail], 192))
    want = render_face(photo, align(photo).transform, 192)
    assert np.abs(first.astype(int) - want.astype(int)).max() <= 1
    # and sharper than the model's 64-px face enlarged (gradient energy)
    def energy(a):
        g = a.astype(float).mean(2)
        return float((np.diff(g, axis=0) ** 2).mean() + (np.diff(g, axis=1) ** 2).mean())
    assert energy(first) > 1.2 * energy(np.clip(resize(recon, 192), 0, 255))


def test_cli_morph_at_a_chosen_size(model, tmp_path, capsys) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(_photo(model, 3)).save(a)
    Image.fromarray(_photo(model, 4)).save(b)
    out = tmp_path / "m.mp4"
    assert main(["interpolate", str(a), "seed:2", str(b), "--size", "96", "--frames", "6", "-o", str(out)]) == 0
    so = capsys.readouterr().out
    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (96, 96, 6)
    assert "with the detail of 2 photo(s)" in so
    for argv, msg in (
        (["--size", "8"], "from 16 to 1024"),
        (["--size", "96", "--scale", "2"], "not both"),
        (["--size", "96", "--no-frame"], "leave out --no-frame"),
    ):
        assert main(["interpolate", str(a), str(b), "-o", str(tmp_path / "x.mp4"), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "x.mp4").exists()
