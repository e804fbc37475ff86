"""benchmarks/edit_bounds.py: how a side's bound comes from the faces' break coordinates, and a
run on a tiny model (samples only) whose output scripts/apply_calibration.py takes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))
from edit_bounds import main, side_bound  # noqa: E402

from glowcore import Glow, GlowConfig, load_model, save_model  # noqa: E402
from glowcore.ops.directions import add_directions  # noqa: E402


def test_a_side_bound_is_the_quantile_of_where_faces_broke() -> None:
    brk = np.array([0.9, 0.5, np.inf, 0.7, np.inf, 0.6, 0.8, np.inf, 1.0, 1.1])
    assert side_bound(brk, 1.0, 0.1) == pytest.approx(0.5)  # the first of ten
    assert side_bound(brk, 1.0, 0.3) == pytest.approx(0.7)
    assert side_bound(brk, 1.0, 0.8) is None  # only 7 of 10 broke: no bound
    low = np.array([-0.4, -np.inf, -0.9, -0.6])
    assert side_bound(low, -1.0, 0.25) == pytest.approx(-0.4)  # the low side: the one nearest 0
    assert side_bound(np.array([np.nan, np.nan, 0.5, 0.6]), 1.0, 0.5) == pytest.approx(0.5)  # broken unedited: left out
    assert side_bound(np.array([-0.1, 0.5]), 1.0, 0.5) is None  # breaks before it reaches 0: no bound


def test_a_run_finds_a_bound_for_a_direction_that_breaks_faces_and_none_for_one_that_does_not(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=3, levels=2, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5)).eval()
    g = torch.Generator().manual_seed(1)
    add_directions(m, {"Loud": torch.randn(m.dim, generator=g), "Quiet": 1e-4 * torch.randn(m.dim, generator=g)})
    save_model(m, tmp_path / "m")
    out = tmp_path / "bounds.json"
    assert main([str(tmp_path / "m"), "--data", "none", "--faces", "6", "--report-faces", "6", "--amounts", "0.5", "2",
                 "--temperature", "0.1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    lo, hi = result["bounds"]["Loud"]
    assert hi is not None and hi > 0 and (lo is None or lo < 0)
    assert "Quiet" not in result["bounds"]  # tiny moves never break a face
    check = result["rows"]["Loud"]["check"]["+2"]
    assert check["bounded"] <= check["unbounded"]
    import apply_calibration

    assert apply_calibration.main([str(tmp_path / "m"), "--bounds", str(out), "--out", str(tmp_path / "m2")]) == 0
    assert load_model(tmp_path / "m2", device="cpu").direction_info["Loud"]["bounds"][1] == pytest.approx(hi, abs=1e-4)
    # a direction replaced (new vector, new scales) loses bounds that were measured for the old one
    from safetensors.torch import save_file

    save_file({"Loud": torch.randn(m.dim)}, str(tmp_path / "cal.safetensors"), metadata={"info": json.dumps({"Loud": {"scale": 2.0, "scale_neg": 1.5}})})
    assert apply_calibration.main([str(tmp_path / "m2"), "--directions", str(tmp_path / "cal.safetensors"), "--out", str(tmp_path / "m3")]) == 0
    assert "bounds" not in load_model(tmp_path / "m3", device="cpu").direction_info["Loud"]


def test_the_edit_grid_is_drawn_as_the_explorer_edits(tmp_path: Path) -> None:
    """scripts/edits_grid.py: one row per shown direction and face, five amounts; a bounded
    direction's far column equals the bounded edit's decode, not the unbounded one's."""
    import edits_grid
    from PIL import Image

    from glowcore.io.grid import make_grid
    from glowcore.ops.directions import edit

    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=3, levels=2, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5)).eval()
    add_directions(m, {"Eyeglasses": 0.3 * torch.randn(m.dim, generator=torch.Generator().manual_seed(2))}, {"Eyeglasses": {"bounds": [None, 0.2]}})
    save_model(m, tmp_path / "m")
    assert edits_grid.main([str(tmp_path / "m"), "--out", str(tmp_path / "e.png")]) == 0
    img = np.asarray(Image.open(tmp_path / "e.png"))
    mm = load_model(tmp_path / "m", device="cpu").eval()
    base = mm.sample_latent(2, 0.6, seed=11)
    amounts = [-1.5, -0.75, 0.0, 0.75, 1.5]
    with torch.inference_mode():
        grids = {b: make_grid(torch.cat([mm.decode(edit(mm, base[i], {"Eyeglasses": amounts}, bounded=b)) for i in range(2)]), 5, 2, 2) for b in (True, False)}
    assert not np.array_equal(grids[True], grids[False])  # the bound bites at +0.75 and +1.5
    np.testing.assert_array_equal(img, grids[True])  # two faces of five amounts, bounded
