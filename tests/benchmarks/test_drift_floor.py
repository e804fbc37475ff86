"""benchmarks/drift_floor.py: the drift and on rate a perfect edit would get from a judge, on
made-up labels and judges whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import attr_classifier as ac  # noqa: E402
from drift_floor import perfect_edit_drift, perfect_edit_on_rate  # noqa: E402

NAMES = list(ac.KEY_ATTRIBUTES)


def _labels(n: int = 600) -> np.ndarray:
    return np.random.default_rng(0).random((n, len(NAMES))) < 0.5


def test_a_judge_that_reads_the_labels_reports_no_drift_for_a_perfect_edit() -> None:
    y = _labels()
    r = perfect_edit_drift(y.astype(float), y, NAMES, "Male")
    assert r["drift"] == pytest.approx(0.0) and r["left_out"] == 0


def test_a_judge_blind_to_lipstick_on_men_reports_it_lost_when_a_woman_becomes_a_man() -> None:
    y = _labels()
    p = y.astype(float)
    lip, male = NAMES.index("Wearing_Lipstick"), NAMES.index("Male")
    p[:, lip] = y[:, lip] & ~y[:, male]  # sees lipstick on women only
    flip = perfect_edit_drift(p, y, NAMES, "Male")
    assert flip["by"]["Wearing_Lipstick"] == pytest.approx(float(np.mean(y[:, lip])), abs=0.01)  # every face with lipstick changes sex
    assert flip["by"]["Smiling"] == pytest.approx(0.0)
    assert perfect_edit_drift(p, y, NAMES, "Male", flip=False)["drift"] == pytest.approx(0.0)  # no edit, no drift
    assert perfect_edit_drift(p, y, NAMES, "Smiling")["drift"] == pytest.approx(0.0)  # sex kept: the blind spot does not show


def test_the_on_rate_of_a_perfect_edit_is_the_judges_recall_weighted_by_sex() -> None:
    y = _labels()
    p = y.astype(float)
    blond, male = NAMES.index("Blond_Hair"), NAMES.index("Male")
    p[:, blond] = y[:, blond] & ~y[:, male]  # sees blond hair on women only
    lacking = ~y[:, blond]
    assert perfect_edit_on_rate(p, y, NAMES, "Blond_Hair") == pytest.approx(float(np.mean(~y[lacking, male])))
    assert perfect_edit_on_rate(y.astype(float), y, NAMES, "Blond_Hair") == pytest.approx(1.0)
    assert perfect_edit_on_rate(p, y, NAMES, "Male") is None
