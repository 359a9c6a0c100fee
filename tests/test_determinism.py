"""Scores do not depend on the batch or the CPU (issue #10 item 1).

The pipeline runs in fresh processes under different OpenBLAS kernels (OPENBLAS_CORETYPE picks the kernel of
numpy's and scipy's BLAS), and leads.csv must be identical byte for byte: the model's arithmetic never goes
through a BLAS path whose rounding depends on the CPU or on how many rows are scored at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synth import SynthConfig, generate_city

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _pipeline(drop: Path, out: Path, home: Path, kernel: str) -> bytes:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "WATERWATCH_HOME": str(home),
           "WATERWATCH_SHOW_PROGRESS": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", "from waterwatch.cli import app; app()", "pipeline", "--data", str(drop),
         "--out", str(out), "--trials", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return (out / "leads.csv").read_bytes()


def test_leads_are_identical_under_two_openblas_kernels(tmp_path):
    drop = tmp_path / "drop"
    generate_city(SynthConfig(entities=600, seed=5), drop)
    kernels = ["Prescott", "SkylakeX" if _avx512() else "Haswell"]
    leads = {k: _pipeline(drop, tmp_path / f"out-{k}", tmp_path / f"var-{k}", k) for k in kernels}
    first, second = (leads[k] for k in kernels)
    assert len(first.splitlines()) > 500
    assert first == second, f"leads.csv differs between the {kernels[0]} and {kernels[1]} BLAS kernels"
