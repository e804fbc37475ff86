"""Face alignment with rotation (glowcore.ops.align, glowcore.ops.alignnet).

The data tests need ../shared/data (CelebA originals); they skip with the reason where it is absent.
"""

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glowcore.ops import align as al
from glowcore.ops.alignnet import EYES, FRAME, apply, compose, invert, params_to_matrix, params_to_matrix_torch

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
FULL = DATA / "celeba_full_sample" / "img_align_celeba"
SMALL = DATA / "celeba64" / "img_align_celeba"
need_data = pytest.mark.skipif(not FULL.is_dir() or not SMALL.is_dir(), reason="needs ../shared/data (CelebA originals); not present here")
# CelebA's framing of a 178x218 aligned original: the box 15,35,163,183 resized to 64.
CELEBA = np.array([[FRAME / 148, 0, -15 * FRAME / 148], [0, FRAME / 148, -35 * FRAME / 148]])


def busy(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)).copy()


def test_transform_helpers_agree():
    p = (0.3, -0.2, 4.0, -7.5)
    m = params_to_matrix(*p)
    mt = params_to_matrix_torch(torch.tensor([p], dtype=torch.float64))[0].numpy()
    assert np.allclose(m[:2], mt)
    assert np.allclose(apply(params_to_matrix(0, 0.5, 0, 0), [[FRAME / 2, FRAME / 2]]), [[FRAME / 2, FRAME / 2]])  # about the centre
    q = params_to_matrix(-0.1, 0.3, 2, 1)[:2]
    assert np.allclose(compose(invert(q), q), np.eye(3)[:2])
    assert np.allclose(apply(compose(m, q), [[3, 4]]), apply(m, apply(q, [[3, 4]])))


def test_render_face_follows_the_transform():
    """A 64x64 image enlarged 4x and turned 30 degrees in a larger photo comes back through the
    known transform (continuous coordinates, pixel centres at +0.5)."""
    import cv2

    face = busy(64, 64, 1)
    a = math.radians(30)
    r = 4 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    fwd = np.hstack([r, [[200.0], [150.0]]])  # frame -> photo
    photo = cv2.warpAffine(face, al.warp_matrix(invert(fwd)), (500, 450), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101)
    out = al.render_face(photo, invert(fwd), 64)
    err = np.abs(out.astype(float) - face)[4:-4, 4:-4].mean()
    assert err < 6.0, err
    shifted = al.render_face(photo, compose(np.array([[1, 0, 1.0], [0, 1, 0]]), invert(fwd)), 64)  # one frame pixel off
    assert np.abs(shifted.astype(float) - face)[4:-4, 4:-4].mean() > 2 * err


def test_bundled_network_loads_and_is_small():
    root = Path(al.__file__).resolve().parents[2] / "assets" / "models" / "align"
    assert (root / "align.safetensors").stat().st_size < 600_000
    net = al.load_align_net()
    with torch.inference_mode():
        p = net.predict(torch.rand(2, 3, 64, 64))
    assert p.shape == (2, 4) and torch.isfinite(p).all()


def test_no_face_small_face_bad_box_are_one_line_errors():
    photo = busy(240, 320)
    with pytest.raises(ValueError, match=r"^me\.png: no face found in the 320x240 photo.*by hand"):
        al.align(photo, name="me.png")
    with pytest.raises(ValueError, match=r"too small \(20 px across; at least 40"):
        al.align(photo, box=(10, 10, 20, 20), name="me.png")
    with pytest.raises(ValueError, match=r"not a face box .* inside the 320x240 photo"):
        al.align(photo, box=(400, 10, 50, 50), name="me.png")


def test_given_box_gives_a_framed_face_and_landmarks():
    photo = busy(240, 320)
    out = al.align(photo, 16, box=(100, 60, 90, 90))
    assert out.face.shape == (16, 16, 3) and out.face.dtype == np.uint8
    assert out.photo_size == (320, 240) and out.transform.shape == (2, 3)
    assert "face box given" in out.message
    assert set(out.landmarks) == {"left_eye", "right_eye", "mouth"}
    assert np.allclose(apply(out.transform, [out.landmarks["left_eye"]]), [EYES[0]])


def test_several_faces_use_the_largest_or_the_one_asked_for(monkeypatch):
    boxes = [(150, 50, 120, 120), (10, 10, 60, 60)]
    monkeypatch.setattr(al, "detect_faces", lambda gray: list(boxes))
    photo = busy(300, 400)
    out = al.align(photo, steps=0, name="two.jpg")
    assert out.box[2] == pytest.approx(120) and "2 faces; used the largest" in out.message
    out = al.align(photo, steps=0, face=1, name="two.jpg")
    assert out.box[0] == pytest.approx(10) and "number 1" in out.message
    with pytest.raises(ValueError, match="face 5 asked for, but 2 found"):
        al.align(photo, face=5, name="two.jpg")


@pytest.mark.parametrize("kind", ["cmyk", "16bit", "rgba", "exif"])
def test_read_photo_converts_awkward_photos(kind, tmp_path):
    rgb = busy(60, 80)
    buf = io.BytesIO()
    if kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG")
    elif kind == "16bit":
        Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(buf, "PNG")
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, np.full((60, 80), 128, np.uint8)])).save(buf, "PNG")
    else:
        im = Image.fromarray(rgb)
        exif = im.getexif()
        exif[0x0112] = 6  # shown turned 90 degrees
        im.save(buf, "JPEG", exif=exif)
    arr = al.read_photo(buf.getvalue())
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert arr.shape[:2] == ((80, 60) if kind == "exif" else (60, 80))
    if kind == "16bit":
        assert np.abs(arr[..., 0].astype(int) - rgb[..., 0]).max() <= 1
    if kind == "rgba":  # composited on white: lighter than the photo
        assert arr.astype(int).mean() > rgb.astype(int).mean()


def _copy(orig, angle, scale, offset):
    import cv2

    a = math.radians(angle)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    h, w = orig.shape[:2]
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], float) @ r.T
    t = -corners.min(0) + offset
    size = corners.max(0) - corners.min(0) + 2 * np.asarray(offset)
    amap = np.hstack([r, t[:, None]])
    img = cv2.warpAffine(orig, al.warp_matrix(invert(amap)), tuple(int(v) for v in size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return img, amap


def _eye_error(m, amap):
    true = compose(CELEBA, invert(amap))
    return float(np.linalg.norm(apply(m, apply(invert(true), EYES)) - np.asarray(EYES), axis=1).max())


@need_data
def test_alignment_undoes_known_transforms_of_celeba_originals():
    names = sorted(p.name for p in FULL.glob("*.jpg"))[::30]  # 10 originals
    cases = [(-20, 0.5, (10, 30)), (15, 1.0, (60, 5)), (20, 2.5, (0, 40)), (-12, 4.0, (30, 30))]
    errs = []
    for i, n in enumerate(names):
        orig = np.asarray(Image.open(FULL / n).convert("RGB"))
        angle, scale, offset = cases[i % len(cases)]
        img, amap = _copy(orig, angle, scale, offset)
        try:
            m = al.align(img).transform
        except ValueError:
            errs.append(math.inf)
            continue
        errs.append(_eye_error(m, amap))
    errs = np.array(errs)
    assert (errs <= 2.0).sum() >= 9, errs  # eye centres within 2 px at 64x64


@need_data
def test_untouched_original_comes_back_as_celebas_own_face():
    n = sorted(p.name for p in FULL.glob("*.jpg"))[7]
    orig = np.asarray(Image.open(FULL / n).convert("RGB"))
    out = al.align(orig)
    assert _eye_error(out.transform, np.hstack([np.eye(2), np.zeros((2, 1))])) <= 2.0
    ref = np.asarray(Image.open(SMALL / n).convert("RGB")).astype(float)
    assert np.abs(out.face.astype(float) - ref).mean() < 12
