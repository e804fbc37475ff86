"""glow train: learning, run files, exact resume, cancel, NaN guard, config files and CLI errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from glowcore import load_model, save_model
from glowcore.cli.main import main
from glowcore.data.datasets import DataWarning
from glowcore.nn.actnorm import ActNorm
from glowcore.base.progress import CancelToken
from glowcore.training.train import TrainConfig, TrainingError, learning_rate, load_trainer_state, train

from ..testdata import fashion_spec

FASHION = fashion_spec()


def tiny(tmp_path: Path, name: str = "run", **kw) -> TrainConfig:
    base = dict(
        data=fashion_spec(), out=str(tmp_path / name), levels=2, steps=2, hidden=16, batch=32, lr=2e-3, warmup=5,
        val_images=100, init_batch=64, threads=1, samples=4, eval_minutes=60.0, cache_dir=str(tmp_path / "cache"),
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def quiet(_msg: str) -> None:
    pass


def test_fashion_mnist_training_learns_and_writes_a_run(tmp_path: Path) -> None:
    res = train(tiny(tmp_path, max_steps=60, eval_steps=20), log=quiet)
    run = Path(res.run_dir)
    assert res.step == 60 and res.images_seen == 60 * 32 and not res.interrupted
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [20, 40, 60]
    for key in ("epoch", "images", "train_bpd", "val_bpd", "images_per_s", "lr", "elapsed_s"):
        assert key in lines[0]
    assert lines[-1]["val_bpd"] < lines[0]["val_bpd"] - 0.2  # it learns
    assert lines[-1]["train_bpd"] < lines[0]["train_bpd"]
    assert res.best_val_bpd == pytest.approx(min(ln["val_bpd"] for ln in lines), abs=1e-4)
    record = json.loads((run / "run.json").read_text())
    assert record["config"]["hidden"] == 16 and record["architecture"]["channels"] == 1
    assert record["architecture"]["image_size"] == 32
    # latest and best are ordinary model folders; best carries its validation bits/dim
    best = load_model(run / "best", device="cpu")
    assert best.metadata["metrics"]["val_bpd"] == pytest.approx(res.best_val_bpd)
    assert best.metadata["training"]["data"] == fashion_spec()
    latest = load_model(run / "latest", device="cpu")
    assert latest.metadata["training"]["step"] == 60
    torch.testing.assert_close(latest.state_dict(), res.model.cpu().state_dict())
    # samples decode to finite images; the grid PNG has 4 rows (T = 0, 0.5, 0.7, 1.0) of 4
    imgs = latest.sample(4, 0.7, seed=1)
    assert imgs.shape == (4, 1, 32, 32) and torch.isfinite(imgs).all()
    with Image.open(run / "samples" / "latest.png") as grid:
        assert grid.size == (4 * 34 + 2, 4 * 34 + 2)
    assert (run / "samples" / "step_0000060.png").is_file()
    meta, tensors = load_trainer_state(run / "latest")
    assert meta["step"] == 60 and any(k.startswith("optim.") for k in tensors) and "rng.torch" in tensors
    assert not list(run.glob(".*"))  # no temporary files left behind


def test_image_folder_training_skips_a_corrupt_image(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    (root / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:24]
    for i in range(60):
        base = rng.integers(0, 255, 3)
        img = (base[None, None, :] * 0.5 + (np.sin(xx / (2 + i % 5))[..., None] * 60 + yy[..., None] * 3)).clip(0, 255)
        Image.fromarray(img.astype(np.uint8)).save(root / ("a" if i % 2 else ".") / f"{i:03d}.{'png' if i % 3 else 'jpg'}")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cfg = tiny(tmp_path, data=f"folder:{root}", image_size=16, batch=8, max_steps=30, eval_steps=15, val_images=10, init_batch=32)
    with pytest.warns(DataWarning, match="broken.jpg"):
        res = train(cfg, log=quiet)
    lines = [json.loads(ln) for ln in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[1]["val_bpd"] < lines[0]["val_bpd"]
    model = load_model(res.run_dir / "best", device="cpu")
    assert model.config.image_size == 16 and model.config.channels == 3
    assert torch.isfinite(model.sample(2, 1.0, seed=0)).all()


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    full = train(tiny(tmp_path, "full", max_steps=24, hflip=True), log=quiet)
    train(tiny(tmp_path, "split", max_steps=10, hflip=True), log=quiet)
    resumed = train(tiny(tmp_path, "split", max_steps=24, hflip=True), resume=True, log=quiet)
    assert resumed.step == full.step == 24
    a = load_file(str(tmp_path / "full" / "latest" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "latest" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    sa = load_trainer_state(tmp_path / "full" / "latest")[1]
    sb = load_trainer_state(tmp_path / "split" / "latest")[1]
    for k in (k for k in sa if k.startswith("optim.")):
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=1e-6, msg=k)


def test_hflip_mirrors_about_half_the_images_reproducibly(tmp_path: Path) -> None:
    from glowcore.training.batches import _flip_mask

    masks = [_flip_mask(0, step, 0, 64) for step in range(50)]
    assert 0.45 < np.mean(masks) < 0.55 and np.array_equal(masks[3], _flip_mask(0, 3, 0, 64))
    assert not np.array_equal(masks[3], masks[4]) and not np.array_equal(masks[3], _flip_mask(0, 3, 1, 64))
    plain = train(tiny(tmp_path, "plain", max_steps=2), log=quiet).model.state_dict()
    flipped = train(tiny(tmp_path, "flip", max_steps=2, hflip=True), log=quiet).model.state_dict()
    assert any(not torch.equal(plain[k], flipped[k]) for k in plain)  # it trained on other pixels


def test_cancel_saves_and_resume_continues(tmp_path: Path) -> None:
    token = CancelToken()
    seen: list[int] = []

    def progress(done: int, total: int, msg: str) -> None:
        seen.append(done)
        if done >= 7:
            token.cancel()

    res = train(tiny(tmp_path, max_steps=1000), progress=progress, cancel=token, log=quiet)
    assert res.interrupted and res.step == 7
    meta, _ = load_trainer_state(tmp_path / "run" / "latest")
    assert meta["step"] == 7 and meta["batch_in_epoch"] == 7
    res2 = train(tiny(tmp_path, max_steps=12), resume=True, log=quiet)
    assert res2.step == 12 and not res2.interrupted


def test_nan_steps_are_skipped_then_stop_training(tmp_path: Path) -> None:
    # A model whose first ActNorm overflows float32: every loss is Inf/NaN.
    src = train(tiny(tmp_path, "src", max_steps=1), log=quiet).model.cpu()
    first = next(m for m in src.modules() if isinstance(m, ActNorm))
    with torch.no_grad():
        first.logs.fill_(100.0)
    save_model(src, tmp_path / "broken")
    before = {k: v.clone() for k, v in load_model(tmp_path / "broken", device="cpu").state_dict().items()}
    res = train(tiny(tmp_path, "skip", init_from=str(tmp_path / "broken"), max_steps=3, max_bad_steps=10), log=quiet)
    assert res.skipped_steps == 3
    after = res.model.cpu().state_dict()
    for k in before:
        assert torch.equal(before[k], after[k]), k  # skipped steps leave the weights untouched
    with pytest.raises(TrainingError, match=r"training diverged: 2 steps in a row had NaN/Inf"):
        train(tiny(tmp_path, "stop", init_from=str(tmp_path / "broken"), max_steps=50, max_bad_steps=2), log=quiet)


def test_init_from_uses_the_models_architecture(tmp_path: Path) -> None:
    from glowcore.nn.priors import FittedNoise

    src = train(tiny(tmp_path, "src", max_steps=5, hidden=8), log=quiet)
    start = load_model(src.run_dir / "latest", device="cpu")  # with a sampling prior fitted to its weights' encodings
    top = int(np.prod(start.latent_shapes[-1]))
    start.sampling_prior = FittedNoise.fit(torch.randn(50, top), 2)
    save_model(start, tmp_path / "start")
    res = train(tiny(tmp_path, "more", init_from=str(tmp_path / "start"), max_steps=3, hidden=64), log=quiet)
    model = load_model(res.run_dir / "latest", device="cpu")
    assert model.config.hidden == 8 and model.metadata["training"]["init_from"].endswith("start")
    assert model.sampling_prior is None  # other weights: the prior no longer fits (nor do directions)
    # resuming continues from the run's own checkpoint, even when the starting model is gone
    shutil.rmtree(tmp_path / "start")
    res2 = train(tiny(tmp_path, "more", init_from=str(tmp_path / "start"), max_steps=5, hidden=64), resume=True, log=quiet)
    assert res2.step == 5 and res2.model.config.hidden == 8


def test_init_from_grows_prior_networks_once(tmp_path: Path) -> None:
    src = train(tiny(tmp_path, "src", max_steps=5, hidden=8), log=quiet)
    res = train(tiny(tmp_path, "grow", init_from=str(src.run_dir / "latest"), prior_hidden=4, max_steps=3), log=quiet)
    model = load_model(res.run_dir / "latest", device="cpu")
    assert (model.config.hidden, model.config.prior_hidden) == (8, 4)
    assert model.levels[0].prior.net.out.conv.weight.abs().sum() > 0  # trained away from zero
    with pytest.raises(ValueError, match="parameters, more than the"):  # refused before it is built
        train(tiny(tmp_path, "huge", init_from=str(src.run_dir / "latest"), prior_hidden=100_000, max_steps=1), log=quiet)
    with pytest.raises(TrainingError, match="has split-prior networks 4 wide; --prior-hidden 8 cannot change its width"):
        train(tiny(tmp_path, "again", init_from=str(res.run_dir / "latest"), prior_hidden=8, max_steps=1), log=quiet)
    scratch = train(tiny(tmp_path, "scratch", prior_hidden=4, max_steps=2), log=quiet)
    assert scratch.model.config.prior_hidden == 4


def test_init_from_grows_a_learned_dequantizer_that_training_fits(tmp_path: Path) -> None:
    src = train(tiny(tmp_path, "src", max_steps=5, hidden=8), log=quiet)
    res = train(tiny(tmp_path, "dq", init_from=str(src.run_dir / "latest"), dequant_hidden=4, max_steps=3), log=quiet)
    model = load_model(res.run_dir / "latest", device="cpu")
    assert (model.config.hidden, model.config.dequant_hidden) == (8, 4)
    assert model.dequantizer is not None and model.dequantizer.nets[0].out.conv.weight.abs().sum() > 0  # trained
    with pytest.raises(TrainingError, match="has a learned dequantiser 4 wide; --dequant-hidden 8 cannot change its width"):
        train(tiny(tmp_path, "again", init_from=str(res.run_dir / "latest"), dequant_hidden=8, max_steps=1), log=quiet)
    # from scratch, and resumed exactly: the dequantiser's noise comes from the step's generator too
    full = train(tiny(tmp_path, "full", dequant_hidden=4, max_steps=6), log=quiet)
    train(tiny(tmp_path, "split", dequant_hidden=4, max_steps=3), log=quiet)
    resumed = train(tiny(tmp_path, "split", dequant_hidden=4, max_steps=6), resume=True, log=quiet)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_a_run_folder_without_a_checkpoint_can_be_started_again(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")  # e.g. interrupted during ActNorm initialisation
    assert train(tiny(tmp_path, max_steps=1), log=quiet).step == 1


def test_cli_toml_config_and_overrides(tmp_path: Path, capsys) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'data = "{fashion_spec()}"\nout = "{tmp_path / "t"}"\ncache-dir = "{tmp_path / "cache"}"\n'
        "[model]\nlevels = 2\nsteps = 1\nhidden = 8\n[optim]\nbatch = 16\nmax-steps = 4\nwarmup = 2\n"
        "[eval]\nval-images = 20\nsamples = 2\ninit-batch = 32\nthreads = 1\n"
    )
    assert main(["train", "--config", str(toml), "--hidden", "12", "--no-progress", "--device", "cpu"]) == 0
    record = json.loads((tmp_path / "t" / "run.json").read_text())
    assert record["config"]["steps"] == 1 and record["config"]["hidden"] == 12 and record["config"]["batch"] == 16
    assert "done: step 4" in capsys.readouterr().out
    # resuming may extend the run but not change its architecture
    assert main(["train", "--resume", "--out", str(tmp_path / "t"), "--max-steps", "6", "--no-progress"]) == 0
    assert load_trainer_state(tmp_path / "t" / "latest")[0]["step"] == 6
    assert main(["train", "--resume", "--out", str(tmp_path / "t"), "--hidden", "32", "--no-progress"]) == 2
    assert "cannot change --hidden when resuming" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "folder:/nonexistent/faces"], "image folder /nonexistent/faces does not exist"),
        (["--data", FASHION, "--image-size", "40", "--levels", "3"], "image size 32"),
        (["--data", FASHION, "--levels", "6"], "image_size 32 cannot be halved 6 times"),
        (["--data", FASHION, "--batch", "0"], "batch must be a positive integer"),
        (["--data", FASHION, "--prior-hidden", "-1"], "prior-hidden must be an integer >= 0"),
        (["--data", FASHION, "--dequant-hidden", "-2"], "dequant-hidden must be an integer >= 0"),
        (["--data", FASHION, "--resume"], "there is no run to resume"),
        (["--out", "X"], "no data set: give --data"),
        (["--data", FASHION, "--lr-schedule", "cosine"], "decays to lr-min at --max-steps: give --max-steps"),
        (["--data", FASHION, "--lr-schedule", "cosine", "--max-steps", "10", "--decay-start", "10"], "decay-start (10) must be below max-steps (10)"),
    ],
)
def test_cli_errors_name_the_problem(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    argv = ["train", "--no-progress", "--cache-dir", str(tmp_path / "c")]
    if "--out" not in args:
        argv += ["--out", str(tmp_path / "r")]
    assert main(argv + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("glow train: error:") and message in err
    assert not (tmp_path / "r" / "latest").exists()


def test_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    train(tiny(tmp_path, max_steps=1), log=quiet)
    with pytest.raises(TrainingError, match="already holds a run; add --resume"):
        train(tiny(tmp_path, max_steps=1), log=quiet)


def test_bf16_precision_trains_and_records_its_precision(tmp_path: Path) -> None:
    res = train(tiny(tmp_path, max_steps=40, eval_steps=20, precision="bf16"), log=quiet)
    lines = [json.loads(ln) for ln in (Path(res.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["val_bpd"] < lines[0]["val_bpd"]
    assert json.loads((Path(res.run_dir) / "run.json").read_text())["config"]["precision"] == "bf16"
    model = load_model(Path(res.run_dir) / "latest", device="cpu")
    x = model.sample(2, 0.7, seed=0)
    assert (model.decode(model.encode(x)) - x).abs().max() < 1e-4
    with pytest.raises(TrainingError, match="precision must be one of"):
        tiny(tmp_path, precision="int8").validate()


def test_learning_rate_schedules() -> None:
    const = TrainConfig(data="x", out="y", lr=1e-3, warmup=10)
    assert learning_rate(const, 0) == pytest.approx(1e-4)
    assert learning_rate(const, 9) == learning_rate(const, 5000) == pytest.approx(1e-3)
    limited = TrainConfig(data="x", out="y", lr=1e-3, warmup=10, max_steps=100)  # a step limit does not make it decay
    assert learning_rate(limited, 50) == learning_rate(limited, 99) == pytest.approx(1e-3)
    cos = TrainConfig(data="x", out="y", lr=1e-3, warmup=10, lr_schedule="cosine", lr_min=1e-5, max_steps=110)
    assert learning_rate(cos, 10) == pytest.approx(1e-3)
    assert learning_rate(cos, 60) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2)
    assert learning_rate(cos, 110) == learning_rate(cos, 500) == pytest.approx(1e-5)
    lrs = [learning_rate(cos, s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    late = TrainConfig(data="x", out="y", lr=1e-3, warmup=10, lr_schedule="cosine", max_steps=200, decay_start=100)
    assert learning_rate(late, 99) == pytest.approx(1e-3) and learning_rate(late, 150) == pytest.approx(5e-4)


def test_a_resumed_run_can_switch_to_cosine_decay(tmp_path: Path) -> None:
    train(tiny(tmp_path, max_steps=6), log=quiet)
    res = train(tiny(tmp_path, max_steps=12, lr_schedule="cosine", decay_start=6, lr_min=0.0), resume=True, log=quiet)
    assert res.step == 12
    lrs = [m["lr"] for m in res.metrics]
    assert lrs[-1] < 2e-3 * 0.1


def _picture_folder(root: Path, noise: bool) -> Path:
    """60 small PNGs: smooth colour patterns, or (same names) uniform noise, which a model trained
    on the patterns finds far less likely."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:16, 0:16]
    for i in range(60):
        if noise:
            img = rng.integers(0, 256, (16, 16, 3))
        else:
            base = rng.integers(0, 255, 3)
            img = (base[None, None, :] * 0.5 + (np.sin(xx / (2 + i % 5))[..., None] * 60 + yy[..., None] * 3)).clip(0, 255)
        Image.fromarray(img.astype(np.uint8)).save(root / f"{i:03d}.png")
    return root


def test_resume_keeps_the_best_checkpoint_when_the_next_evaluation_is_worse(tmp_path: Path) -> None:
    """The best validation bits/dim so far survives a resume: an evaluation after it that is worse
    than the best before it must not replace ``best/``. (Here the data folder, which may change
    between sessions, now holds noise with the same file names, so the next figure is worse.)"""
    smooth = _picture_folder(tmp_path / "smooth", noise=False)
    noisy = _picture_folder(tmp_path / "noisy", noise=True)
    kw = dict(image_size=16, batch=8, val_images=10, init_batch=32, eval_steps=10)
    first = train(tiny(tmp_path, data=f"folder:{smooth}", max_steps=20, **kw), log=quiet)
    started = json.loads((first.run_dir / "run.json").read_text())["started"]
    best = first.run_dir / "best"
    saved = {p.name: p.read_bytes() for p in best.iterdir()}
    assert first.best_val_bpd is not None and load_model(best, device="cpu").metadata["training"]["step"] in (10, 20)
    second = train(tiny(tmp_path, data=f"folder:{noisy}", max_steps=21, **kw), resume=True, log=quiet)
    lines = [json.loads(ln) for ln in (second.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [10, 20, 21]
    assert lines[-1]["val_bpd"] > first.best_val_bpd + 0.5  # the premise: the evaluation after the resume is worse
    assert second.best_val_bpd == pytest.approx(first.best_val_bpd)
    assert {p.name: p.read_bytes() for p in best.iterdir()} == saved, "best/ was replaced by a worse model"
    assert load_model(second.run_dir / "latest", device="cpu").metadata["metrics"]["best_val_bpd"] == pytest.approx(first.best_val_bpd)
    record = json.loads((second.run_dir / "run.json").read_text())  # the run's record counts the sessions
    assert record["started"] == started and record["sessions"] == 2 and "resumed" in record
