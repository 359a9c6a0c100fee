"""Precision of the risk ranking against the generators' truth (evaluation only: reads truth.csv).

For each city (generated with seeds not used for tuning, a tampering-heavy mix, and the shared
sample drop made by an outside generator): ingest, link, profiles + snapshot at the drop's as_of,
then RiskModel with the domain detectors at cold start (no labels) and with the inspections known
before as_of as labels. Prints precision@50/100/200 of the model, of the naive discharge/supply
ratio rule and of a random list (the violators' share), against violators whose violation began
before as_of. Generated cities and their ingested, linked tables are cached under /tmp.

    .venv/bin/python benchmarks/eval_ranking.py [--cities 21,22,23,24t,sample] [--entities 4000]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path("/tmp/eval_ranking")
SAMPLE = Path("/work/shared/contract/sample-city")
KS = (50, 100, 200)


def city_drop(name: str, entities: int) -> Path:
    """'sample', '<seed>' or '<seed>t' (half the violations meter tampering): the drop folder."""
    if name == "sample":
        return SAMPLE
    from synth import SynthConfig, generate_city

    tampering = name.endswith("t")
    seed = int(name.rstrip("t"))
    path = CACHE / f"city-{entities}-{name}"
    if not (path / "entities.csv").exists() and not (path / "entities.parquet").exists():
        config = SynthConfig(entities=entities, seed=seed)
        if tampering:
            config = config.with_tampering_share(0.5)
        generate_city(config, path)
    return path


def prepared(name: str, entities: int) -> tuple[dict, pd.DataFrame, pd.Timestamp, pd.DataFrame]:
    """Typed tables, links, as_of and truth of a city (cached: they do not depend on the models)."""
    from features.ingest import ingest
    from features.linkage import link_accounts
    from features.workspace import Workspace
    from waterwatch.settings import Settings

    drop = city_drop(name, entities)
    cached = CACHE / f"prepared-{entities}-{name}.pkl"
    if cached.exists():
        tables, links, as_of = pickle.loads(cached.read_bytes())
    else:
        ws = Workspace(CACHE / f"ws-{entities}-{name}")
        ingest(drop, ws)
        tables, as_of = ws.typed_tables(), ws.as_of()
        links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], Settings().linkage)
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps((tables, links, as_of)))
    truth = pd.read_csv(drop / "truth.csv", dtype=str)
    return tables, links, as_of, truth


def labels_at(inspections: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    """1 violation, 0 no violation, -1 otherwise: each entity's latest verdict before as_of."""
    known = inspections[inspections["inspected_on"] < as_of]
    known = known[known["outcome"].isin(["violation", "no_violation"])].sort_values("inspected_on", kind="stable")
    latest = known.drop_duplicates("uscc", keep="last").set_index("uscc")["outcome"]
    verdict = latest.reindex(index)
    return np.where(verdict == "violation", 1, np.where(verdict == "no_violation", 0, -1))


def precision_at(score: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Precision of the top k by score (NaN last; ties broken by position, deterministically)."""
    s = np.where(np.isnan(score), -np.inf, score)
    top = np.argsort(-s, kind="stable")[:k]
    return float(truth[top].mean())


def evaluate(name: str, entities: int) -> list[dict]:
    from features.profiles import build_profiles, entity_snapshot
    from models import RiskModel
    from models.detectors import domain_detectors

    t0 = time.perf_counter()
    tables, links, as_of, truth = prepared(name, entities)
    profiles = build_profiles(tables, links, as_of)
    snap = entity_snapshot(profiles, tables, as_of)
    since = pd.to_datetime(truth["since_month"], format="%Y-%m")
    violators = set(truth.loc[since < as_of, "uscc"])
    y_true = snap.index.isin(violators).astype(float)
    rows = []

    def add(scorer: str, score: np.ndarray):
        row = {"city": name, "scorer": scorer}
        row.update({f"p@{k}": precision_at(score, y_true, k) for k in KS})
        rows.append(row)

    inspections = tables["inspections"]
    labels = labels_at(inspections, snap.index, as_of) if len(inspections) else np.full(len(snap), -1)
    for scorer, y in [("model_cold", np.full(len(snap), -1)), ("model_labels", labels)]:
        model = RiskModel(random_state=0, detectors=domain_detectors()).fit(snap, y)
        add(scorer, model.predict_proba(snap)[:, 1])
    add("naive_ratio", snap["naive_discharge_supply_ratio"].to_numpy(dtype="float64"))
    rows.append({"city": name, "scorer": "random", **{f"p@{k}": float(y_true.mean()) for k in KS}})
    print(
        f"{name}: {len(snap)} entities, {int(y_true.sum())} violators, {int((labels == 1).sum())}/"
        f"{int((labels >= 0).sum())} labelled violations/verdicts, {time.perf_counter() - t0:.0f} s",
        file=sys.stderr, flush=True,
    )
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", default="21,22,23,24t,sample")
    parser.add_argument("--entities", type=int, default=4000)
    args = parser.parse_args(argv)
    rows = []
    for name in args.cities.split(","):
        rows += evaluate(name.strip(), args.entities)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return table


if __name__ == "__main__":
    main()
