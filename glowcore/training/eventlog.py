"""TensorBoard event files for a training run, beside ``metrics.jsonl`` (the optional extra).

``glow train`` writes them into the run folder when the ``tensorboard`` package is installed
(``pip install -e ".[tensorboard]"``), so ``tensorboard --logdir runs`` shows every run's bits/dim
(training, validation, the live weights beside an averaged model's), learning rate, speed and the
sample grids. ``TrainConfig.tensorboard``: ``None`` writes them when the package is there, ``True``
insists (a one-line error without it), ``False`` never writes them.

On ``--resume`` the events after the resumed step are purged, as ``metrics.jsonl`` is trimmed, so
the curves never show steps the run went back on.
"""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path
from typing import Optional

from torch import Tensor

from ..io.grid import make_grid

__all__ = ["EventLog", "open_event_log", "tensorboard_available", "SCALAR_TAGS", "INSTALL_HINT"]

INSTALL_HINT = "pip install tensorboard (or the project's extra: pip install -e \".[tensorboard]\")"

# metrics.jsonl key -> TensorBoard tag (grouped so TensorBoard puts the bits/dim curves together)
SCALAR_TAGS = {
    "train_bpd": "bits_per_dim/train",
    "val_bpd": "bits_per_dim/val",
    "val_bpd_uniform_noise": "bits_per_dim/val_uniform_noise",
    "val_bpd_live": "bits_per_dim/val_live_weights",
    "lr": "optim/lr",
    "skipped_steps": "optim/skipped_steps",
    "images_per_s": "speed/images_per_s",
    "epoch": "progress/epoch",
}
RUNNING_TAG = "bits_per_dim/train_running"


def _wait_for_a_later_second(run_dir: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and a resumed session's purge works
    only if its file comes after the earlier ones. Names start with the creation time in whole
    seconds, then host, process and a per-process counter (which sorts 10 before 9), so a session
    started in the same second as an earlier file waits for the next second (at most 1 s)."""
    latest = 0
    for f in run_dir.glob("events.out.tfevents.*"):
        stamp = f.name.split(".")[3]
        if stamp.isdigit():
            latest = max(latest, int(stamp))
    while int(time.time()) <= latest:
        time.sleep(0.05)


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class EventLog:
    """One run's event file writer. ``log(line, grid)`` takes a ``metrics.jsonl`` line (and the
    sample grid of that evaluation); ``running(step, bpd)`` the training loss between evaluations,
    at most every ``running_interval`` seconds."""

    def __init__(self, run_dir: Path, purge_step: Optional[int] = None, running_interval: float = 10.0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        _wait_for_a_later_second(Path(run_dir))
        self._writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
        self.running_interval = running_interval
        self._last_running = -math.inf

    def log(self, line: dict, grid: Optional[Tensor] = None, grid_columns: int = 8) -> None:
        step = int(line["step"])
        for key, tag in SCALAR_TAGS.items():
            value = line.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self._writer.add_scalar(tag, float(value), step)
        if grid is not None:  # rows: the sampling temperatures, as in samples/step_*.png
            self._writer.add_image("samples", make_grid(grid.float().clamp(0, 1), grid_columns), step, dataformats="HWC")
        self._writer.flush()

    def running(self, step: int, bpd: float) -> None:
        now = time.monotonic()
        if math.isfinite(bpd) and now - self._last_running >= self.running_interval:
            self._last_running = now
            self._writer.add_scalar(RUNNING_TAG, float(bpd), step)

    def close(self) -> None:
        self._writer.close()


def open_event_log(run_dir: Path, want: Optional[bool], purge_step: Optional[int] = None) -> Optional[EventLog]:
    """The run's :class:`EventLog`, or None when ``want`` is False, or None when it is None and
    the ``tensorboard`` package is missing; ``want=True`` without it raises ``RuntimeError``."""
    if want is False:
        return None
    if not tensorboard_available():
        if want:
            raise RuntimeError(f"--tensorboard: the tensorboard package is not installed; {INSTALL_HINT}")
        return None
    return EventLog(run_dir, purge_step=purge_step)
