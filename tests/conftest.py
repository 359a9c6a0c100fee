"""Shared fixtures. Measured numbers reported by tests are printed in pytest's terminal summary."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_DROP = Path(__file__).resolve().parents[1].parent / "shared" / "contract" / "sample-city"
ADBENCH_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "adbench"

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
