"""Reading a training run directory for the run viewer (Qt-free, torch-free).

A run directory (``glow train --out RUN_DIR``) holds a metrics log (``metrics.jsonl``, one JSON
object per line, or ``metrics.csv``) and sample grids (PNG files, in the run directory or a
``samples/`` folder). Reading tolerates a log being written at the same time: a partial or bad
last line is skipped.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

__all__ = ["RunData", "read_run", "read_metrics", "latest_sample", "find_runs"]

X_KEYS = ("step", "iteration", "iter", "epoch")
PREFERRED = ("train_bpd", "val_bpd", "bpd", "loss", "train_loss", "val_loss")
MAX_BYTES = 32 * 1024 * 1024


@dataclass
class RunData:
    """What the run viewer shows: metric series against the step and the newest sample."""

    path: Path
    x_key: str = "step"
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    sample: Optional[Path] = None
    records: int = 0
    problem: str = ""


def _metrics_file(run: Path) -> Optional[Path]:
    for name in ("metrics.jsonl", "metrics.csv"):
        if (run / name).is_file():
            return run / name
    return None


def read_metrics(path: Path) -> list[dict]:
    """Records of a ``.jsonl`` or ``.csv`` metrics log; unreadable lines are skipped."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size > MAX_BYTES:  # keep the tail of a huge log
            fh.seek(size - MAX_BYTES)
            fh.readline()
        text = fh.read().decode("utf-8", errors="replace")
    records: list[dict] = []
    if path.suffix == ".csv":
        for row in csv.DictReader(text.splitlines()):
            rec = {}
            for k, v in row.items():
                try:
                    rec[k] = float(v)
                except (TypeError, ValueError):
                    rec[k] = v
            records.append(rec)
        return records
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            records.append(obj)
    return records


def _number(v) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def latest_sample(run: Path) -> Optional[Path]:
    """The newest PNG in the run directory or its ``samples`` folder."""
    best: Optional[tuple[float, Path]] = None
    for folder in (run, run / "samples"):
        if not folder.is_dir():
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.lower().endswith(".png") and not e.name.startswith("."):
                try:
                    t = e.stat().st_mtime
                except OSError:
                    continue
                if best is None or t > best[0]:
                    best = (t, Path(e.path))
    return best[1] if best else None


def read_run(run: str | os.PathLike, max_series: int = 4) -> RunData:
    """Read a run directory; ``problem`` says what is missing instead of raising."""
    path = Path(run)
    data = RunData(path)
    if not path.is_dir():
        data.problem = f"{path}: not a folder"
        return data
    data.sample = latest_sample(path)
    mf = _metrics_file(path)
    if mf is None:
        data.problem = f"{path}: no metrics.jsonl or metrics.csv yet"
        return data
    try:
        records = read_metrics(mf)
    except OSError as e:
        data.problem = f"{mf}: cannot be read ({e})"
        return data
    data.records = len(records)
    if not records:
        data.problem = f"{mf}: no records yet"
        return data
    keys: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if _number(v) is not None:
                keys.setdefault(k, None)
    x_key = next((k for k in X_KEYS if k in keys), None)
    data.x_key = x_key or "record"
    candidates = [k for k in PREFERRED if k in keys]
    candidates += [k for k in keys if k not in candidates and k != x_key and ("bpd" in k or "loss" in k)]
    for name in candidates[:max_series]:
        xs, ys = [], []
        for i, r in enumerate(records):
            y = _number(r.get(name))
            x = _number(r.get(x_key)) if x_key else float(i)
            if y is not None and x is not None:
                xs.append(x)
                ys.append(y)
        if ys:
            data.series[name] = (xs, ys)
    return data


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Run directories directly under ``root`` (those with a metrics log), newest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    runs = [p for p in base.iterdir() if p.is_dir() and _metrics_file(p) is not None]
    return sorted(runs, key=lambda p: _metrics_file(p).stat().st_mtime, reverse=True)  # type: ignore[union-attr]
