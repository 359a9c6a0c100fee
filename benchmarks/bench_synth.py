"""Synthetic city generation: 20,000 entities x 36 months.

Target: under 60 s on the 2-core machine, peak memory well under 2 GB. Run in a
fresh process so the peak RSS is the generator's own:
    .venv/bin/python benchmarks/bench_synth.py [--entities 20000] [--format csv|parquet|mixed]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet", "mixed"])
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    from synth import SynthConfig, build_city, generate_city

    config = SynthConfig(entities=args.entities, months=args.months, seed=args.seed, file_format=args.format)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        counts = generate_city(config, out)
        elapsed = time.perf_counter() - start
        peak = peak_rss_mb()
    start = time.perf_counter()
    build_city(config)
    in_memory = time.perf_counter() - start
    rows = sum(v for k, v in counts.items() if k not in ("truth", "link_truth", "malformed"))
    print(f"synth: {args.entities:,} entities x {args.months} months, {rows:,} rows ({args.format})")
    print(f"  generate_city (build + write): {elapsed:.1f} s, peak RSS {peak:.0f} MB (targets: < 60 s, < 2048 MB)")
    print(f"  build_city alone (in memory): {in_memory:.1f} s")
    print("  " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
