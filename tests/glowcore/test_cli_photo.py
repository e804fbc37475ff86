"""glow edit on a photo larger than the model: the full-size photo comes back."""

import numpy as np
import pytest
from PIL import Image

from glowcore.cli.main import main

from .latent_helpers import saved_model_with_smiling
from .test_align import busy
from .test_cli_ops import run


@pytest.fixture()
def model_dir(tmp_path):
    return saved_model_with_smiling(tmp_path, 0.3)


@pytest.fixture()
def photo(tmp_path):
    p = tmp_path / "photo.png"
    Image.fromarray(busy(150, 200, seed=5)).save(p)
    return p


def test_edit_writes_the_full_size_photo_with_the_background_untouched(tmp_path, model_dir, photo, capsys):
    out = tmp_path / "out.png"
    code, so, se = run(capsys, "edit", photo, "--model", model_dir, "--set", "Smiling=1.0", "--box", "60,30,80,80", "-o", out)
    assert code == 0, se
    res, src = np.asarray(Image.open(out)), np.asarray(Image.open(photo))
    assert res.shape == src.shape  # the photo's own size, not the model's 16 px
    assert np.array_equal(res[:, :10], src[:, :10]) and np.array_equal(res[:, -10:], src[:, -10:])  # far from the face
    assert (res != src).any()
    assert "face box given" in se and "200x150" in so


def test_edit_keeps_the_photos_orientation_and_face_only_writes_the_model_face(tmp_path, model_dir, capsys):
    im = Image.fromarray(busy(150, 200, seed=6))
    exif = im.getexif()
    exif[0x0112] = 6  # shown turned: 150 wide, 200 high
    src = tmp_path / "turned.jpg"
    im.save(src, "JPEG", exif=exif)
    out = tmp_path / "out.jpg"
    code, so, se = run(capsys, "edit", src, "--model", model_dir, "--set", "Smiling=1", "--box", "30,50,80,80", "-o", out)
    assert code == 0, se
    assert Image.open(out).size == (150, 200)
    face = tmp_path / "face.png"
    code, so, se = run(capsys, "edit", src, "--model", model_dir, "--set", "Smiling=1", "--face-only", "-o", face)
    assert code == 0, se
    assert Image.open(face).size == (16 + 2 * 2, 16 + 2 * 2)  # the 16-px face in a grid, as before


def test_no_face_and_overwriting_the_input_are_refused(tmp_path, model_dir, photo, capsys):
    before = photo.read_bytes()
    out = tmp_path / "never.png"
    code, so, se = run(capsys, "edit", photo, "--model", model_dir, "--set", "Smiling=1", "-o", out)
    assert code == 2 and "no face found" in se and "--box" in se and se.count("\n") == 1
    assert not out.exists()
    for target in (photo, tmp_path / "." / "photo.png"):
        code, so, se = run(capsys, "edit", photo, "--model", model_dir, "--set", "Smiling=1", "--box", "60,30,80,80", "-o", target)
        assert code == 2 and "would destroy the input" in se
    code, so, se = run(capsys, "edit", photo, "--model", model_dir, "--set", "Smiling=1", "--face-only", "-o", photo)
    assert code == 2 and "would destroy the input" in se
    assert photo.read_bytes() == before
    with pytest.raises(SystemExit):
        main(["edit", str(photo), "--model", str(model_dir), "--set", "Smiling=1", "--box", "1,2,3"])


def test_inpaint_with_a_full_size_mask_writes_the_full_size_photo(tmp_path, model_dir, photo, capsys):
    mask = np.zeros((150, 200), np.uint8)
    mask[60:90, 90:120] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    out = tmp_path / "filled.png"
    code, so, se = run(capsys, "inpaint", photo, "--mask", mask_path, "--model", model_dir, "--box", "60,30,80,80", "--candidates", 2, "--steps", 2, "--each", "-o", out)
    assert code == 0, se
    res, src = np.asarray(Image.open(out)), np.asarray(Image.open(photo))
    assert res.shape == src.shape and np.asarray(Image.open(tmp_path / "filled-2.png")).shape == src.shape
    assert np.array_equal(res[:, :40], src[:, :40]) and np.array_equal(res[:20], src[:20])  # far from the hole
    assert (res[65:85, 95:115] != src[65:85, 95:115]).any()
    assert "model's resolution" in so
    code, so, se = run(capsys, "inpaint", photo, "--mask", mask_path, "--model", model_dir, "--box", "60,30,80,80", "-o", photo)
    assert code == 2 and "would destroy the input" in se


def test_a_folder_of_photos_gives_a_folder_of_edits(tmp_path, model_dir, capsys, monkeypatch):
    import glowcore.ops.align as al

    # the busy test photos hold no real face: every large one gets a face box at (60, 30, 80, 80)
    monkeypatch.setattr(al, "locate", lambda photo, *a, **k: ((60.0, 30.0, 80.0, 80.0), al._coarse((60, 30, 80, 80)), [(60.0, 30.0, 80.0, 80.0)]))
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(busy(150, 200, seed=7)).save(src / "a.png")
    Image.fromarray(busy(16, 16, seed=8)).save(src / "sub" / "b.jpg")  # model-size: edited as a face
    (src / "c.png").write_bytes(b"not a png")  # fails alone; the rest go on
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    code, so, se = run(capsys, "edit", src, "--model", model_dir, "--set", "Smiling=1", "-o", out)
    assert code == 1
    res, orig = np.asarray(Image.open(out / "a.png")), np.asarray(Image.open(src / "a.png"))
    assert res.shape == orig.shape and np.array_equal(res[:, :10], orig[:, :10]) and (res != orig).any()
    assert Image.open(out / "sub" / "b.jpg").format == "JPEG"
    assert not (out / "c.png").exists()
    assert "edited 2 of 3 photos" in so and "1 not edited" in so
    assert [ln for ln in se.splitlines() if "not edited" in ln] == [ln for ln in se.splitlines() if "c.png" in ln]
    assert sum("c.png" in ln for ln in se.splitlines()) == 1 and se.count("c.png") == 1  # named once
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # the inputs untouched
    for target, msg in ((src, "must not be the input folder"), (src / "sub", "must not be the input folder or inside it"),
                        (tmp_path / "x.png", "give -o OUT_FOLDER")):
        code, so, se = run(capsys, "edit", src, "--model", model_dir, "--set", "Smiling=1", "-o", target)
        assert code == 2 and msg in se and se.count("\n") == 1, se
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before


def test_edit_spreads_the_change_past_the_mask_by_default_and_face_mask_keeps_it_inside(tmp_path, model_dir, photo, capsys):
    outs = {}
    for flag in ("", "--spread", "--face-mask"):
        out = tmp_path / f"out{flag}.png"
        code, so, se = run(capsys, "edit", photo, "--model", model_dir, "--set", "Smiling=1.0", "--box", "60,30,80,80", "-o", out, *filter(None, [flag]))
        assert code == 0, se
        outs[flag] = np.asarray(Image.open(out)).astype(int)
    assert np.array_equal(outs[""], outs["--spread"])
    src = np.asarray(Image.open(photo)).astype(int)
    plain, spread = np.abs(outs["--face-mask"] - src).sum(2) > 0, np.abs(outs[""] - src).sum(2) > 0
    assert spread.sum() > plain.sum() and (spread | ~plain).all()  # wider, and covers the masked paste
    assert not spread[:, :5].any() and not spread[:, -5:].any()  # still far from the face: untouched
    with pytest.raises(SystemExit):
        run(capsys, "edit", photo, "--model", model_dir, "--set", "Smiling=1.0", "-o", tmp_path / "x.png", "--spread", "--face-mask")
    assert "not allowed with" in capsys.readouterr().err


def test_a_folder_of_photos_with_a_folder_of_masks_gives_a_folder_of_fills(tmp_path, model_dir, capsys, monkeypatch):
    import glowcore.ops.align as al

    monkeypatch.setattr(al, "locate", lambda photo, *a, **k: ((60.0, 30.0, 80.0, 80.0), al._coarse((60, 30, 80, 80)), [(60.0, 30.0, 80.0, 80.0)]))
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    masks.mkdir()
    (masks / "sub").mkdir()
    hole = np.zeros((150, 200), np.uint8)
    hole[60:90, 90:120] = 255
    Image.fromarray(busy(150, 200, seed=9)).save(src / "a.jpg")
    Image.fromarray(hole).save(masks / "a.png")  # same name, another suffix
    Image.fromarray(busy(150, 200, seed=10)).save(src / "sub" / "b.png")
    Image.fromarray(hole).save(masks / "sub" / "b.png")
    Image.fromarray(busy(150, 200, seed=11)).save(src / "c.png")  # no mask: one line, the rest go on
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, so, se = run(capsys, "inpaint", src, "--mask", masks, "--model", model_dir, "--candidates", 1, "--steps", 2, "-o", out)
    assert code == 1, se
    for name, orig in (("a.png", src / "a.jpg"), ("sub/b.png", src / "sub" / "b.png")):
        res, photo = np.asarray(Image.open(out / name)).astype(int), np.asarray(Image.open(orig)).astype(int)
        assert res.shape == photo.shape and np.array_equal(res[:, :40], photo[:, :40])  # far from the hole
        assert (res[65:85, 95:115] != photo[65:85, 95:115]).any()
    assert not (out / "c.png").exists() and "filled 2 of 3 photos" in so
    assert [ln for ln in se.splitlines() if "not filled" in ln] == [ln for ln in se.splitlines() if "c.png" in ln]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents} == before
    code, so, se = run(capsys, "inpaint", src, "--mask", masks / "a.png", "--model", model_dir, "-o", tmp_path / "o2")
    assert code == 2 and "--mask must name a folder of masks" in se and se.count("\n") == 1
