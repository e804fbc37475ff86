"""The latent-space commands: glow encode / edit / interpolate / inpaint / directions."""

import numpy as np
import pytest
from PIL import Image

from glowcore import load_model, save_model
from glowcore.cli.main import main
from glowcore.ops.video import probe_video

from .latent_helpers import gradient_images, saved_model_with_smiling, untrained_model


@pytest.fixture()
def model_dir(tmp_path):
    return saved_model_with_smiling(tmp_path, 0.1)


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i, img in enumerate(gradient_images(6, seed=1)):
        big = Image.fromarray(img).resize((40, 30), Image.Resampling.BICUBIC)  # not the model size: framed
        p = folder / f"p{i}.png"
        big.save(p)
        paths.append(p)
    return paths


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_encode_writes_latents_that_edit_and_interpolate_take(tmp_path, model_dir, photos, capsys):
    lat = tmp_path / "lat.npz"
    code, out, err = run(capsys, "encode", photos[0], photos[1], "--model", model_dir, "-o", lat, "--framed", tmp_path / "framed.png")
    assert code == 0, err
    assert "no face found" in out and "reconstruction max error" in out
    with np.load(lat, allow_pickle=False) as data:
        assert data["latents"].shape == (2, 16 * 16 * 3)
        assert list(data["names"]) == [str(photos[0]), str(photos[1])]
    assert Image.open(tmp_path / "framed.png").size[0] > 16
    code, out, err = run(capsys, "interpolate", lat, "seed:3", "--model", model_dir, "--frames", 8, "--fps", 10, "--out", tmp_path / "m.gif", "--scale", 2)
    assert code == 0, err
    info = probe_video(tmp_path / "m.gif")
    assert (info.frames, info.width) == (8, 32) and info.fps == pytest.approx(10.0)
    assert "8 frames" in out


def test_edit_writes_a_png_and_reports_the_change(tmp_path, model_dir, photos, capsys):
    out_png = tmp_path / "e.png"
    code, out, err = run(capsys, "edit", photos[0], "--model", model_dir, "--set", "Smiling=1.5", "-o", out_png, "--compare")
    assert code == 0, err
    assert Image.open(out_png).size == (2 * 16 + 3 * 2, 16 + 2 * 2)
    before, after = out.split("Smiling: ")[1].split()[0:3:2]
    assert float(after) - float(before) == pytest.approx(1.5, abs=0.02)
    code, out, err = run(capsys, "edit", "seed:1", "--model", model_dir, "--set", "Smiling=1", "--sweep", "-1", "0", "1", "-o", out_png)
    assert code == 0, err
    assert Image.open(out_png).size[0] == 3 * 16 + 4 * 2
    code, out, err = run(capsys, "edit", photos[0], "--model", model_dir, "--set", "Frowning=1", "-o", out_png)
    assert code == 2 and "unknown direction 'Frowning'" in err and "Smiling" in err
    with pytest.raises(SystemExit):
        main(["edit", str(photos[0]), "--model", str(model_dir), "--set", "Smiling"])
    code, out, err = run(capsys, "edit", "--list", "--model", model_dir)
    assert code == 0 and "Smiling" in out


def test_interpolate_mp4_and_errors(tmp_path, model_dir, photos, capsys):
    code, out, err = run(capsys, "interpolate", photos[0], photos[1], photos[2], "--model", model_dir, "--frames", 9, "--fps", 24,
                         "--out", tmp_path / "m.mp4", "--pingpong", "--ease", "ease-in-out")
    assert code == 0, err
    info = probe_video(tmp_path / "m.mp4")
    assert (info.frames, info.width, info.height) == (9, 64, 64) and info.fps == pytest.approx(24.0)
    code, out, err = run(capsys, "interpolate", photos[0], "--model", model_dir, "--out", tmp_path / "x.mp4")
    assert code == 2 and "two keyframes" in err
    code, out, err = run(capsys, "interpolate", photos[0], photos[1], "--model", model_dir, "--out", tmp_path / "x.avi")
    assert code == 2 and ".mp4" in err
    code, out, err = run(capsys, "interpolate", photos[0], tmp_path / "missing.jpg", "--model", model_dir, "--out", tmp_path / "x.mp4")
    assert code == 2 and "missing.jpg" in err
    assert not (tmp_path / "x.mp4").exists()


def test_inpaint_with_a_mask_painted_over_the_photo(tmp_path, model_dir, photos, capsys):
    mask = np.zeros((30, 40), np.uint8)
    mask[10:20, 15:25] = 255  # painted over the original 40x30 photo
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out_png = tmp_path / "done.png"
    code, out, err = run(capsys, "inpaint", photos[0], "--mask", tmp_path / "mask.png", "--model", model_dir, "--candidates", 2,
                         "--steps", 3, "-o", out_png, "--each", "--face-only")
    assert code == 0, err
    assert Image.open(out_png).size == (3 * 16 + 4 * 2, 16 + 4)
    assert (tmp_path / "done-1.png").is_file() and (tmp_path / "done-2.png").is_file()
    n = int(out.split("mask: ")[1].split()[0])
    assert 30 < n < 80  # the 10x10 painted square, cropped and scaled like the photo (30 -> 16 px)
    (tmp_path / "bad.png").write_text("no")
    code, out, err = run(capsys, "inpaint", photos[0], "--mask", tmp_path / "bad.png", "--model", model_dir, "-o", out_png)
    assert code == 2 and "bad.png" in err and "not an image" in err


def test_directions_from_examples_pca_and_labels(tmp_path, model_dir, photos, capsys, monkeypatch):
    pos, neg = tmp_path / "pos", tmp_path / "neg"
    pos.mkdir()
    neg.mkdir()
    for i, p in enumerate(photos):
        (pos if i < 3 else neg).joinpath(p.name).write_bytes(p.read_bytes())
    code, out, err = run(capsys, "directions", model_dir, "--positive", pos, "--negative", neg, "--name", "Mine")
    assert code == 0, err
    model = load_model(model_dir, device="cpu")
    assert set(model.directions) == {"Smiling", "Mine"} and model.direction_info["Mine"]["kind"] == "examples"
    code, out, err = run(capsys, "directions", "--model", model_dir, "--pca", 2, "--positive", pos, neg)
    assert code == 0, err
    assert {"pc1", "pc2"} <= set(load_model(model_dir, device="cpu").directions)
    # labelled folder data through glowcore.data.datasets (labels.csv), written to another model file
    data = tmp_path / "data"
    data.mkdir()
    rows = ["filename,Bright,Red"]
    for i, img in enumerate(gradient_images(10, seed=2)):
        Image.fromarray(img).save(data / f"{i}.png")
        rows.append(f"{i}.png,{int(img.mean() > 120)},{int(img[..., 0].mean() > img[..., 2].mean())}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("GLOW_EXPLORER_CACHE", str(tmp_path / "cache"))
    out_model = tmp_path / "with_labels.safetensors"
    code, out, err = run(capsys, "directions", model_dir, "--data", f"folder:{data}", "--split", "all", "--method", "logistic",
                         "--prefix", "lr_", "-o", out_model)
    assert code == 0, err
    labelled = load_model(out_model, device="cpu")
    assert {"lr_Bright", "lr_Red"} <= set(labelled.directions)
    assert labelled.direction_info["lr_Red"]["method"] == "logistic"
    code, out, err = run(capsys, "directions", out_model, "--list")
    assert code == 0 and "lr_Bright" in out and "examples" in out
    code, out, err = run(capsys, "directions", out_model, "--remove", "lr_Red")
    assert code == 0 and "lr_Red" not in load_model(out_model, device="cpu").directions
    code, out, err = run(capsys, "directions", model_dir, "--data", f"folder:{data}", "--split", "all", "--attributes", "Tall")
    assert code == 2 and "Tall" in err
    code, out, err = run(capsys, "directions", model_dir)
    assert code == 2 and "--data" in err
    code, out, err = run(capsys, "directions", model_dir, "--positive", pos, "--name", "x")
    assert code == 2 and "--negative" in err


def test_info_describes_the_noise_and_both_bounds_of_a_model_with_a_learned_dequantizer(tmp_path, capsys):
    plain = untrained_model()
    plain.metadata = {"metrics": {"val_bpd": 2.5}}
    save_model(plain, tmp_path / "plain")
    code, out, _ = run(capsys, "info", tmp_path / "plain")
    assert code == 0 and "noise:       uniform dequantisation" in out and "2.5000 (validation, 5-bit)" in out
    grown = plain.with_dequantizer(4)
    grown.metadata = {"metrics": {"val_bpd": 2.25, "val_bpd_uniform_noise": 2.375}}
    save_model(grown, tmp_path / "grown")
    code, out, _ = run(capsys, "info", tmp_path / "grown")
    assert code == 0 and "learned dequantisation, 4 wide" in out
    assert "2.2500 (validation, 5-bit; 2.3750 under uniform noise)" in out


def test_edit_keeps_to_the_bounds_unless_told_not_to(tmp_path, model_dir, capsys):
    model = load_model(model_dir, device="cpu")
    model.direction_info["Smiling"]["bounds"] = [None, 0.5]
    bounded_dir = tmp_path / "bounded"
    save_model(model, bounded_dir)
    coords = {}
    for extra in ([], ["--unbounded"]):
        code, out, err = run(capsys, "edit", "seed:1", "--model", bounded_dir, "--set", "Smiling=3", "-o", tmp_path / "b.png", *extra)
        assert code == 0, err
        before, after = (float(x) for x in out.split("Smiling: ")[1].split()[0:3:2])
        coords[bool(extra)] = (before, after)
    (b0, a0), (b1, a1) = coords[False], coords[True]
    assert b0 < 0.5 and b0 < a0 <= 0.5 + 0.01  # toward the bound, never past it
    assert a1 - b1 == pytest.approx(3.0, abs=0.02)  # --unbounded: the plain edit
    code, out, err = run(capsys, "edit", "--list", "--model", bounded_dir)
    assert code == 0 and "bounds: -, 0.5" in out
