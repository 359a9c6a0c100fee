"""Synthetic city generation, streamed block by block: wall time and peak memory.

Targets on the 2-core machine: 20,000 entities x 36 months under 60 s; 1,000,000 entities with peak
memory well under 4 GB (it is bounded by the block, not the city). Run in a fresh process so the peak
RSS is the generator's own:

    .venv/bin/python benchmarks/bench_synth.py [--entities 20000] [--format csv|parquet|mixed] [--cities 1]
    nice -n 10 .venv/bin/python benchmarks/bench_synth.py --entities 1000000 --format parquet
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import peak_rss_mb


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet", "mixed"])
    parser.add_argument("--cities", type=int, default=1)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--block-entities", type=int, default=25_000)
    parser.add_argument("--out", type=Path, default=None, help="keep the drop here (default: a temporary folder)")
    args = parser.parse_args()

    from synth import SynthConfig, generate_city, generate_province

    config = SynthConfig(
        entities=args.entities, months=args.months, seed=args.seed, file_format=args.format,
        block_entities=args.block_entities,
    )  # fmt: skip
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        start = time.perf_counter()
        if args.cities > 1:
            per_city = generate_province(config, args.cities, out)
            counts = {k: sum(c[k] for c in per_city.values()) for k in next(iter(per_city.values()))}
        else:
            counts = generate_city(config, out)
        elapsed = time.perf_counter() - start
        peak = peak_rss_mb()
        size = _size_mb(out)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    rows = sum(v for k, v in counts.items() if k not in ("truth", "link_truth", "malformed"))
    blocks = -(-args.entities // args.cities // args.block_entities)
    print(
        f"synth: {args.entities:,} entities x {args.months} months in {args.cities} city(ies), "
        f"{blocks} block(s) of <= {args.block_entities:,} per city, {rows:,} rows ({args.format}, {size:,.0f} MB)"
    )
    print(f"  generate (build + write, streamed): {elapsed:.1f} s, peak RSS {peak:,.0f} MB")
    print("  " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
