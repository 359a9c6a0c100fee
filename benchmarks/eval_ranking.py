"""Precision of the lead ranking against the generators' truth (evaluation only: reads truth.csv).

For each city (our generator with seeds not used while designing the detector, a tampering-heavy mix, and the
shared sample drop made by an outside generator): ingest, link, profiles + snapshot at the drop's as_of, then the
pipeline's model at cold start (no labels) and with the drop's inspections known before as_of as labels. Scored
by ../shared/evaluation/evaluate.py against the hidden-type violators (private wells, unpermitted abstraction,
meter tampering; every other entity a miss): precision@50/100/1 % and AP of the model, of the naive
discharge/supply rule and of a random list. Generated cities and their ingested, linked tables are cached under
/tmp, keyed by a hash of the generator's code.

    .venv/bin/python benchmarks/eval_ranking.py [--cities 31,32,33t,sample] [--entities 6000]
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
KEYS = ("p@50", "p@100", "p@1pct", "ap")


def generator_version() -> str:
    """A hash of the generator's code: cached cities of an older generator are not reused."""
    import hashlib

    digest = hashlib.sha1()
    for path in sorted((ROOT / "synth").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _tag(name: str, entities: int) -> str:
    return f"{entities}-{name}" if name == "sample" else f"{entities}-{name}-{generator_version()}"


def city_drop(name: str, entities: int) -> Path:
    """'sample', '<seed>' or '<seed>t' (half the violations meter tampering): the drop folder."""
    if name == "sample":
        return SAMPLE
    from synth import SynthConfig, generate_city

    tampering = name.endswith("t")
    seed = int(name.rstrip("t"))
    path = CACHE / f"city-{_tag(name, entities)}"
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
    cached = CACHE / f"prepared-{_tag(name, entities)}.pkl"
    if cached.exists():
        tables, links, as_of = pickle.loads(cached.read_bytes())
    else:
        ws = Workspace(CACHE / f"ws-{_tag(name, entities)}")
        ingest(drop, ws)
        tables, as_of = ws.typed_tables(), ws.as_of()
        links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], Settings().linkage)
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps((tables, links, as_of)))
    truth = pd.read_csv(drop / "truth.csv", dtype=str)
    return tables, links, as_of, truth


def evaluate(name: str, entities: int) -> list[dict]:
    """The pipeline's model (training.backtest.make_model over the snapshot, labels from the drop's inspections,
    hidden types only) at the drop's as-of, cold and with labels, scored by ../shared/evaluation/evaluate.py."""
    import tempfile

    from bench_loop import _evaluate_module
    from features.profiles import SNAPSHOT_META, build_profiles, entity_snapshot
    from training.backtest import make_model, split_snapshot
    from training.labels import inspection_labels, label_vector

    ev = _evaluate_module()
    t0 = time.perf_counter()
    tables, links, as_of, _truth = prepared(name, entities)
    snap = entity_snapshot(build_profiles(tables, links, as_of), tables, as_of)
    X, _ = split_snapshot(snap, SNAPSHOT_META)
    y, w = label_vector(inspection_labels(tables["inspections"], as_of), X.index)
    drop = city_drop(name, entities)
    rows = []
    for scorer, labels in (("model_cold", np.full(len(X), -1)), ("model_labels", y.to_numpy())):
        risk = make_model({}, 0).fit(X, labels, sample_weight=w.to_numpy()).predict_proba(X)[:, 1]
        order = np.lexsort((X.index.to_numpy(dtype=str), -risk))
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            pd.DataFrame({"rank": np.arange(1, len(X) + 1), "uscc": X.index[order]}).to_csv(f.name, index=False)
            res = ev.evaluate(str(drop), f.name, as_of=str(as_of.date()))
        rows.append({"city": name, "scorer": scorer, **{k: res["project"][k] for k in KEYS}})
        if scorer == "model_cold":
            rows.append({"city": name, "scorer": "naive", **{k: res["naive"][k] for k in KEYS}})
            rows.append({"city": name, "scorer": "random", **{k: res["random"][k] for k in KEYS}})
    print(f"{name}: {len(X)} entities, {res['targets']} hidden violators, {int((y == 1).sum())} known hidden "
          f"violations, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", default="31,32,33t,sample")
    parser.add_argument("--entities", type=int, default=6000)
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
