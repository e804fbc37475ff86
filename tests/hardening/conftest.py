"""Hardening tests: one torch thread (the machine is shared), case counts reported at the end."""

from __future__ import annotations

import json
import os

import pytest
import torch

from ._common import CASES


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001
    if not CASES:
        return
    path = os.environ.get("GLOW_FUZZ_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(dict(sorted(CASES.items())), fh, indent=2)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if CASES:
        terminalreporter.write_sep("-", "hardening: cases run per target")
        for target, n in sorted(CASES.items()):
            terminalreporter.write_line(f"{target:40s} {n:7d}")
