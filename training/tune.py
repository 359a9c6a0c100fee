"""Optuna search over RiskModel's LightGBM and blend parameters, judged by the temporal backtest.

The objective is what officers feel: precision of the list at their capacity, averaged over
cut-offs and penalised by its spread (mean - std), on hidden-type violations that inspections found
after each cut-off. A trial reports its running mean after every cut-off so that MedianPruner can
stop a hopeless one early. The sampler is seeded, and the model's defaults are the first
trial, so tuning can only match or beat them on the backtest.

With fewer than ``MIN_LABELS`` such violations in a cut-off's window the objective is noise (one
found violation more or less moves it by the whole gap between two models), so training does not
tune at all then (``tuning_labels`` says how many there are) and keeps the defaults. The domain
detectors are not a tuning choice: they are the model.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.backtest import BacktestResult, Cutoff, risk_model_fit_predict, run_backtest

# name -> (kind, low, high, log); only names that RiskModel.get_params() has are searched
SEARCH_SPACE: dict[str, tuple[str, float, float, bool]] = {
    # LightGBM, the supervised part
    "n_estimators": ("int", 60, 400, True),
    "learning_rate": ("float", 0.02, 0.2, True),
    "num_leaves": ("int", 7, 63, True),
    "min_child_samples": ("int", 5, 80, True),
    "subsample": ("float", 0.6, 1.0, False),
    "colsample_bytree": ("float", 0.5, 1.0, False),
    "reg_lambda": ("float", 1e-3, 10.0, True),
    # positive-unlabeled learning and the blend with the detectors
    "unlabeled_weight": ("float", 0.01, 1.0, True),
    "blend_half": ("float", 2.0, 100.0, True),
}
# JSON-able choices that are not RiskModel numbers (see training.backtest.make_model); none is tuned
CATEGORICAL: dict[str, tuple[str, ...]] = {}


@dataclass
class TuneResult:
    params: dict[str, Any]  # what training should use: the best trial's, or {} (defaults) if it did not clearly win
    best_params: dict[str, Any]
    best_value: float
    default_value: float
    kept_defaults: bool
    trials: int
    pruned: int
    backtest: BacktestResult | None = None  # the backtest of ``params`` (no need to run it again)


def tuning_labels(cutoffs: Sequence[Cutoff]) -> int:
    """The fewest hidden-type violations that inspections found after any cut-off (among the entities its
    backtest evaluates): what a tuning objective would rest on."""
    return min((int(c.found.to_numpy()[c.evaluated].sum()) for c in cutoffs), default=0)


def objective_value(result: BacktestResult) -> float:
    """Steadiness of precision@capacity on inspected hidden-type violations, plus a hair of mean average
    precision to break the ties that sparse inspections produce; NaN when not measurable (fewer than
    MIN_LABELS violations in a window)."""
    if not result.measurable("inspected"):
        return float("nan")
    ap = result.metrics[(result.metrics.target == "inspected") & (result.metrics.scorer == "model")]["average_precision"]
    tie = float(np.nan_to_num(ap.mean())) if len(ap) else 0.0
    return float(result.steadiness("inspected")) + 0.01 * tie


def tunable(defaults: dict[str, Any]) -> dict[str, tuple[str, float, float, bool]]:
    """The part of the search space that the model actually has (numeric defaults only)."""
    space: dict = {name: ("cat", 0, 0, False) for name in CATEGORICAL if name in defaults}
    for name, spec in SEARCH_SPACE.items():
        if name in defaults and isinstance(defaults[name], (int, float)) and not isinstance(defaults[name], bool):
            space[name] = spec
    return space


def suggest(trial, space: dict[str, tuple[str, float, float, bool]]) -> dict[str, Any]:
    params = {name: trial.suggest_categorical(name, list(choices)) for name, choices in CATEGORICAL.items()
              if name in space}
    for name, (kind, low, high, log) in space.items():
        if name in CATEGORICAL:
            continue
        if kind == "int":
            params[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            params[name] = trial.suggest_float(name, low, high, log=log)
    return params


def _clip_to_space(defaults: dict[str, Any], space) -> dict[str, Any]:
    """The defaults as a first trial, clipped into the space (Optuna rejects out-of-range fixed values)."""
    out = {}
    for name, (kind, low, high, _) in space.items():
        if kind == "cat":
            out[name] = defaults[name]
            continue
        value = min(max(defaults[name], low), high)
        out[name] = int(value) if kind == "int" else float(value)
    return out


def _study(random_state: int, trials: int):
    """A seeded TPE study whose MedianPruner stops a trial that trails the median after a cut-off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=random_state, n_startup_trials=min(10, max(1, trials // 3))),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )


def _objective(cutoffs, capacity_k: int, random_state: int, base: dict, space, fit_predict_factory,
               results: dict[int, BacktestResult]):
    """One trial: a backtest of the suggested parameters that reports its running mean after every cut-off
    (so the pruner can stop it early) and keeps its result for the final choice."""
    import optuna

    def objective(trial) -> float:
        params = {**base, **suggest(trial, space)}

        def report(step: int, running_mean: float) -> None:
            trial.report(running_mean, step)
            if step < len(cutoffs) - 1 and trial.should_prune():
                raise optuna.TrialPruned()

        result = run_backtest(cutoffs, fit_predict_factory(params, random_state), capacity_k, on_cutoff=report)
        results[trial.number] = result
        return objective_value(result)

    return objective


def _choose(study, space, base: dict, results: dict[int, BacktestResult], min_gain: float) -> TuneResult:
    """The best trial's parameters only if they beat the defaults (trial 0) by ``min_gain``; else the defaults."""
    import optuna

    states = [t.state for t in study.trials]
    first = study.trials[0] if study.trials else None
    default_value = first.value if first is not None and first.state == optuna.trial.TrialState.COMPLETE else float("nan")
    best = study.best_trial
    kept = bool(space) and best.number != 0 and not (best.value >= default_value + min_gain)
    if kept or best.number == 0:
        params, chosen = dict(base), results.get(0)
    else:
        params, chosen = {**base, **best.params}, results.get(best.number)
    return TuneResult(
        params=params,
        best_params={**base, **best.params},
        best_value=float(best.value),
        default_value=float(default_value),
        kept_defaults=kept or best.number == 0,
        trials=len(states),
        pruned=sum(st == optuna.trial.TrialState.PRUNED for st in states),
        backtest=chosen,
    )


def tune(
    cutoffs: Sequence[Cutoff],
    capacity_k: int,
    trials: int,
    random_state: int = 0,
    base_params: dict[str, Any] | None = None,
    fit_predict_factory: Callable[[dict, int], Callable] = risk_model_fit_predict,
    defaults: dict[str, Any] | None = None,
    progress=None,
    min_gain: float | None = None,
) -> TuneResult:
    """Search ``trials`` parameter sets, the first being the model's defaults.

    The inspected target is sparse, so a trial's edge may be luck: the best trial replaces the
    defaults only if it finds at least ``min_gain`` more precision at capacity (default: one more
    violation in the officers' list per cut-off). Otherwise the defaults are kept, which generalise.
    """
    if defaults is None:
        from models import RiskModel

        from training.backtest import SNAPSHOT_DEFAULTS

        defaults = {**RiskModel().get_params(), **SNAPSHOT_DEFAULTS}
    min_gain = 1.0 / capacity_k if min_gain is None else min_gain
    space = tunable(defaults)
    base = dict(base_params or {})
    study = _study(random_state, trials)
    if space:
        study.enqueue_trial(_clip_to_space(defaults, space))
    results: dict[int, BacktestResult] = {}
    objective = _objective(cutoffs, capacity_k, random_state, base, space, fit_predict_factory, results)
    steps = progress(range(trials), desc="optuna", total=trials) if progress else range(trials)
    for _ in steps:
        study.optimize(objective, n_trials=1)
    return _choose(study, space, base, results, min_gain)


def main(argv: list[str] | None = None) -> None:
    """``python -m training.tune --workspace WS --trials N``: tune and print the best params (no registry).

    Runs on the model settings' defaults and the options given; a deployment's settings (from the
    environment) apply through ``waterwatch train``, the composition root."""
    import json
    from pathlib import Path

    from training.backtest import build_cutoffs
    from training.settings import ModelSettings
    from training.train import load_inputs

    ms = ModelSettings()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--trials", type=int, default=ms.optuna_trials)
    parser.add_argument("--cutoffs", type=int, default=ms.backtest_cutoffs)
    args = parser.parse_args(argv)
    tables, links, as_of = load_inputs(args.workspace)
    cutoffs = build_cutoffs(tables, links, as_of, args.cutoffs)
    result = tune(cutoffs, ms.officer_capacity_k, args.trials, ms.random_state)
    print(json.dumps({"params": result.params, "kept_defaults": result.kept_defaults,
                      "best_params": result.best_params, "best_value": result.best_value,
                      "default_value": result.default_value, "trials": result.trials, "pruned": result.pruned}, indent=2))


if __name__ == "__main__":
    main()
