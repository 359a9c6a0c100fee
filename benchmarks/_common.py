"""Shared helpers of the benchmark scripts: a cached generated city and peak-memory measurement."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench-data"


def city(entities: int = 20_000, seed: int = 11, months: int = 36) -> Path:
    """A generated city drop, made once and reused by every benchmark."""
    from synth import SynthConfig, generate_city

    path = CACHE / f"city-{entities}-{seed}-{months}"
    if not (path / "entities.csv").exists() and not (path / "entities.parquet").exists():
        generate_city(SynthConfig(entities=entities, seed=seed, months=months), path)
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(label: str, results: dict):
    start = time.perf_counter()
    yield
    results[label] = time.perf_counter() - start
    print(f"{label}: {results[label]:.2f} s (peak RSS so far {peak_rss_mb():.0f} MB)", flush=True)
