"""Model files and data folders a user hands over (issue 17): direction metadata that would stall
the window or give grey pictures is refused at load, naming config.json; loops of links in an image
folder are followed once; config.json says which dequantisation a model uses; glow info and glow
eval take --model like the other commands."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glowcore import CheckpointError, load_model, save_model
from glowcore.cli.main import main
from glowcore.data.datasets import load_dataset
from glowcore.io.imagefiles import list_images

from .latent_helpers import gradient_images, untrained_model


def saved(tmp_path: Path, info: dict, name: str = "Smiling") -> Path:
    model = untrained_model()
    model.directions[name] = torch.randn(model.dim)
    model.direction_info[name] = info
    path = tmp_path / "model"
    save_model(model, path)
    return path


@pytest.mark.parametrize("info, problem", [
    ({"slider_range": [math.nan, 1]}, "'slider_range' must be a finite number"),
    ({"slider_range": [1e308, 1]}, "'slider_range' must be between -100 and 100"),
    ({"slider_range": [1, -1]}, "low < high"),
    ({"range": 1e15}, "'range' must be between 0 and 100"),
    ({"scale": math.nan}, "'scale' must be a finite number"),
    ({"scale": "huge"}, "'scale' must be a number, got 'huge'"),
    ({"center": math.inf}, "'center' must be a finite number"),
])
def test_unusable_direction_metadata_is_refused_naming_the_file(tmp_path, info, problem):
    path = saved(tmp_path, {"kind": "labels"})
    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["directions"]["Smiling"].update(info)
    cfg_path.write_text(json.dumps(cfg))  # (json writes NaN and Infinity as Python reads them)
    with pytest.raises(CheckpointError) as e:
        load_model(path, device="cpu")
    assert str(e.value).startswith(f"{cfg_path}: direction 'Smiling':") and problem in str(e.value)


@pytest.mark.parametrize("name", ["", "../../evil", " Smiling", "a/b", ".."])
def test_direction_names_that_are_not_names_are_refused(tmp_path, name):
    path = saved(tmp_path, {}, name=name)
    with pytest.raises(CheckpointError, match="direction name"):
        load_model(path, device="cpu")


def test_sane_direction_metadata_loads(tmp_path):
    path = saved(tmp_path, {"scale": 2.0, "center": 0.1, "slider_range": [-3, 3], "range": 2})
    assert load_model(path, device="cpu").direction_info["Smiling"]["slider_range"] == [-3, 3]


def test_config_json_says_which_dequantisation(tmp_path):
    plain = untrained_model()
    save_model(plain, tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["preprocessing"]["dequantization"] == "uniform"
    learned = plain.with_dequantizer(8)
    save_model(learned, tmp_path / "learned")
    cfg = json.loads((tmp_path / "learned" / "config.json").read_text())
    assert cfg["preprocessing"]["dequantization"] == "learned (variational)"


# ------------------------------------------------------------------------- links in data folders
def _folder_with_loops(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    (root / "a").mkdir(parents=True)
    for i, img in enumerate(gradient_images(4, seed=5)):
        Image.fromarray(img).save(root / ("a" if i % 2 else ".") / f"{i}.png")
    os.symlink("..", root / "a" / "up")  # a loop back to the top
    os.symlink(".", root / "a" / "self")  # a second loop
    os.symlink("a", root / "again")  # a second way into a
    os.symlink("0.png", root / "zero-again.png")  # a second name for one file
    return root


def test_loops_of_links_are_followed_once_and_each_file_counted_once(tmp_path):
    root = _folder_with_loops(tmp_path)
    files = list_images(root)
    assert len(files) == 4 and len({p.resolve() for p in files}) == 4
    tr = load_dataset(f"folder:{root}", 16, split="train", cache_dir=tmp_path / "c")
    va = load_dataset(f"folder:{root}", 16, split="val", cache_dir=tmp_path / "c")
    assert len(tr) + len(va) == 4
    real = lambda ds: {os.path.realpath(root / n) for n in ds.names}  # noqa: E731
    assert not real(tr) & real(va)  # no image in both splits


# --------------------------------------------------------------------------- --model everywhere
def test_info_and_eval_take_model_as_an_option(tmp_path, capsys):
    model = untrained_model()
    save_model(model, tmp_path / "m")
    assert main(["info", "--model", str(tmp_path / "m")]) == 0
    assert f"model:       {tmp_path / 'm'}" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "m")]) == 0  # positional kept
    assert main(["info", str(tmp_path / "m"), "--model", str(tmp_path / "other")]) == 2
    assert "not two different ones" in capsys.readouterr().err
    folder = tmp_path / "faces"
    folder.mkdir()
    for i, img in enumerate(gradient_images(6, seed=3)):
        Image.fromarray(img).save(folder / f"{i}.png")
    assert main(["eval", "--model", str(tmp_path / "m"), "--data", f"folder:{folder}", "--split", "all",
                 "--cache-dir", str(tmp_path / "c"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 6 and np.isfinite(result["bits_per_dim"])
