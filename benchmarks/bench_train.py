"""Training with 30 Optuna trials on a 20,000-entity city, then scoring it; and the backtest bars.

Targets (2 cores): training < 5 minutes, scoring 20,000 entities < 5 s.
    .venv/bin/python benchmarks/bench_train.py [--entities 20000] [--trials 30]
    .venv/bin/python benchmarks/bench_train.py --bars   # precision@100 vs truth on 3 cities (evaluation only)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from _common import CACHE, city, timed


def prepared(drop: Path, work: Path, settings):
    """Ingest + linkage, as the pipeline leaves a workspace before training."""
    from features.ingest import ingest
    from features.linkage import link_accounts
    from features.workspace import Workspace

    ws = Workspace(work)
    ingest(drop, ws)
    tables = ws.typed_tables()
    ws.write("linked", "linkage", link_accounts(tables["entities"], tables["supply"], tables["discharge"],
                                                settings.linkage))
    return ws


def bench_train(entities: int, trials: int) -> None:
    from training.train import train
    from waterwatch.pipeline import run_profiles
    from waterwatch.settings import Settings

    drop = city(entities)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    settings = Settings(home=work / "var", show_progress=False)
    results: dict[str, float] = {}
    with timed("setup: ingest + linkage (not part of the target)", results):
        ws = prepared(drop, work / "workspace", settings)
    truth = pd.read_csv(drop / "truth.csv", dtype=str)  # evaluation only
    label = f"train ({trials} trials)"
    with timed(label, results):
        result = train(ws.root, settings, trials=trials, evaluation_truth=truth)
    run_profiles(ws, settings)  # what the pipeline's profile stage saves: profiles and the snapshot at as-of
    # as the service would: a fresh process, not one holding a training run's memory
    code = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pathlib import Path
from serving.scoring import score
from waterwatch.settings import Settings
settings = Settings(home=Path({str(work / 'var')!r}), show_progress=False)
t = time.perf_counter()
leads = score(Path({str(ws.root)!r}), settings, reasons_for=0)
print(f"score: risk of {{len(leads):,}} entities in {{time.perf_counter() - t:.2f}} s (target < 5 s)")
t = time.perf_counter()
leads = score(Path({str(ws.root)!r}), settings)
print(f"score with reasons for every entity: {{time.perf_counter() - t:.2f}} s")
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    cap = settings.model.officer_capacity_k
    tuning = result.summary["tuning"] or {}
    print(f"version {result.version}; promoted {result.promoted}; "
          f"tuning: {tuning.get('trials')} trials, {tuning.get('pruned')} pruned, kept defaults {tuning.get('kept_defaults')}, "
          f"best {tuning.get('best_value')}, defaults {tuning.get('default_value')}")
    for key, value in sorted(result.summary["backtest"].items()):
        if f"precision_at_{cap}" in key or "steadiness" in key or f"labelled_at_{cap}" in key:
            print(f"  {key}: {value}")
    print(f"train: {results[label]:.1f} s (target < 300 s)")


def bars(entities: int) -> None:
    """Backtest precision@100 against the generator's truth, default RiskModel, with the drop's
    inspections and with none (cold start), on three cities; the bars: >= 0.6 and >= 2x naive."""
    from features.profiles import build_profiles
    from synth import SynthConfig, generate_city
    from training.backtest import Cutoff, build_cutoffs, risk_model_fit_predict, run_backtest
    from training.train import load_inputs
    from waterwatch.settings import Settings

    import mlflow

    settings = Settings(show_progress=False)
    from training.registry import connect

    connect(settings.resolved_tracking_uri(), "waterwatch-backtest-bars")  # MLFLOW_TRACKING_URI or the embedded store
    print(f"logging to MLflow at {settings.resolved_tracking_uri()}, experiment waterwatch-backtest-bars")
    for seed, tampering in ((11, 0.0), (12, 0.0), (13, 0.5)):
        if tampering:
            drop = CACHE / f"city-{entities}-{seed}-36-tampering{int(tampering * 100)}"
            if not (drop / "truth.csv").exists():
                generate_city(SynthConfig(entities=entities, seed=seed).with_tampering_share(tampering), drop)
        else:
            drop = city(entities, seed=seed)
        ws = prepared(drop, Path(tempfile.mkdtemp(prefix="bench-bars-")), settings)
        tables, links, as_of = load_inputs(ws.root)
        truth = pd.read_csv(drop / "truth.csv", dtype=str)
        cuts = build_cutoffs(tables, links, as_of, settings.model.backtest_cutoffs, truth=truth,
                             profiles=build_profiles(tables, links, as_of))
        fit = risk_model_fit_predict({}, settings.model.random_state)
        labelled = run_backtest(cuts, fit, 100)
        cold = run_backtest([Cutoff(c.cutoff, c.X, c.meta, c.y * 0 - 1, c.weight, c.found, c.verdict, c.truth)
                             for c in cuts], fit, 100)
        m, n = labelled.capacity_precision("truth"), labelled.capacity_precision("truth", "naive")
        c = cold.capacity_precision("truth")
        known = [int((cut.y == 1).sum()) for cut in cuts]
        print(f"seed {seed} tampering {tampering or 'default'}: truth precision@100 model {m.mean():.3f} "
              f"{m.round(2).tolist()} (known violations at cut-offs {known}); cold start {c.mean():.3f} "
              f"{c.round(2).tolist()}; naive {n.mean():.3f} {n.round(2).tolist()}; model/naive {m.mean() / n.mean():.2f}x; "
              f"bar >=0.6 {'MET' if m.mean() >= 0.6 else 'NOT MET'}, bar >=2x {'MET' if m.mean() >= 2 * n.mean() else 'NOT MET'}; "
              f"cold > naive {'MET' if c.mean() > n.mean() else 'NOT MET'}", flush=True)
        with mlflow.start_run(run_name=f"bars seed {seed} tampering {tampering or 'default'}"):
            mlflow.log_params({"seed": seed, "tampering_share": tampering or "default", "entities": entities,
                               "cutoffs": len(cuts), "k": 100})
            mlflow.log_metrics({"truth.model.precision_at_100": float(m.mean()),
                                "truth.naive.precision_at_100": float(n.mean()),
                                "truth.cold_start.precision_at_100": float(c.mean()),
                                "model_over_naive": float(m.mean() / n.mean())})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--bars", action="store_true")
    args = parser.parse_args()
    if args.bars:
        bars(args.entities)
    else:
        bench_train(args.entities, args.trials)


if __name__ == "__main__":
    main()
