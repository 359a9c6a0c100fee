"""Ingest of a 20,000-entity, 36-month city (about 1.5 million rows).

Target: under 30 s and under 2 GB peak memory. Run in a fresh process so the
peak RSS is the ingest's own:  .venv/bin/python benchmarks/bench_ingest.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from _common import city


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    args = parser.parse_args()
    drop = city(args.entities)
    # measured in a child process so that the peak memory is the ingest's own, not the generator's
    code = f"""
import sys, time, tempfile, resource
sys.path.insert(0, {str(drop.parents[1])!r})
from features.ingest import ingest
from features.workspace import Workspace
t = time.perf_counter()
summary = ingest({str(drop)!r}, Workspace(tempfile.mkdtemp()))
elapsed = time.perf_counter() - t
rows = sum(v['read'] for v in summary.values())
assert all(v['read'] == v['accepted'] + v['quarantined'] for v in summary.values())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"ingest: {{rows:,}} rows in {{elapsed:.1f}} s, peak RSS {{peak:.0f}} MB (targets: < 30 s, < 2048 MB)")
"""
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    main()
