"""Polyak averaging: the average itself, training with it, exact resume, what the checkpoints hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from glowcore import load_model
from glowcore.cli.main import main
from glowcore.data.packs import pack_arrays
from glowcore.training.ema import EMA, warmup_decay
from glowcore.training.train import TrainConfig, TrainingError, load_trainer_state, train


def synthetic_faces(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs with a little noise: images a tiny flow can learn something of."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.35)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        bg, fg = rng.uniform(0, 90, 3), rng.uniform(150, 255, 3)
        img = bg + (fg - bg) * blob + rng.normal(0, 6, (size, size, 3))
        out[i] = img.clip(0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "tiny.pack"
    pack_arrays(path, synthetic_faces(128, seed=1), synthetic_faces(32, seed=2), n_bits=5)
    return path


def tiny(tmp_path: Path, pack: Path, name: str = "run", **kw) -> TrainConfig:
    base = dict(data=f"pack:{pack}", out=str(tmp_path / name), levels=2, steps=2, hidden=16, batch=16, lr=2e-3, warmup=5,
                val_images=32, eval_batch=32, init_batch=64, threads=1, samples=2, eval_minutes=60.0, device="cpu", ema=0.9)
    base.update(kw)
    return TrainConfig(**base)


def quiet(_msg: str) -> None:
    pass


def test_the_average_matches_a_hand_computed_one() -> None:
    net = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema = EMA(net, 0.5)
    expect = torch.ones(1, 2)
    for k, value in enumerate([3.0, -1.0, 7.0, 2.0, 5.0]):
        with torch.no_grad():
            net.weight.fill_(value)
        ema.update(net)
        d = min(0.5, (1 + k) / (10 + k))  # the warm-up: 0.1, 0.18, 0.25, 0.31, then 0.5
        expect = d * expect + (1 - d) * value
    assert warmup_decay(0.5, 0) == pytest.approx(0.1) and warmup_decay(0.5, 100) == 0.5
    torch.testing.assert_close(ema.shadow[0], expect, rtol=0, atol=1e-6)
    with ema.swapped(net):  # the average inside the block, the live weights after it
        torch.testing.assert_close(net.weight.detach(), expect, rtol=0, atol=1e-6)
    assert torch.all(net.weight == 5.0)


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1, float("nan"), True])
def test_decays_outside_zero_one_are_refused(tmp_path: Path, pack: Path, decay) -> None:
    with pytest.raises(TrainingError, match="ema decay must be a number in \\(0, 1\\)"):
        train(tiny(tmp_path, pack, ema=decay, max_steps=1), log=quiet)


def test_cli_names_a_bad_decay(tmp_path: Path, pack: Path, capsys) -> None:
    rc = main(["train", "--data", f"pack:{pack}", "--out", str(tmp_path / "r"), "--ema", "2", "--max-steps", "1"])
    assert rc != 0 and "ema decay must be a number in (0, 1)" in capsys.readouterr().err


def test_checkpoints_hold_the_average_and_the_state_the_live_weights(tmp_path: Path, pack: Path) -> None:
    res = train(tiny(tmp_path, pack, max_steps=12, eval_steps=6), log=quiet)
    run = res.run_dir
    meta, state = load_trainer_state(run / "latest")
    assert meta["ema_updates"] == 12
    saved = load_file(str(run / "latest" / "model.safetensors"))
    live = {k[len("live."):]: v for k, v in state.items() if k.startswith("live.")}
    assert live and set(live) <= set(saved)
    # the live weights are the model in memory; the files hold a different (averaged) set
    for name, p in res.model.named_parameters():
        torch.testing.assert_close(live[name], p.detach().cpu(), rtol=0, atol=0)
    assert any(not torch.equal(saved[k], live[k]) for k in live)
    # what the evaluation measured is the averaged model: its bits/dim on the same faces agree
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert "val_bpd_live" in lines[-1] and lines[-1]["val_bpd"] != lines[-1]["val_bpd_live"]
    best = load_model(run / "best", device="cpu")
    assert best.metadata["metrics"]["val_bpd"] == pytest.approx(res.best_val_bpd)


def test_resume_with_averaging_equals_uninterrupted(tmp_path: Path, pack: Path) -> None:
    train(tiny(tmp_path, pack, "full", max_steps=14, hflip=True), log=quiet)
    train(tiny(tmp_path, pack, "split", max_steps=6, hflip=True), log=quiet)
    train(tiny(tmp_path, pack, "split", max_steps=14, hflip=True), resume=True, log=quiet)
    for fname in ("model.safetensors",):
        a = load_file(str(tmp_path / "full" / "latest" / fname))
        b = load_file(str(tmp_path / "split" / "latest" / fname))
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    sa, sb = (load_trainer_state(tmp_path / r / "latest") for r in ("full", "split"))
    assert sa[0]["ema_updates"] == sb[0]["ema_updates"] == 14
    for k in sa[1]:
        if k.startswith("live."):
            torch.testing.assert_close(sa[1][k], sb[1][k], rtol=0, atol=1e-6, msg=k)


def test_a_run_without_averaging_cannot_be_resumed_with_it(tmp_path: Path, pack: Path) -> None:
    train(tiny(tmp_path, pack, ema=None, max_steps=3), log=quiet)
    with pytest.raises(TrainingError, match="cannot change --ema"):
        train(tiny(tmp_path, pack, max_steps=6), resume=True, log=quiet)


def test_trainer_state_is_split_into_small_files(tmp_path: Path, pack: Path, monkeypatch) -> None:
    import glowcore.training.trainstate as ts

    monkeypatch.setattr(ts, "STATE_SHARD_BYTES", 20_000)
    res = train(tiny(tmp_path, pack, max_steps=3), log=quiet)
    latest = res.run_dir / "latest"
    meta, tensors = load_trainer_state(latest)
    files = sorted(latest.glob("trainer_state*.safetensors"))
    assert len(files) == len(meta["tensor_files"]) > 2
    for f in files:  # each file at most the limit, unless one tensor alone is larger
        loaded = load_file(str(f))
        assert len(loaded) == 1 or sum(v.numel() * v.element_size() for v in loaded.values()) <= 20_000
    assert sum(len(load_file(str(f))) for f in files) == len(tensors)
    # a resumed run reads every shard back
    res2 = train(tiny(tmp_path, pack, max_steps=5), resume=True, log=quiet)
    assert res2.step == 5
    # a state that names a file outside its folder is refused
    meta["tensor_files"] = ["../../elsewhere.safetensors"]
    (latest / "trainer_state.json").write_text(json.dumps(meta))
    with pytest.raises(TrainingError, match="tensor_files"):
        load_trainer_state(latest)
