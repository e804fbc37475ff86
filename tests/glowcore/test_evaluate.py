"""Bits/dim over a data set: glowcore.ops.evaluate and `glow eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from glowcore import save_model
from glowcore.cli.main import main
from glowcore.ops.evaluate import evaluate_bits_per_dim
from glowcore.base.progress import Cancelled, CancelToken

from .latent_helpers import gradient_images, untrained_model


def test_evaluation_is_the_mean_over_batches_with_the_generators_noise() -> None:
    model = untrained_model()
    images = gradient_images(7, seed=4)  # (7, 16, 16, 3) uint8
    ev = evaluate_bits_per_dim(model, images, batch_size=3)
    g = torch.Generator().manual_seed(0)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = torch.cat([model.bits_per_dim(x[i : i + 3], generator=g) for i in range(0, 7, 3)]).double().mean()
    assert ev.bits_per_dim == pytest.approx(float(expected), abs=1e-9)
    assert (ev.images, ev.n_bits, ev.uniform_noise) == (7, 5, None)
    assert evaluate_bits_per_dim(model, images, batch_size=3) == ev  # fixed noise: repeatable
    # a subset of rows
    sub = evaluate_bits_per_dim(model, images, np.array([5, 1]), batch_size=10)
    with torch.no_grad():
        expected = model.bits_per_dim(x[[1, 5]], generator=torch.Generator().manual_seed(0)).double().mean()
    assert sub.images == 2 and sub.bits_per_dim == pytest.approx(float(expected), abs=1e-9)
    with pytest.raises(ValueError, match="no images"):
        evaluate_bits_per_dim(model, images[:0])
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        evaluate_bits_per_dim(model, images, cancel=token)


def test_a_learned_dequantizer_reports_both_bounds() -> None:
    model = untrained_model().with_dequantizer(4).eval()
    images = gradient_images(4, seed=5)
    ev = evaluate_bits_per_dim(model, images)
    assert ev.uniform_noise is not None and "under uniform noise" in ev.describe()
    # a new dequantiser is uniform noise: the two bounds differ only by the noise drawn
    assert ev.bits_per_dim == pytest.approx(ev.uniform_noise, abs=0.05)


def test_cli_eval_prints_the_figure_and_names_bad_input(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("GLOW_EXPLORER_CACHE", str(tmp_path / "cache"))
    model = untrained_model()
    save_model(model, tmp_path / "m")
    data = tmp_path / "faces"
    data.mkdir()
    for i, img in enumerate(gradient_images(5, seed=6)):
        Image.fromarray(img).save(data / f"{i}.png")
    code = main(["eval", str(tmp_path / "m"), "--data", f"folder:{data}", "--split", "all", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["images"] == 5 and result["uniform_noise"] is None and 0 < result["bits_per_dim"] < 20
    code = main(["eval", str(tmp_path / "m"), "--data", f"folder:{data}", "--split", "all", "--images", "2"])
    assert code == 0 and "bits/dim" in capsys.readouterr().out
    code = main(["eval", str(tmp_path / "m"), "--data", f"folder:{tmp_path / 'nope'}", "--split", "all"])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = main(["eval", str(tmp_path / "m"), "--data", f"folder:{data}", "--batch", "0"])
    assert code == 2 and "--batch must be at least 1" in capsys.readouterr().err
