"""Small helpers the benchmarks share."""

from __future__ import annotations


def pct(xs, q: float) -> float:
    """The ``q`` quantile (0..1) of ``xs``, linearly interpolated; NaN for no values."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
