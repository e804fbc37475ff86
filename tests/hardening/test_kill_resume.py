"""Faults: processes killed (SIGKILL) while they save models and while they train.

* Exhaustive: a forked child performs a save (a model folder, a single file, or a training
  checkpoint: ``latest/`` with its trainer state plus ``best/``) and kills itself with SIGKILL
  at the k-th file-system step (every rename, fsync, and every file or folder a recursive delete
  removes), for every k; then again for pairs of kills in a row. After each, what is on disk must
  load, and be the old or the new save: never a mixture, never nothing.
* Random: ``glow train`` in a subprocess is SIGKILLed at random moments, resumed with
  ``--resume`` each time, ``GLOW_KILLS`` times (5 in CI, 20 in ``benchmarks/fuzz_long.py``): each
  resume starts at the last complete checkpoint, every checkpoint loads after every kill, and the
  final weights equal an uninterrupted run's.
* Random: a child saving models in a loop is SIGKILLed mid-write, many times.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file

import glowcore.training.train as gtrain
from glowcore import Glow, GlowConfig, load_model, save_model
from glowcore.training.train import TrainConfig, load_trainer_state, train

from ..testdata import fashion_spec
from ._common import LONG, count

KILLS = int(os.environ.get("GLOW_KILLS", "20" if LONG else "5"))
#: Steps of the killed training run: enough that the kills land before it ends.
TRAIN_STEPS = 3 * (5 * KILLS + 5)  # (a session gets about 12 steps further before its kill)


# ------------------------------------------------------------------------- fault injection
class _Clock:
    """Counts file-system steps in a forked child and SIGKILLs the child at step ``kill_at``."""

    def __init__(self, kill_at: int):
        self.kill_at = kill_at
        self.n = 0

    def tick(self) -> None:
        self.n += 1
        if self.n == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _install(clock: _Clock) -> None:
    real_replace, real_rename, real_unlink, real_rmdir = os.replace, os.rename, os.unlink, os.rmdir

    def replace(a, b, *args, **kw):
        clock.tick()
        real_replace(a, b, *args, **kw)
        clock.tick()

    def rename(a, b, *args, **kw):
        clock.tick()
        real_rename(a, b, *args, **kw)

    def fsync(fd):  # a kill point; the sync itself only matters for power loss, not for SIGKILL
        clock.tick()

    def rmtree(path, ignore_errors=False, onerror=None, **kw):
        """Deletes one entry at a time, each a kill point: a kill leaves a half-deleted folder."""
        try:
            for root, dirs, files in os.walk(path, topdown=False):
                for f in files:
                    clock.tick()
                    real_unlink(os.path.join(root, f))
                for d in dirs:
                    clock.tick()
                    real_rmdir(os.path.join(root, d))
            if not os.path.isdir(path):
                raise FileNotFoundError(path)
            clock.tick()
            real_rmdir(path)
        except OSError:
            if not ignore_errors:
                raise

    os.replace, os.rename, os.fsync = replace, rename, fsync
    shutil.rmtree = rmtree


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL keeps the page cache: syncing to the disk changes nothing here, and costs time."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def _run_killed(op: Callable[[], None], kill_at: int, timeout: float = 60.0) -> bool:
    """Run ``op`` in a forked child killed at its ``kill_at``-th file-system step. True if it was
    killed, False if it finished first."""
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            torch.set_num_threads(1)
            _install(_Clock(kill_at))
            op()
            code = 0
        except BaseException:  # noqa: BLE001 - report through the exit code
            import traceback

            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the save hung (kill point {kill_at})")
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"the save failed at kill point {kill_at} (exit {os.WEXITSTATUS(status)})"
    return False


def _model(value: float) -> Glow:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=1, levels=2, steps=1, hidden=4))
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(value * 1e-3)
    m.metadata = {"version": value}
    return m


def _version(path: Path) -> float:
    m = load_model(path, device="cpu")
    v = m.metadata["version"]
    assert torch.allclose(next(m.parameters()), torch.tensor(v * 1e-3)), "metadata and weights come from different saves"
    return v


# ----------------------------------------------------------------- exhaustive: save_model
@pytest.mark.parametrize("form", ["folder", "file"])
def test_save_model_killed_at_every_step_leaves_old_or_new(tmp_path: Path, form: str) -> None:
    target = tmp_path / ("m" if form == "folder" else "m.safetensors")
    k = 1
    seen = set()
    while True:
        shutil.rmtree(tmp_path, ignore_errors=True)
        tmp_path.mkdir()
        save_model(_model(1), target)
        killed = _run_killed(lambda: save_model(_model(2), target), k)
        v = _version(target)
        assert v in (1, 2), v
        seen.add(v)
        # the next save (after the kill) completes normally, whatever was left behind
        save_model(_model(3), target)
        assert _version(target) == 3
        count(f"faults.save_model.{form}.kills")
        if not killed:
            break
        k += 1
    assert seen == {1, 2} and k > 3  # kills landed before and after the switch to the new save


# ------------------------------------------------------- exhaustive: training checkpoints
_BITS: list = []


def _trainer_bits():
    if not _BITS:  # built once; forked children inherit them
        model = _model(0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss = sum(p.sum() for p in model.parameters())
        loss.backward()
        opt.step()
        _BITS.extend([model, opt])
    return _BITS[0], _BITS[1]


def _checkpoint(run: Path, step: int) -> None:
    """What evaluate_and_save does: latest/ (model + trainer state), then best/."""
    model, opt = _trainer_bits()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(step * 1e-3)
    model.metadata = {"version": step}
    gtrain._save_checkpoint(run / "latest", model, opt, False, {"step": step, "marker": step})
    tmp = run / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp)
    gtrain._replace_dir(tmp, run / "best")


def _check_run(run: Path, allowed: set[int]) -> int:
    """What a resume sees: after recovery, latest/ and best/ load, are one consistent save each."""
    latest = gtrain._latest_dir(run)
    assert latest is not None, f"no checkpoint to resume from: {sorted(p.name for p in run.iterdir())}"
    for name in ("latest", "best"):
        gtrain._recover_dir(run / name)
    latest = gtrain._latest_dir(run)
    assert latest == run / "latest"
    meta, tensors = load_trainer_state(latest)
    v = _version(latest)
    assert meta["step"] == meta["marker"] == v and v in allowed, (meta["step"], v, allowed)
    assert any(k.startswith("optim.") for k in tensors)
    assert _version(run / "best") in allowed
    return int(v)


def test_training_checkpoint_killed_at_every_step_and_every_pair(tmp_path: Path) -> None:
    run = tmp_path / "run"

    def fresh() -> None:
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir()
        _checkpoint(run, 1)

    # single kills at every step
    k, points = 1, 0
    while True:
        fresh()
        killed = _run_killed(lambda: _checkpoint(run, 2), k)
        _check_run(run, {1, 2})
        _checkpoint(run, 3)  # training goes on and saves again
        assert _check_run(run, {3}) == 3
        count("faults.checkpoint.single_kills")
        if not killed:
            points = k - 1
            break
        k += 1
    assert points > 10
    # two kills in a row (the second save starts from whatever the first left): every pair in
    # the long run, an even spread of pairs in CI
    pairs = [(a, b) for a in range(1, points + 1) for b in range(1, points + 2)]
    if not LONG:
        pairs = pairs[:: max(1, len(pairs) // 20)]
    for a, b in pairs:
        fresh()
        _run_killed(lambda: _checkpoint(run, 2), a)
        _run_killed(lambda: _checkpoint(run, 3), b)  # (no recovery in between: a crash loop)
        _check_run(run, {1, 2, 3})
        count("faults.checkpoint.double_kills")


# ----------------------------------------------------------- random: kill a save loop
@pytest.mark.parametrize("form", ["folder", "file"])
def test_saving_in_a_loop_killed_at_random_moments(tmp_path: Path, form: str) -> None:
    """A forked child saves two models in turn as fast as it can; SIGKILL lands mid-write."""
    target = tmp_path / ("m" if form == "folder" else "m.safetensors")
    models = []
    for v in (1, 2):
        m = Glow(GlowConfig(image_size=16, channels=3, levels=2, steps=2, hidden=32))
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(v * 1e-3)
        m.metadata = {"version": v}
        models.append(m)
    save_model(models[0], target)
    rng = random.Random(7)
    kills = 30 if not LONG else 300
    versions = set()
    for i in range(kills):
        pid = os.fork()
        if pid == 0:
            try:
                torch.set_num_threads(1)
                j = 0
                while True:
                    j += 1
                    save_model(models[j % 2], target)
            finally:
                os._exit(3)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the save loop stopped by itself (it failed)"
        versions.add(_version(target))
        count(f"faults.save_loop.{form}.kills")
    assert versions <= {1, 2} and versions


# ------------------------------------------------------------ random: SIGKILL glow train
def _train_args(run: Path, cache: Path) -> list[str]:
    return ["--data", fashion_spec(), "--out", str(run), "--levels", "2", "--steps", "2", "--hidden", "16",
            "--batch", "16", "--lr", "2e-3", "--warmup", "5", "--val-images", "32", "--eval-batch", "32",
            "--init-batch", "64", "--samples", "2", "--eval-minutes", "600", "--eval-steps", "3",
            "--max-steps", str(TRAIN_STEPS), "--threads", "1", "--device", "cpu", "--cache-dir", str(cache), "--no-progress"]


def _reference(tmp: Path, cache: Path) -> dict[str, torch.Tensor]:
    cfg = TrainConfig(data=fashion_spec(), out=str(tmp / "reference"), levels=2, steps=2, hidden=16, batch=16, lr=2e-3,
                      warmup=5, val_images=32, eval_batch=32, init_batch=64, samples=2, eval_minutes=600.0, eval_steps=3,
                      max_steps=TRAIN_STEPS, threads=1, device="cpu", cache_dir=str(cache))
    train(cfg, log=lambda _m: None)
    return load_file(str(tmp / "reference" / "latest" / "model.safetensors"))


def _checkpoint_step(run: Path) -> int | None:
    """The step of the checkpoint a resume would use; checks that it and best/ load completely."""
    latest = gtrain._latest_dir(run)
    if latest is None:
        assert not (run / "best").exists() and not (run / ".best.old").exists()
        return None
    meta, _ = load_trainer_state(latest)
    model = load_model(latest, device="cpu")
    assert model.metadata["training"]["step"] == meta["step"]
    best = run / "best" if (run / "best").exists() else run / ".best.old"
    load_model(best, device="cpu")
    return int(meta["step"])


def test_training_killed_at_random_moments_resumes_exactly(tmp_path: Path) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    ref = _reference(tmp_path, cache)
    rng = random.Random(int(os.environ.get("GLOW_KILL_SEED", "2024")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "glowcore.cli.main", "train"]
    last_step: int | None = None
    log: list[dict] = []
    for i in range(KILLS + 1):
        args = _train_args(run, cache) + (["--resume"] if run.exists() else [])
        proc = subprocess.Popen(cmd + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines: list[str] = []
        kill = i < KILLS
        try:
            if kill and rng.random() < 0.2:  # any moment: imports, data, initialisation, training
                time.sleep(rng.uniform(0.0, 6.0))
                how = "anytime"
            elif kill:  # during training, evaluation or saving: after the n-th checkpoint line, a random delay
                wanted, seen = rng.randint(1, 3), 0
                while seen < wanted:
                    line = proc.stdout.readline()
                    if not line:
                        break
                    lines.append(line)
                    seen += line.startswith("step ")
                time.sleep(rng.uniform(0.0, 0.5))
                how = "training"
            else:
                how = "final"
        finally:
            if kill:
                proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=300)
            lines += out.splitlines(keepends=True)
        text = "".join(lines)
        if kill:
            assert proc.returncode == -signal.SIGKILL or proc.returncode == 0, text[-2000:]
        else:
            assert proc.returncode == 0, text[-3000:]
        resumed = re.search(r"resumed .* at step (\d+)", text)
        if resumed:  # every resume starts at the last complete checkpoint
            assert last_step is not None and int(resumed.group(1)) == last_step, (resumed.group(0), last_step)
        elif last_step is not None:  # killed before it said where it resumed: it cannot have trained
            assert not re.search(r"^step \d+ epoch", text, re.M), f"session {i} did not resume from step {last_step}:\n{text[-2000:]}"
        step = _checkpoint_step(run) if run.exists() else None
        if last_step is not None:
            assert step is not None and step >= last_step
        log.append({"session": i, "how": how, "resumed_at": int(resumed.group(1)) if resumed else None, "checkpoint": step})
        last_step = step
        count("faults.train.sigkill" if kill else "faults.train.final_runs")
    assert last_step == TRAIN_STEPS, log
    resumes = sum(1 for x in log if x["resumed_at"] is not None)
    assert resumes >= min(KILLS, max(2, KILLS // 2)), f"too few kills were resumed from a checkpoint: {log}"
    got = load_file(str(run / "latest" / "model.safetensors"))
    assert got.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=1e-6, msg=k)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(3, TRAIN_STEPS + 1, 3)), "metrics.jsonl has lost or repeated evaluations"
    assert not list(run.glob(".*"))  # no temporary folders left behind
    print(json.dumps(log))


# ------------------------------------------------------ what a killed run leaves, resumed
def _tiny_cfg(tmp: Path, **kw) -> TrainConfig:
    base = dict(data=fashion_spec(), out=str(tmp / "run"), levels=2, steps=1, hidden=8, batch=16, lr=2e-3, warmup=2,
                val_images=16, eval_batch=16, init_batch=32, samples=1, eval_minutes=600.0, eval_steps=3, threads=1,
                device="cpu", cache_dir=str(tmp / "cache"))
    base.update(kw)
    return TrainConfig(**base)


def test_resume_repairs_what_a_kill_left(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_tiny_cfg(tmp_path, max_steps=6), log=lambda _m: None)
    # killed between the two renames of a best/ swap, after logging an evaluation it never
    # checkpointed, in the middle of writing the next line
    os.replace(run / "best", run / ".best.old")
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"step": 9, "val_bpd": 1.0}) + "\n" + '{"step": 12, "val_b')
    messages: list[str] = []
    res = train(_tiny_cfg(tmp_path, max_steps=9), resume=True, log=messages.append)
    assert res.step == 9 and any("resumed" in m and "step 6" in m for m in messages)
    assert load_model(run / "best", device="cpu") is not None and not (run / ".best.old").exists()
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 6, 9]
    # resuming a finished run changes nothing
    before = (run / "metrics.jsonl").read_text()
    again = train(_tiny_cfg(tmp_path, max_steps=9), resume=True, log=messages.append)
    assert again.step == 9 and (run / "metrics.jsonl").read_text() == before
    assert "nothing to train" in messages[-1]
    count("faults.train.repairs", 3)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path: Path) -> None:
    from glowcore.cli.main import main

    run = tmp_path / "run"
    train(_tiny_cfg(tmp_path, max_steps=3), log=lambda _m: None)
    for name in ("latest", "best", "samples", "metrics.jsonl"):  # what is there after a kill during start-up
        p = run / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert main(["train", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert load_trainer_state(run / "latest")[0]["step"] == 3
    count("faults.train.repairs")


@pytest.mark.parametrize("option, message", [("--levels=10000000000", "levels must be <= 16"),
                                             ("--hidden=1000000", "parameters, more than"),
                                             ("--steps=100000", "flow steps")])
def test_absurd_training_architectures_are_refused_at_once(tmp_path: Path, capsys, option: str, message: str) -> None:
    from glowcore.cli.main import main

    assert main(["train", "--data", fashion_spec(), "--out", str(tmp_path / "run"), option, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "latest").exists()
    count("faults.train.absurd")
