"""Province scale (issue #13 item 6): ingest to scored leads, stage by stage, wall time and peak memory.

    .venv/bin/python benchmarks/bench_scale.py --entities 20000
    .venv/bin/python benchmarks/bench_scale.py --entities 200000
    .venv/bin/python benchmarks/bench_scale.py --entities 1000000      # 1,070 s at 329cb00 on a quiet machine
    .venv/bin/python benchmarks/bench_scale.py --entities 200000 --engine spark   # the Spark path (local[2])

The drop is a province (``city=<division>/`` folders, ``province.json``) of ceil(N / 62,500) cities (at most
as many as the generator has vocabularies for: 4, so 1,000,000 entities are 4 cities of 250,000), made
once under bench-data/ (Parquet) with the streaming province generator when it is there
(``synth.generate_province``), else city by city. The run is ``waterwatch.province.run_province``
with no tuning (``--trials 0``): every city ingested, linked, profiled, checked; one model trained (a
sample per backtest cut-off, the final fit on all) and every entity scored in chunks. Peak memory is
the largest resident set of this process and its children (Spark's JVM and workers) during the stage,
sampled every 0.2 s, and beside it their proportional set (PSS: a forked child's pages shared with its parent
counted once, split between them); the CPU time of this process and its ended children (user + system) and the load average
at the end of each stage; generation is not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from _common import CACHE, ROOT  # noqa: F401  (puts the repo on sys.path)

CITY_ENTITIES = 62_500  # a province of a million entities is Shandong's 16 cities


class PeakMemory:
    """Largest memory (MB) of this process plus its children while a stage runs: ``peak`` sums their resident
    sets (RSS: a forked child's pages shared with its parent count twice), ``peak_pss`` their proportional sets
    (PSS: each shared page split between the processes sharing it, i.e. what the machine really holds)."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = pss = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                rss, pss = rss + info.rss, pss + info.pss
            except Exception:  # a child that just ended
                pass
        self.peak, self.peak_pss = max(self.peak, rss / 2**20), max(self.peak_pss, pss / 2**20)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


def province_drop(entities: int, seed: int, file_format: str) -> Path:
    cities = max(1, math.ceil(entities / CITY_ENTITIES))
    try:  # the generator knows a few cities' vocabularies: beyond that, bigger cities
        from synth.vocab import PROVINCE_CITIES

        cities = min(cities, len(PROVINCE_CITIES))
    except ImportError:
        pass
    path = CACHE / f"province-{entities}-{cities}-{seed}-{file_format}"
    if (path / "province.json").exists():
        return path
    import synth
    from synth import SynthConfig

    config = SynthConfig(entities=entities, seed=seed, file_format=file_format)
    start = time.perf_counter()
    if hasattr(synth, "generate_province"):
        synth.generate_province(config, cities, path)
    else:  # before the streaming generator: each city generated whole, one after the other
        import dataclasses

        listing = []
        sizes = [entities // cities + (1 if i < entities % cities else 0) for i in range(cities)]
        for i, n in enumerate(sizes):
            division = str(371400 + 100 * i)
            cfg = dataclasses.replace(config, entities=n, seed=seed * 100 + i, city_division=division)
            synth.generate_city(cfg, path / f"city={division}")
            listing.append({"folder": f"city={division}", "city": division, "division": division, "seed": cfg.seed, "entities": n})
        (path / "province.json").write_text(json.dumps({"province": "山东省", "cities": listing}, ensure_ascii=False), encoding="utf-8")
    print(f"generated {entities:,} entities in {cities} cities in {time.perf_counter() - start:.0f} s: {path}", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--format", default="parquet", choices=["csv", "parquet"])
    parser.add_argument("--engine", default="embedded", choices=["embedded", "spark", "memory"])
    parser.add_argument("--out", type=Path, default=None, help="default: a folder under bench-data/ (removed after)")
    args = parser.parse_args()

    from waterwatch.province import run_province
    from waterwatch.settings import Settings

    drop = province_drop(args.entities, args.seed, args.format)
    out = args.out or CACHE / f"run-{args.entities}-{args.engine}"
    if out.exists():
        shutil.rmtree(out)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
    out.mkdir(parents=True)
    settings = Settings(home=out / "var", show_progress=False, engine=args.engine)
    results: list[tuple[str, float, float, float, float, float]] = []

    def cpu() -> float:  # this process and its ended children (each city stage runs in processes that end)
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    @contextmanager
    def stage(name: str):
        start, cpu_start = time.perf_counter(), cpu()
        with PeakMemory() as mem:
            yield
        results.append((name, time.perf_counter() - start, mem.peak, cpu() - cpu_start, os.getloadavg()[0],
                        mem.peak_pss))
        print(f"  {name:<22} {results[-1][1]:8.1f} s   peak {results[-1][2]:8.0f} MB (PSS {mem.peak_pss:,.0f})   "
              f"cpu {results[-1][3]:8.1f} s   load {results[-1][4]:.2f}", flush=True)

    print(f"province run: {args.entities:,} entities, engine {args.engine}, load {os.getloadavg()[0]:.2f}", flush=True)
    start = time.perf_counter()
    with PeakMemory() as total_mem:
        result = run_province(drop, out, settings, trials=0, stage_timer=stage)
    total = time.perf_counter() - start
    print(f"  {'end to end':<22} {total:8.1f} s   peak {total_mem.peak:8.0f} MB (PSS {total_mem.peak_pss:,.0f})   "
          f"({result['leads']:,} leads, {len(result['cities'])} cities; load average now {os.getloadavg()[0]:.2f})")
    print(json.dumps({"entities": args.entities, "engine": args.engine, "total_s": round(total, 1),
                      "peak_mb": round(total_mem.peak), "peak_pss_mb": round(total_mem.peak_pss),
                      "stages": [(n, round(t, 1), round(m), round(c, 1), round(la, 2), round(pss))
                                 for n, t, m, c, la, pss in results]}))
    if args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
