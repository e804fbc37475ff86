"""Test setup: GUI tests run offscreen; torch uses one thread (tiny models are overhead-bound, and
OpenMP threads fighting a busy second core slow everything down by orders of magnitude); fixed seeds."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("GLOW_THREADS", "1")  # explorer engines: no thread calibration (test_threads.py does it)
os.environ.setdefault("GLOW_BF16", "1")  # nor a precision one: bf16 where native (test_engine_threads.py measures)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield
