"""The closed loop: rounds of field checks from the top of the queue, verdicts back as labels, retrain, re-score.

A season simulated on a drop with a truth.csv (evaluation only: the platform never reads it). The pipeline runs
once; then each round the officers check K leads: the queue of ``serving.queue.build_queue`` over the whole city
(the top K minus the exploration share, plus the exploration share drawn at random by industry section, each
lead with the probability it entered the queue), skipping entities already checked or already known as
violators. The verdict of a check is what a visit would find according to truth.csv: a hidden-type violation
(private well, unpermitted abstraction, meter tampering) with its type, a record-visible one (expired permit,
quota overrun, tax gap) with its type (not a hit for the ranking of hidden violations), or nothing. The verdicts
are exported as `waterwatch export-labels` writes them (inspections format plus queue_probability) and the
model is retrained as `waterwatch train --labels` does, then the city re-scored.

Printed per round, in the same run: hidden violations found per 100 checks by the model's queue, by the naive
rule (discharge / (supply + metered abstraction), the baseline of ../shared/evaluation/evaluate.py, checked top
down, no learning) and by a random draw (its exact expectation); and the number of rounds each needs to find
80 % of the hidden violators (the loop goes on past --rounds until the model has, up to --max-rounds).

    .venv/bin/python benchmarks/bench_loop.py --drop ../shared/validation-cities/dezhou-6000 [--rounds 4]
        [--checks 100] [--share 0.1] [--max-rounds 12] [--work DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# ../shared beside the repository, or WATERWATCH_SHARED (a worktree elsewhere)
EVALUATE = Path(os.environ.get("WATERWATCH_SHARED", ROOT.parent / "shared")) / "evaluation" / "evaluate.py"
HIDDEN = ("private_well", "unpermitted_abstraction", "meter_tampering")


def _evaluate_module():
    """The shared evaluation script (its naive rule is the baseline), evaluation only."""
    spec = importlib.util.spec_from_file_location("shared_evaluate", EVALUATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _verdicts(checked: pd.DataFrame, truth: pd.DataFrame, day: pd.Timestamp, round_no: int) -> pd.DataFrame:
    """What the visits find, as the service exports verdicts."""
    kind = truth.drop_duplicates("uscc").set_index("uscc")["violation_type"]
    found = checked["uscc"].map(kind)
    return pd.DataFrame({
        "inspection_id": [f"LOOP{round_no:02d}-{i:04d}" for i in range(len(checked))],
        "uscc": checked["uscc"].to_numpy(),
        "inspected_on": day.strftime("%Y-%m-%d"),
        "officer_id": "LOOP",
        "outcome": np.where(found.notna(), "violation", "no_violation"),
        "violation_type": found.fillna("").to_numpy(),
        "queue_probability": checked["queue_probability"].to_numpy(),
    })


def run_loop(drop: Path, work: Path, rounds: int = 4, checks: int = 100, share: float = 0.10,
             max_rounds: int = 12, until: float = 0.8, seed: int = 0, log=print) -> dict:
    """Run the pipeline on ``drop`` in ``work``, then the loop; returns the per-round table and the summary."""
    from features.workspace import Workspace
    from serving.queue import build_queue
    from serving.scoring import score
    from training.train import train
    from waterwatch.pipeline import run_pipeline
    from waterwatch.settings import Settings

    ev = _evaluate_module()
    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=work / "var", show_progress=False)
    out = work / "out"
    start = time.perf_counter()
    run_pipeline(drop, out, settings, trials=0)
    log(f"pipeline: {time.perf_counter() - start:.0f} s")
    ws = Workspace(out / "workspace")
    as_of = ws.as_of()
    truth = pd.read_csv(drop / "truth.csv", dtype=str, keep_default_na=False)
    truth["uscc"] = truth["uscc"].str.strip().str.upper()
    inspections = ws.typed_tables()["inspections"]
    known = set(inspections.loc[inspections["outcome"] == "violation", "uscc"].astype("str").str.upper())
    hidden = set(truth.loc[truth["violation_type"].isin(HIDDEN), "uscc"]) - known
    leads = pd.read_csv(out / "leads.csv", dtype={"uscc": str})
    universe = set(leads["uscc"].str.upper()) - known
    naive_order = [u for u in ev.naive_ranking(str(drop), universe, as_of)[0] if u in universe]

    checked: set[str] = set()
    naive_checked: set[str] = set()
    files: list[Path] = []
    rows = []
    found_model = found_naive = 0.0
    expected_random = 0.0
    remaining_random_hidden, remaining_random_pool = float(len(hidden)), float(len(universe))
    reached = {"model": None, "naive": None, "random": None}
    r = 0
    while r < max(rounds, 1) or (reached["model"] is None and r < max_rounds):
        r += 1
        pool = leads[~leads["uscc"].str.upper().isin(checked | known)].assign(district="全市")
        queue = build_queue(pool, checks, share, random_state=seed + r)
        verdicts = _verdicts(queue, truth, as_of + pd.Timedelta(days=7 * r), r)
        path = work / f"verdicts-{r:02d}.csv"
        verdicts.to_csv(path, index=False)
        files.append(path)
        got = len(set(queue["uscc"].str.upper()) & hidden)
        checked |= set(queue["uscc"].str.upper())
        found_model += got
        explored = int(queue["exploratory"].sum())

        naive_next = [u for u in naive_order if u not in naive_checked][:checks]
        naive_got = len(set(naive_next) & hidden)
        naive_checked |= set(naive_next)
        found_naive += naive_got

        random_got = checks * remaining_random_hidden / max(remaining_random_pool, 1.0)
        remaining_random_hidden -= random_got
        remaining_random_pool -= checks
        expected_random += random_got

        for name, total in (("model", found_model), ("naive", found_naive), ("random", expected_random)):
            if reached[name] is None and total >= until * len(hidden):
                reached[name] = r
        rows.append({"round": r, "checks": len(queue), "exploratory": explored,
                     "model_hidden": got, "naive_hidden": naive_got, "random_hidden": round(random_got, 2),
                     "model_cum": int(found_model), "naive_cum": int(found_naive), "random_cum": round(expected_random, 1)})
        log(f"round {r}: model {got}/{len(queue)} (exploratory {explored}), naive {naive_got}/{checks}, "
            f"random {random_got:.1f}/{checks}; cumulative {int(found_model)} / {int(found_naive)} / "
            f"{expected_random:.1f} of {len(hidden)}")
        if r >= max(rounds, 1) and (reached["model"] is not None or r >= max_rounds):
            break
        start = time.perf_counter()
        train(ws.root, settings, trials=0, extra_labels=files)
        leads = score(ws.root, settings, reasons_for=0)
        log(f"  retrained on {len(files)} verdict file(s) and re-scored: {time.perf_counter() - start:.0f} s")

    table = pd.DataFrame(rows)
    first = table[table["round"] <= rounds]
    n_checks = first["checks"].sum()
    summary = {
        "drop": str(drop), "hidden_violators": len(hidden), "rounds": rounds, "checks_per_round": checks,
        "exploration_share": share,
        "per_100_model": round(100 * first["model_hidden"].sum() / n_checks, 1),
        "per_100_naive": round(100 * first["naive_hidden"].sum() / (checks * len(first)), 1),
        "per_100_random": round(100 * first["random_hidden"].sum() / (checks * len(first)), 1),
        "per_100_ceiling": round(100 * min(len(hidden), n_checks) / n_checks, 1),
        "rounds_to_80pct": {k: (v if v is not None else f"> {r}") for k, v in reached.items()},
    }
    return {"table": table, "summary": summary}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drop", type=Path, required=True, help="a drop with truth.csv (evaluation only)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--checks", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.10, help="exploration share of each round's queue")
    parser.add_argument("--max-rounds", type=int, default=12, help="go on until 80 %% are found, at most this")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-loop-"))
    result = run_loop(args.drop.resolve(), work, args.rounds, args.checks, args.share, args.max_rounds, seed=args.seed,
                      log=lambda m: print(m, flush=True))
    pd.set_option("display.width", 200)
    print(result["table"].to_string(index=False))
    print(json.dumps(result["summary"], ensure_ascii=False, indent=2))
    return result


if __name__ == "__main__":
    main()
