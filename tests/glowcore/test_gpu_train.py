"""scripts/gpu_train.py: its whole path on the CPU at a tiny size, and its refusal without a GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from glowcore import Glow, GlowConfig, load_model, save_model
from glowcore.data.packs import pack_arrays

from .test_ema import synthetic_faces

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_train.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_train", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    train, val = synthetic_faces(96, seed=1), synthetic_faces(24, seed=2)
    pack_arrays(tmp_path / "t.pack", train, val)
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=16, channels=3, levels=2, steps=2, hidden=8, coupling="affine", lu=True, n_bits=5))
    m.initialize(torch.from_numpy(train[:32]).permute(0, 3, 1, 2))
    for name in ("Smiling", "Male", "Young", "Eyeglasses"):
        v = torch.randn(m.dim)
        m.directions[name] = v / v.norm()
    save_model(m, tmp_path / "start")
    return tmp_path / "t.pack", tmp_path / "start"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU: the script would use it")
def test_without_a_gpu_it_stops_with_one_line(setup, tmp_path: Path, capsys) -> None:
    pack, start = setup
    rc = _script().main(["--pack", str(pack), "--out", str(tmp_path / "run"), "--init-from", str(start)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no CUDA GPU found" in err[0] and "--allow-cpu" in err[0]
    assert not (tmp_path / "run").exists()


def test_cpu_smoke_run_trains_measures_and_exports(setup, tmp_path: Path) -> None:
    pack, start = setup
    report = tmp_path / "report.json"
    rc = _script().main([
        "--pack", str(pack), "--out", str(tmp_path / "run"), "--init-from", str(start), "--allow-cpu", "--batch", "8",
        "--minutes", "0.3", "--probe-minutes", "0.05", "--eval-minutes", "0.05", "--val-images", "24", "--warmup", "2",
        "--report", str(report), "--export", str(tmp_path / "export"),
    ])
    assert rc == 0
    rep = json.loads(report.read_text())
    assert set(rep["train_step_ms"]) == {"contiguous", "channels_last"}
    assert rep["probe"]["steps"] > 0 and rep["training"]["steps"] > rep["probe"]["steps"]  # the cosine phase ran
    assert rep["training"]["best_val_bpd"] == pytest.approx(min(v for _, v, _ in rep["training"]["val_bpd"]), abs=1e-4)
    assert rep["engine"]["one_slider"]["n"] == 3 and "CPU" in rep["engine"]["device"]
    best = load_model(tmp_path / "export" / "best", device="cpu")
    assert best.metadata["training"]["config"]["ema"] == 0.999
    assert (tmp_path / "export" / "latest.png").is_file() and (tmp_path / "export" / "metrics.jsonl").is_file()
    for f in (tmp_path / "run").rglob("*"):  # every file of the run stays small enough to copy back
        assert f.stat().st_size <= 16 * 2**20
