"""What a hostile try-out found (issue 17): commands never destroy an input or the installed
package's files, never report a wrong or corrupt result as success, and answer bad values with one
line (exit status 2), not a traceback."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import glowcore.io.checkpoint as ckpt
from glowcore import load_model, save_model
from glowcore.cli.main import main

from .latent_helpers import gradient_images, saved_model_with_smiling, untrained_model

BUNDLED = ckpt.bundled_models_dir()


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"glow {command}: error: "), err
    return lines[0]


def digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.fixture()
def model_dir(tmp_path):
    return saved_model_with_smiling(tmp_path, 0.1)


@pytest.fixture()
def photo(tmp_path):
    p = tmp_path / "same.png"
    Image.fromarray(gradient_images(1, seed=2)[0]).resize((48, 48)).save(p)
    return p


@pytest.fixture()
def package_copy(tmp_path, monkeypatch):
    """The bundled models, copied: the commands see the copy as the installed package's."""
    copy = tmp_path / "package" / "models"
    shutil.copytree(BUNDLED, copy)
    monkeypatch.setattr(ckpt, "bundled_models_dir", lambda: copy)
    return copy


# ------------------------------------------------------------------------ 1. the bundled model
def test_directions_remove_never_rewrites_the_bundled_model(tmp_path, package_copy, capsys):
    before = digest(package_copy / "celeba64")
    code, _, err = run(capsys, "directions", "--remove", "Smiling")
    assert code == 2 and "installed package" in one_error_line(err, "directions") and "--out" in err
    code, _, err = run(capsys, "directions", "--remove", "Smiling", "--out", package_copy / "celeba64")
    assert code == 2 and "installed package" in err
    assert digest(package_copy / "celeba64") == before
    code, out, err = run(capsys, "directions", "--remove", "Smiling", "--out", tmp_path / "mine")
    assert code == 0, err
    assert len(load_model(tmp_path / "mine", device="cpu").directions) == 39
    assert digest(package_copy / "celeba64") == before


def test_no_command_writes_into_the_installed_package(package_copy, capsys):
    code, _, err = run(capsys, "sample", "-n", "1", "-o", package_copy / "celeba64" / "grid.png")
    assert code == 2 and "installed package" in one_error_line(err, "sample")
    assert not (package_copy / "celeba64" / "grid.png").exists()


# ----------------------------------------------------------------- 2. an output that is an input
def _gif(path: Path) -> Path:
    frames = [Image.fromarray(a).resize((48, 48)) for a in gradient_images(2, seed=4)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


@pytest.mark.parametrize("case", ["edit", "edit-hardlink", "edit-symlink", "inpaint-image", "inpaint-mask", "interpolate", "encode-framed"])
def test_an_output_that_is_an_input_is_refused(tmp_path, model_dir, photo, capsys, case):
    mask = tmp_path / "mask.png"
    m = np.zeros((48, 48), np.uint8)
    m[10:30, 10:30] = 255
    Image.fromarray(m).save(mask)
    gif = _gif(tmp_path / "a.gif")
    target = photo
    if case == "edit":
        argv = ["edit", photo, "--set", "Smiling=1", "-o", photo]
    elif case == "edit-hardlink":
        os.link(photo, tmp_path / "link.png")
        argv = ["edit", photo, "--set", "Smiling=1", "-o", tmp_path / "link.png"]
    elif case == "edit-symlink":
        os.symlink(photo, tmp_path / "sym.png")
        argv = ["edit", photo, "--set", "Smiling=1", "-o", tmp_path / "sym.png"]
    elif case == "inpaint-image":
        argv = ["inpaint", photo, "--mask", mask, "-o", photo, "--candidates", 1, "--steps", 1]
    elif case == "inpaint-mask":
        target = mask
        argv = ["inpaint", photo, "--mask", mask, "-o", mask, "--candidates", 1, "--steps", 1]
    elif case == "interpolate":
        target = gif
        argv = ["interpolate", gif, photo, "--frames", 2, "-o", gif]
    else:
        argv = ["encode", photo, "-o", tmp_path / "z.npz", "--framed", photo]
    before = target.read_bytes()
    code, _, err = run(capsys, *argv, "--model", model_dir, "--no-frame" if case != "encode-framed" else "--no-frame")
    assert code == 2 and "is also an input" in one_error_line(err, argv[0])
    assert target.read_bytes() == before


def test_overwrite_input_allows_it(model_dir, photo, capsys):
    code, _, err = run(capsys, "edit", photo, "--set", "Smiling=1", "-o", photo, "--model", model_dir, "--no-frame", "--overwrite-input")
    assert code == 0, err
    assert Image.open(photo).size == (20, 20)  # the edited 16x16 face with its 2-pixel border


# ------------------------------------------------- 5. silent wrong output: refused or an error
@pytest.mark.parametrize("t, message", [("nan", "must be a finite number"), ("inf", "must be a finite number"),
                                        ("1e30", "between 0 and 4"), ("-1", "between 0 and 4")])
def test_bad_temperatures_are_refused(tmp_path, model_dir, capsys, t, message):
    code, _, err = run(capsys, "sample", "--model", model_dir, "-t", t, "-o", tmp_path / "s.png")
    assert code == 2 and message in one_error_line(err, "sample")
    assert not (tmp_path / "s.png").exists()


def test_edit_amounts_far_out_are_refused(tmp_path, model_dir, capsys):
    with pytest.raises(SystemExit) as e:
        main(["edit", "seed:1", "--model", str(model_dir), "--set", "Smiling=1e30", "-o", str(tmp_path / "e.png")])
    assert e.value.code == 2 and "from -100 to 100" in capsys.readouterr().err


def _blown_up(tmp_path: Path) -> Path:
    """Finite weights whose reverse pass overflows: the last ActNorm scales by exp(100)."""
    model = untrained_model()
    sd = model.state_dict()
    key = next(k for k in sd if k.endswith("logs"))
    sd[key] = torch.full_like(sd[key], -100.0)
    model.load_state_dict(sd)
    path = tmp_path / "blown"
    save_model(model, path)
    return path


def test_non_finite_results_are_errors_not_grey_images(tmp_path, capsys):
    path = _blown_up(tmp_path)
    code, _, err = run(capsys, "sample", "--model", path, "-n", "2", "-o", tmp_path / "s.png")
    assert code == 2 and "weights blow up" in one_error_line(err, "sample")
    assert not (tmp_path / "s.png").exists()
    code, _, err = run(capsys, "edit", "seed:1", "--set", "Smiling=1", "--model", path, "-o", tmp_path / "e.png")
    assert code == 2 and "weights blow up" in one_error_line(err, "edit")


def test_eval_of_non_finite_bits_per_dim_is_an_error(tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i, img in enumerate(gradient_images(12, seed=3)):
        Image.fromarray(img).save(folder / f"{i}.png")
    model = untrained_model()
    sd = model.state_dict()
    key = next(k for k in sd if k.endswith("logs"))
    sd[key] = torch.full_like(sd[key], 100.0)  # forward: exp(100) overflows float32
    model.load_state_dict(sd)
    save_model(model, tmp_path / "blown")
    code, out, err = run(capsys, "eval", "--model", tmp_path / "blown", "--data", f"folder:{folder}", "--split", "all",
                         "--cache-dir", tmp_path / "c")
    assert code == 2 and "not finite" in one_error_line(err.strip().splitlines()[-1], "eval")  # (after the progress bars)
    assert "bits/dim" not in out


# -------------------------------------------------------------- 6. videos: fps bounded, read back
@pytest.mark.parametrize("fps, suffix", [("1e9", "mp4"), ("0.001", "gif"), ("1e300", "mp4"), ("1e-300", "gif"), ("nan", "webp")])
def test_absurd_frame_rates_are_refused(tmp_path, model_dir, capsys, fps, suffix):
    code, _, err = run(capsys, "interpolate", "seed:1", "seed:2", "--model", model_dir, "--frames", 3, "--fps", fps, "-o", tmp_path / f"x.{suffix}")
    assert code == 2 and "--fps must be" in one_error_line(err, "interpolate")
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob(".x*"))


def test_the_fastest_mp4_allowed_decodes_every_frame(tmp_path, model_dir, capsys):
    import av

    code, _, err = run(capsys, "interpolate", "seed:1", "seed:2", "--model", model_dir, "--frames", 5, "--fps", 240, "-o", tmp_path / "x.mp4")
    assert code == 0, err
    with av.open(str(tmp_path / "x.mp4")) as box:
        assert sum(1 for _ in box.decode(video=0)) == 5


# -------------------------------------------------------------- 7. one line, never a traceback
@pytest.mark.parametrize("argv, message", [
    (["sample", "--scale", "100000"], "too big"),
    (["sample", "-n", "10000000"], "--num x temperatures must be from 1 to 4096"),
    (["edit", "seed:99999999999999999999999", "--set", "Smiling=1"], "must be an integer from 0 to"),
    (["sample", "-o", "grid.txt"], "must end in .png"),
])
def test_absurd_values_get_one_line(tmp_path, model_dir, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv, "--model", model_dir)
    assert code == 2 and message in one_error_line(err, argv[0])


def test_inpaint_candidates_are_bounded(tmp_path, model_dir, photo, capsys):
    code, _, err = run(capsys, "inpaint", photo, "--mask", photo, "--candidates", 100000, "--model", model_dir, "-o", tmp_path / "o.png")
    assert code == 2 and "--candidates must be from 1 to 64" in one_error_line(err, "inpaint")


def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path, model_dir, capsys, monkeypatch):
    out = tmp_path / "s.png"
    out.write_bytes(b"the user's old grid")

    def full(_fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run(capsys, "sample", "--model", model_dir, "-n", "1", "-o", out)
    line = one_error_line(err, "sample")
    assert code == 2 and "No space left on device" in line and str(out) in line
    assert out.read_bytes() == b"the user's old grid" and not list(tmp_path.glob(".s.png*"))


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_train_out_that_cannot_be_a_folder_is_one_line(tmp_path, capsys, where):
    from ..testdata import fashion_spec

    (tmp_path / "f").write_text("a file")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "run"
    code, _, err = run(capsys, "train", "--data", fashion_spec(), "--out", out, "--levels", 2, "--steps", 1, "--hidden", 4,
                       "--max-steps", 1, "--no-progress", "--cache-dir", tmp_path / "c")
    assert code == 2 and str(out) in one_error_line(err, "train")
    assert (tmp_path / "f").read_text() == "a file"


# ------------------------------------------------------------------------------- 8. smaller ones
def test_jpg_output_is_jpeg(tmp_path, model_dir, capsys):
    code, _, err = run(capsys, "sample", "--model", model_dir, "-n", 2, "-o", tmp_path / "x.jpg")
    assert code == 0, err
    assert (tmp_path / "x.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(tmp_path / "x.jpg") as im:
        assert im.format == "JPEG"


def _mask(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return path


def test_masks_that_would_be_stretched_or_fill_nothing_are_refused(tmp_path, model_dir, photo, capsys):
    base = ["inpaint", photo, "--model", model_dir, "--no-frame", "--candidates", 1, "--steps", 1, "-o", tmp_path / "o.png"]
    wide = np.zeros((24, 96)); wide[:, :40] = 255  # noqa: E702
    code, _, err = run(capsys, *base, "--mask", _mask(tmp_path / "wide.png", wide))
    assert code == 2 and "stretched" in one_error_line(err, "inpaint")
    code, _, err = run(capsys, *base, "--mask", _mask(tmp_path / "black.png", np.zeros((48, 48))))
    assert code == 2 and "nothing to fill" in one_error_line(err, "inpaint")
    grey = np.full((48, 48), 127); grey[:8] = 255  # noqa: E702
    code, out, err = run(capsys, *base, "--mask", _mask(tmp_path / "grey.png", grey))
    assert code == 0 and "mid-grey; gray >= 128 is filled, darker is kept" in err
    assert "mask: 48 of 256 pixels to fill" in out  # the 8 white rows of 48 (resized to 16): the 127 grey is kept


def test_a_pipe_given_as_an_image_is_refused_at_once(tmp_path, model_dir, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "edit", fifo, "--set", "Smiling=1", "--model", model_dir, "-o", tmp_path / "o.png")
    assert code == 2 and "not a regular file" in one_error_line(err, "edit")
    code, _, err = run(capsys, "inpaint", tmp_path / "none.png", "--mask", fifo, "--model", model_dir, "-o", tmp_path / "o.png")
    assert code == 2


def test_sigterm_in_training_is_not_success(tmp_path, capsys, monkeypatch):
    import glowcore.training.train as gtrain

    from ..testdata import fashion_spec

    real = gtrain.train

    sent = []

    def terminate_once(done, total, msg):
        if done >= 2 and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGTERM)

    def terminated_after_two_steps(cfg, **kw):
        kw["progress"] = terminate_once
        return real(cfg, **kw)

    monkeypatch.setattr(gtrain, "train", terminated_after_two_steps)
    code, out, err = run(capsys, "train", "--data", fashion_spec(), "--out", tmp_path / "run", "--levels", 2, "--steps", 1,
                         "--hidden", 4, "--batch", 8, "--init-batch", 16, "--val-images", 8, "--max-steps", 50,
                         "--no-progress", "--threads", 1, "--device", "cpu", "--cache-dir", tmp_path / "c")
    assert code == 130 and "done:" not in out and "stopped at step" in out
    assert (tmp_path / "run" / "latest").is_dir()


def test_sigterm_during_an_export_leaves_no_temporary_file(tmp_path, model_dir):
    import subprocess
    import sys
    import time

    out = tmp_path / "out" / "morph.mp4"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "glowcore.cli.main", "interpolate", "seed:1", "seed:2", "--model", str(model_dir),
                             "--frames", "3000", "--scale", "8", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and not list(out.parent.glob(".morph.mp4*")):
            time.sleep(0.01)  # (waiting for the temporary file to appear; nothing is timed)
        assert proc.poll() is None, "the export ended before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("glow interpolate: terminated")
    assert list(out.parent.iterdir()) == []
