"""How many CPU threads an interactive decode should use, chosen per machine by measurement.

A one-face decode is small: on some CPUs two intra-op threads decode it faster than one, on others
(or on a busy machine) the threads mostly wait on each other, and a GUI thread beside the decode
needs a core of its own while the user drags a slider. No fixed count is right everywhere, so
:func:`calibrate` times a few decodes of the model at each candidate count (interleaved, so a
burst of load elsewhere hits every candidate alike), keeping each one's fastest time, and
:func:`choose` picks:

* the fewest threads within :data:`TOLERANCE` of the fastest (more threads cost the rest of the
  machine for no gain);
* every core only when it beats the best count that leaves a core free by :data:`ALL_CORES_GAIN`
  (a decode using all cores competes with the GUI thread while dragging).

``GLOW_THREADS=N`` (:func:`env_threads`) overrides the calibration; so does an explicit count
(the explorer's ``--threads`` or its ``engine/threads`` setting).

The same goes for the precision of the live decode: bfloat16 coupling networks
(``glowcore.base.modes.fast_networks``) are faster than float32 on CPUs that compute bf16
natively, by how much depends on the CPU (AVX512-BF16 on AMD Zen 4, AMX on Intel), and at batch 1
a CPU may lose more to converting and reordering than it gains. :func:`calibrate_precision` times
both and keeps bf16 only where it is at least :data:`FAST_MIN_GAIN` faster (float32 is exact).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch

__all__ = [
    "ThreadPolicy", "env_threads", "candidates", "calibrate", "choose", "TOLERANCE", "ALL_CORES_GAIN", "MAX_THREADS",
    "calibrate_precision", "choose_precision", "FAST_MIN_GAIN",
]

#: Counts within this fraction of the fastest count as equally fast.
TOLERANCE = 0.10
#: All cores are used only when that is this much faster than leaving one free.
ALL_CORES_GAIN = 0.25
#: More threads than this never pay off for one face.
MAX_THREADS = 8
#: The bf16 networks are kept only when they decode at least this much faster than float32.
FAST_MIN_GAIN = 0.05


@dataclass(frozen=True)
class ThreadPolicy:
    """The thread count chosen, where it came from (``"calibrated"``, ``"GLOW_THREADS"``,
    ``"requested"`` or ``"default"``) and, when calibrated, each candidate's fastest decode in ms."""

    threads: int
    source: str
    timings_ms: dict[int, float] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.timings_ms:
            return f"{self.threads} thread{'s' if self.threads != 1 else ''} ({self.source})"
        times = ", ".join(f"{n}: {t:.1f} ms" for n, t in sorted(self.timings_ms.items()))
        return f"{self.threads} thread{'s' if self.threads != 1 else ''} ({self.source}; {times})"


def env_threads() -> Optional[int]:
    """``GLOW_THREADS`` as a thread count (None when unset, empty or not a positive integer)."""
    text = os.environ.get("GLOW_THREADS", "").strip()
    try:
        n = int(text)
    except ValueError:
        return None
    return n if n > 0 else None


def candidates(cores: Optional[int] = None) -> list[int]:
    """Thread counts worth trying on ``cores`` cores (default: this machine's)."""
    cores = max(1, int(cores or os.cpu_count() or 1))
    top = min(cores, MAX_THREADS)
    return sorted({1, 2, 4, max(1, cores - 1), top} & set(range(1, top + 1)))


def choose(timings_ms: dict[int, float], cores: Optional[int] = None) -> int:
    """The count to use, given each candidate's fastest time (see the module docstring)."""
    if not timings_ms:
        raise ValueError("no timings to choose from")
    cores = max(1, int(cores or os.cpu_count() or 1))
    leave_one = {n: t for n, t in timings_ms.items() if n < cores} or dict(timings_ms)
    best = min(leave_one.values())
    pick = min(n for n, t in leave_one.items() if t <= best * (1 + TOLERANCE))
    if cores not in leave_one and timings_ms.get(cores, float("inf")) <= best * (1 - ALL_CORES_GAIN):
        return cores
    return pick


def calibrate(
    decode: Callable[[], object],
    counts: Optional[Sequence[int]] = None,
    rounds: int = 3,
    cores: Optional[int] = None,
) -> ThreadPolicy:
    """Time ``decode()`` (one interactive decode) at each thread count of ``counts`` (default:
    :func:`candidates`) over ``rounds`` interleaved rounds after one warm-up each, and set torch
    to the count :func:`choose` picks. A few tenths of a second for a 64x64 face."""
    counts = sorted(set(counts or candidates(cores)))
    best: dict[int, float] = {}
    for n in counts:  # warm-up: each count's thread pool and caches
        torch.set_num_threads(n)
        decode()
    for _ in range(max(1, rounds)):
        for n in counts:
            torch.set_num_threads(n)
            t = time.perf_counter()
            decode()
            ms = (time.perf_counter() - t) * 1000.0
            best[n] = min(ms, best.get(n, ms))
    threads = choose(best, cores)
    torch.set_num_threads(threads)
    return ThreadPolicy(threads, "calibrated", best)


def choose_precision(timings_ms: dict[str, float]) -> bool:
    """Whether to decode with the bf16 networks, given the fastest ``"fast"`` and ``"exact"``
    decode times: only when bf16 is at least :data:`FAST_MIN_GAIN` faster."""
    return timings_ms["fast"] <= timings_ms["exact"] * (1.0 - FAST_MIN_GAIN)


def calibrate_precision(decode: Callable[[bool], object], rounds: int = 3) -> tuple[bool, dict[str, float]]:
    """Time ``decode(fast)`` with the bf16 networks (``True``) and in float32 (``False``) over
    ``rounds`` interleaved rounds after a warm-up of each (which builds what each path caches);
    returns :func:`choose_precision`'s answer and each path's fastest time in ms."""
    for fast in (True, False):
        decode(fast)
    best: dict[str, float] = {}
    for _ in range(max(1, rounds)):
        for fast in (True, False):
            t = time.perf_counter()
            decode(fast)
            ms = (time.perf_counter() - t) * 1000.0
            key = "fast" if fast else "exact"
            best[key] = min(ms, best.get(key, ms))
    return choose_precision(best), best
