"""The train and score stages of a province run alone, on a copy of a run folder (issue #13): what changes in
them is measured back to back on the same workspace, and their outputs compared.

    .venv/bin/python benchmarks/bench_scale.py --entities 100000 --out bench-data/run-100k   # once
    .venv/bin/python benchmarks/bench_train_score.py bench-data/run-100k bench-data/ts-new [--profile]

The copy starts without a model (no MLflow store, no models or scores stage), so every copy trains version 1
of the same model; it then writes ``leads.csv`` as ``run_province`` does, and prints wall and CPU time per stage.
Old code: ``PYTHONPATH=<an export of that commit> .venv/bin/python <that export>/benchmarks/...``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import shutil
import time
from pathlib import Path

from _common import ROOT  # noqa: F401  (puts the repo on sys.path)
from bench_scale import PeakMemory


def fresh_copy(run: Path, out: Path) -> None:
    """The run folder up to its checks: everything but the model, its registry and the scores."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("mlflow.db", "var", "mlartifacts"), symlinks=True)
    for stage in ("models", "scores"):
        shutil.rmtree(out / "workspace" / stage, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a province run folder (bench_scale.py --out)")
    parser.add_argument("out", type=Path, help="the copy to train and score (replaced)")
    parser.add_argument("--profile", action="store_true", help="cProfile each stage into OUT/<stage>.prof")
    args = parser.parse_args()
    fresh_copy(args.run, args.out)
    out = args.out.resolve()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{out / 'mlflow.db'}"

    from features.workspace import Workspace
    from waterwatch.pipeline import run_score, run_train
    from waterwatch.province import _city_leads
    from waterwatch.settings import Settings

    settings = Settings(home=out / "var", show_progress=False, engine="embedded")
    pws = Workspace(out / "workspace")
    folders = pws.manifest().get("cities", [])
    cities = [{"folder": f} for f in folders]
    city_ws = {f: Workspace(out / "cities" / f / "workspace") for f in folders}

    def cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    for name in ("train", "score"):
        prof = cProfile.Profile() if args.profile else None
        start, cpu_start, load = time.perf_counter(), cpu(), os.getloadavg()[0]
        if prof:
            prof.enable()
        with PeakMemory() as mem:  # RSS (a forked child's shared pages count twice) and PSS of the process tree
            if name == "train":
                run_train(pws, settings, trials=0)
            else:
                leads = _city_leads(run_score(pws, settings), cities, city_ws)
                leads.to_csv(out / "leads.csv", index=False)
        if prof:
            prof.disable()
            prof.dump_stats(str(out / f"{name}.prof"))
        print(f"  {name:<6} {time.perf_counter() - start:8.1f} s   cpu {cpu() - cpu_start:8.1f} s   "
              f"peak {mem.peak:6.0f} MB (PSS {getattr(mem, 'peak_pss', 0):6.0f} MB)   load {load:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
