"""glow train's TensorBoard event files: what they hold, the purge on resume, and the switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorboard", reason="the tensorboard package (in the [test] extra) is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from glowcore.training import eventlog  # noqa: E402
from glowcore.cli.main import main  # noqa: E402
from glowcore.training.train import TrainingError, train  # noqa: E402

from .test_train import FASHION, quiet, tiny  # noqa: E402


def _read(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def test_event_files_hold_the_metrics_and_the_sample_grids(tmp_path: Path) -> None:
    res = train(tiny(tmp_path, max_steps=12, eval_steps=6, tensorboard=True), log=quiet)
    run = Path(res.run_dir)
    assert list(run.glob("events.out.tfevents.*"))
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    acc = _read(run)
    val = acc.Scalars("bits_per_dim/val")
    assert [e.step for e in val] == [ln["step"] for ln in lines] == [6, 12]
    assert [e.value for e in val] == pytest.approx([ln["val_bpd"] for ln in lines], abs=1e-5)
    assert [e.value for e in acc.Scalars("bits_per_dim/train")] == pytest.approx([ln["train_bpd"] for ln in lines], abs=1e-5)
    assert _steps(acc, "optim/lr") == [6, 12] and _steps(acc, "speed/images_per_s") == [6, 12]
    assert acc.Scalars(eventlog.RUNNING_TAG)  # the training loss between evaluations
    images = acc.Images("samples")
    assert [im.step for im in images] == [6, 12]
    # the grid as saved: 4 temperatures x 4 samples of 32 px with 2 px gaps
    assert (images[-1].width, images[-1].height) == (4 * 34 + 2, 4 * 34 + 2)


def test_resume_purges_the_events_after_the_checkpoint(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, max_steps=6, eval_steps=6, tensorboard=True)
    run = Path(train(cfg, log=quiet).run_dir)
    # a crashed session logged past its last checkpoint (step 6): those points must not survive
    stray = eventlog.EventLog(run, running_interval=0.0)
    stray.log({"step": 9, "val_bpd": 99.0, "train_bpd": 99.0})
    stray.running(9, 99.0)
    stray.close()
    train(tiny(tmp_path, max_steps=12, eval_steps=6, tensorboard=True), resume=True, log=quiet)
    acc = _read(run)
    assert _steps(acc, "bits_per_dim/val") == [6, 12]
    assert 99.0 not in [e.value for e in acc.Scalars("bits_per_dim/val")]
    assert all(e.step != 9 for e in acc.Scalars(eventlog.RUNNING_TAG))


def test_tensorboard_switch(tmp_path: Path, monkeypatch, capsys) -> None:
    # --no-tensorboard: metrics.jsonl only
    args = ["train", "--data", FASHION, "--levels", "2", "--steps", "1", "--hidden", "8", "--batch", "32",
            "--max-steps", "2", "--val-images", "40", "--init-batch", "32", "--samples", "2", "--threads", "1",
            "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "off"), "--no-tensorboard"]) == 0
    assert (tmp_path / "off" / "metrics.jsonl").is_file() and not list((tmp_path / "off").glob("events.*"))
    # without the package: nothing by default, a one-line error when asked for
    monkeypatch.setattr(eventlog, "tensorboard_available", lambda: False)
    assert main(args + ["--out", str(tmp_path / "auto")]) == 0
    assert not list((tmp_path / "auto").glob("events.*"))
    with pytest.raises(TrainingError, match="tensorboard package is not installed; pip install tensorboard"):
        train(tiny(tmp_path, "asked", max_steps=2, tensorboard=True), log=quiet)
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "asked2"), "--tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install tensorboard" in err[0]


def test_a_session_in_the_same_second_starts_a_file_that_sorts_last(tmp_path: Path) -> None:
    """TensorBoard applies a resume's purge in file-name order; names start with whole seconds and
    end with a per-process counter that sorts 10 before 9, so a later session waits for a new second."""
    import time

    now = int(time.time())
    (tmp_path / f"events.out.tfevents.{now + 1}.host.123.9").write_bytes(b"")  # (a clock a second ahead)
    log = eventlog.EventLog(tmp_path)
    log.close()
    ours = [p.name for p in tmp_path.glob("events.out.tfevents.*") if not p.name.endswith(".123.9")]
    assert len(ours) == 1 and int(ours[0].split(".")[3]) > now + 1
    assert sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))[-1] == ours[0]
