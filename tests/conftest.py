"""Shared fixtures. Measured numbers reported by tests are printed in pytest's terminal summary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ../shared beside the repository, or WATERWATCH_SHARED (a worktree elsewhere)
SHARED = Path(os.environ.get("WATERWATCH_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SAMPLE_DROP = SHARED / "contract" / "sample-city"
ADBENCH_DIR = SHARED / "benchmarks" / "adbench"

_MEASUREMENTS: list[str] = []


@pytest.fixture(scope="session")
def sample_drop() -> Path:
    if not SAMPLE_DROP.is_dir():
        pytest.skip(f"shared sample drop not found at {SAMPLE_DROP}")
    return SAMPLE_DROP


@pytest.fixture
def report_metric():
    """Record a measured number so that it shows in the summary of a plain `pytest -q` run."""

    def _report(line: str) -> None:
        _MEASUREMENTS.append(line)

    return _report


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("measured")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)
