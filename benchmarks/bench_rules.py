"""Supervision checks, cases, water-rights matching, outbox and report on a 20,000-entity, 36-month city.

Target: all checks under 20 s and under 2 GB peak memory on the shared 2-core machine.
    .venv/bin/python benchmarks/bench_rules.py [--entities 20000]
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd
from _common import city, peak_rss_mb, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    args = parser.parse_args()
    drop = city(args.entities)

    from features.ingest import ingest
    from features.workspace import Workspace
    from models.cases import build_cases
    from models.notifications import build_outbox
    from models.rules import run_checks, water_rights_candidates
    from serving.report import write_report
    from models.settings import RuleSettings

    results: dict[str, float] = {}
    ws = Workspace(tempfile.mkdtemp())
    with timed("ingest", results):
        ingest(drop, ws)
    tables, as_of, rules = ws.typed_tables(), ws.as_of(), RuleSettings()
    with timed("run_checks", results):
        alerts = run_checks(tables, None, as_of, rules)
    with timed("build_cases", results):
        cases = build_cases(tables, None, alerts, as_of, rules)
    with timed("water_rights_candidates", results):
        matches = water_rights_candidates(tables, None, as_of, rules)
    with timed("build_outbox", results):
        outbox = build_outbox(alerts, tables["entities"], set(), rules)
    with timed("write_report", results):
        write_report(tempfile.mkdtemp(), alerts, matches, tables, as_of, cases=cases)
    rows = sum(len(t) for t in tables.values())
    print(f"{rows:,} typed rows, as_of {as_of.date()}: {len(alerts):,} alerts "
          f"{alerts.groupby('kind').size().to_dict()}, {len(cases):,} cases {cases.groupby('kind').size().to_dict()}, "
          f"{len(matches):,} matches, {len(outbox):,} SMS "
          f"({int(outbox['segment_count'].sum()):,} segments)")
    # a year of monthly runs: every as_of from 12 months back, as a backtest would call it
    with timed("run_checks x12 monthly as_of", results):
        for k in range(12, 0, -1):
            run_checks(tables, None, as_of - pd.DateOffset(months=k), rules)
    checks = results["run_checks"] + results["build_cases"] + results["water_rights_candidates"]
    print(f"checks + cases + matching {checks:.1f} s, peak RSS {peak_rss_mb():.0f} MB (targets: < 20 s, < 2048 MB)")


if __name__ == "__main__":
    main()
