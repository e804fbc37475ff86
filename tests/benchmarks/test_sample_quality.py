"""benchmarks/sample_quality.py: its Frechet distance and setting parser (the table itself is a benchmark)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from sample_quality import frechet_distance, parse_setting  # noqa: E402


def test_frechet_distance_of_gaussians_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 3))
    b = rng.normal(0, 2, (20000, 3)) + np.array([1.0, 0.0, 2.0])
    # |mu1 - mu2|^2 + tr(I + 4I - 2 * 2I) = 5 + 3 * (1 + 4 - 4) = 8
    assert frechet_distance(a, b) == pytest.approx(8.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_settings_name_one_or_two_temperatures() -> None:
    assert parse_setting("0.7") == (0.7, None)
    assert parse_setting("0.9/0.5") == (0.9, 0.5)
    assert parse_setting("1.0,0.7,0.7,0.7") == ([1.0, 0.7, 0.7, 0.7], None)  # one per level, finest first


def test_precision_and_recall_separate_fidelity_from_diversity() -> None:
    from sample_quality import precision_recall

    rng = np.random.default_rng(1)
    real = rng.normal(0, 1, (800, 2))
    narrow = rng.normal(0, 0.3, (800, 2))  # all plausible, little variety
    far = rng.normal(0, 1, (800, 2)) + 6.0  # nothing plausible
    p_narrow, r_narrow = precision_recall(real, narrow)
    p_far, r_far = precision_recall(real, far)
    assert p_narrow > 0.95 and r_narrow < 0.6
    assert p_far < 0.05 and r_far < 0.05
    p_same, r_same = precision_recall(real, rng.normal(0, 1, (800, 2)))
    assert p_same > 0.9 and r_same > 0.9
