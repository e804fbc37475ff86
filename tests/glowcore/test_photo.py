"""Loading and framing photos: formats, EXIF, big images, face framing, clear errors."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glowcore.io import imagefiles
from glowcore.ops import photo
from glowcore.ops.photo import frame_photo, load_photo, load_photos, open_image

from ..testdata import SHARED as DATA, needs_shared

FULL = DATA / "celeba_full_sample" / "img_align_celeba"
ALIGNED = DATA / "celeba64" / "img_align_celeba"
CELEBA_BOX = (15, 35, 163, 183)
SAMPLE = ["000001.jpg", "000652.jpg", "001278.jpg"]


def _jpeg(path: Path) -> Path:
    """A 178x218 JPEG (the size of a CelebA original) that needs no data set."""
    yy, xx = np.mgrid[0:218, 0:178]
    arr = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=95)
    return path


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@needs_shared("celeba_full_sample")
@needs_shared("celeba64")
def test_celeba_originals_are_framed_like_the_training_crop():
    names = sorted(p.name for p in FULL.glob("*.jpg"))[:24]
    ious, errors, centre_errors, found = [], [], [], 0
    for name in names:
        framed = frame_photo(FULL / name, 64)
        assert framed.image.shape == (64, 64, 3) and framed.image.dtype == np.uint8
        assert framed.source_size == (178, 218)
        if not framed.found:
            assert "no face found" in framed.message
            continue
        found += 1
        assert "face found" in framed.message
        ious.append(iou(framed.box, CELEBA_BOX))
        ref = np.asarray(Image.open(ALIGNED / name).convert("RGB")).astype(float)
        centre = Image.open(FULL / name).convert("RGB").resize((64, 64), Image.Resampling.BICUBIC, box=(0, 20, 178, 198))
        errors.append(np.abs(framed.image - ref).mean())
        centre_errors.append(np.abs(np.asarray(centre).astype(float) - ref).mean())
    assert found >= 20
    # the Haar box is noisy (about 10% in size), but on average the crop is CelebA's own
    assert np.mean(ious) > 0.8 and np.median(ious) > 0.82
    # and much closer to CelebA's crop than a plain centre crop is
    assert np.mean(errors) < 0.8 * np.mean(centre_errors)


@needs_shared("celeba_full_sample")
def test_a_small_face_in_a_big_photo_is_found_and_framed():
    face = Image.open(FULL / SAMPLE[0]).convert("RGB").resize((178 * 3, 218 * 3), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (2400, 1600), (90, 120, 70))
    canvas.paste(face, (1500, 300))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=92)
    framed = frame_photo(buf.getvalue(), 64)
    assert framed.found and framed.source_size == (2400, 1600)
    expected = (1500 + 3 * 15, 300 + 3 * 35, 1500 + 3 * 163, 300 + 3 * 183)
    assert iou(framed.box, expected) > 0.75


@needs_shared("celeba64")
def test_already_framed_faces_come_back_unchanged():
    for name in SAMPLE:
        ref = np.asarray(Image.open(ALIGNED / name).convert("RGB"))
        img, msg = load_photo(ALIGNED / name, 64)
        assert np.array_equal(img, ref), msg


def test_no_face_gives_a_centre_crop_and_says_so(tmp_path):
    rng = np.random.default_rng(0)
    arr = np.zeros((200, 300, 3), np.uint8)
    arr[:, :50] = 255  # left margin, cut away by the centre crop
    arr[:, 50:250] = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(arr).save(path)
    img, msg = load_photo(path, 32)
    assert "no face found" in msg and "centre crop" in msg and "noise.png" in msg
    expected = np.asarray(Image.fromarray(arr).resize((32, 32), Image.Resampling.BICUBIC, box=(50, 0, 250, 200)))
    assert np.abs(img.astype(int) - expected).max() <= 1
    assert img[:, 0].mean() < 200  # the white margin is not in the crop
    img2, msg2 = load_photo(_jpeg(tmp_path / "plain.jpg"), 32, frame_face=False)
    assert "framing off" in msg2 and img2.shape == (32, 32, 3)


def test_modes_are_converted(tmp_path):
    base = np.zeros((40, 40, 3), np.uint8)
    base[:, :20] = (200, 30, 30)
    rgb = Image.fromarray(base)
    cases = {
        "gray.png": rgb.convert("L"),
        "palette.gif": rgb.convert("P", palette=Image.Palette.ADAPTIVE),
        "rgba.webp": rgb.convert("RGBA"),
        "pic.bmp": rgb,
        "pic.jpg": rgb,
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
        img, _ = load_photo(tmp_path / name, 20, frame_face=False)
        assert img.shape == (20, 20, 3) and img.dtype == np.uint8, name
    # transparency is composited on white
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :5] = (0, 0, 255, 255)
    Image.fromarray(rgba).save(tmp_path / "t.png")
    img, _ = load_photo(tmp_path / "t.png", 10, frame_face=False)
    assert tuple(img[5, 8]) == (255, 255, 255) and tuple(img[5, 1]) == (0, 0, 255)
    # 16-bit grayscale is scaled, not clipped
    Image.fromarray(np.full((10, 10), 32768, np.uint16)).save(tmp_path / "deep.png")
    img, _ = load_photo(tmp_path / "deep.png", 10, frame_face=False)
    assert 120 <= int(img[0, 0, 0]) <= 135
    # one channel for gray models; PIL images and raw bytes are accepted
    g, _ = load_photo(rgb, 16, frame_face=False, channels=1)
    assert g.shape == (16, 16, 1)
    b, _ = load_photo((tmp_path / "pic.bmp").read_bytes(), 16, frame_face=False)
    assert b.shape == (16, 16, 3)


def test_exif_orientation_is_applied(tmp_path):
    upright = np.zeros((40, 60, 3), np.uint8)  # landscape: red left half, blue right half
    upright[:, :30] = (220, 0, 0)
    upright[:, 30:] = (0, 0, 220)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "sideways.jpg", exif=exif, quality=95)
    im = open_image(tmp_path / "sideways.jpg")
    assert im.size == (60, 40)
    arr = np.asarray(im).astype(int)
    assert arr[20, 5, 0] > 150 and arr[20, 5, 2] < 60  # red on the left
    assert arr[20, 55, 2] > 150 and arr[20, 55, 0] < 60  # blue on the right


def test_huge_photo_is_reduced_while_decoding(tmp_path):
    big = Image.new("RGB", (6000, 4000), (10, 200, 30))
    big.save(tmp_path / "big.jpg", quality=80)
    im = open_image(tmp_path / "big.jpg", max_side=1024)
    assert max(im.size) <= 1024 and im.size[0] > im.size[1]
    img, msg = load_photo(tmp_path / "big.jpg", 64)
    assert img.shape == (64, 64, 3) and "centre crop" in msg
    assert abs(int(img[32, 32, 1]) - 200) <= 3


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    Image.new("RGB", (300, 300)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(imagefiles, "MAX_PIXELS", 200 * 200)
    with pytest.raises(ValueError, match=r"bomb\.png.*(too large|decompression bomb)"):
        load_photo(tmp_path / "bomb.png", 64)
    monkeypatch.setattr(imagefiles, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)  # Pillow's own check (2x this)
    with pytest.raises(ValueError, match=r"bomb\.png.*too large"):
        load_photo(tmp_path / "bomb.png", 64)


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_photo(tmp_path / "missing.jpg", 64)
    (tmp_path / "notes.jpg").write_text("this is not an image")
    with pytest.raises(ValueError, match="notes.jpg.*not an image"):
        load_photo(tmp_path / "notes.jpg", 64)
    data = _jpeg(tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:200])
    with pytest.raises(ValueError, match="cut.jpg"):
        load_photo(tmp_path / "cut.jpg", 64)
    with pytest.raises(ValueError, match="folder"):
        load_photo(tmp_path, 64)
    with pytest.raises(ValueError, match="size"):
        load_photo(tmp_path / "whole.jpg", 0)


def test_load_photos_from_a_folder(tmp_path):
    for i in range(3):
        Image.new("RGB", (30, 20), (i * 80, 10, 10)).save(tmp_path / f"{i}.png")
    (tmp_path / "readme.txt").write_text("not listed")
    (tmp_path / "z_bad.png").write_text("broken")
    with pytest.raises(ValueError, match="z_bad.png"):
        load_photos(tmp_path, 8)
    arr, messages = load_photos(tmp_path, 8, skip_bad=True)
    assert arr.shape == (3, 8, 8, 3) and len(messages) == 4 and messages[-1].startswith("skipped")
    assert [int(a[4, 4, 0]) for a in arr] == [0, 80, 160]
