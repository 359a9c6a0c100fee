"""``waterwatch train``: backtest, tune, fit on everything known, log, and promote only on merit.

Order matters: the candidate's parameters are chosen on the backtest; the champion's
parameters are re-run through the *same* backtest (same data, same cut-offs); only then is
the final model fitted on all labels known at the workspace's as-of. The new version is
always registered and written to ``risk_model.joblib``; ``champion.joblib`` (what scoring
reads) changes only when the candidate wins: a higher backtest objective, or the same objective
from the same recipe refitted on newer data (else a champion would never see new months); with no
measurable objective, a fit on data as new as the champion's or newer, never one on older data.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.workspace import Workspace
from training import registry
from training.artifacts import (CHAMPION_FILE, MODEL_FILE, ModelBundle, load_bundle, models_dir, save_bundle,
                                workspace_relative)
from training.backtest import (
    MIN_LABELS,
    BacktestResult,
    backtest_in_background,
    build_cutoffs,
    forkable,
    make_model,
    risk_model_fit_predict,
    run_backtest,
    split_snapshot,
)
from training.backtest_report import PAGES, charts, model_importance, report_html
from training.labels import (
    estimate_violation_rate,
    inspection_labels,
    known_inspections,
    label_vector,
    merge_inspections,
)
from training.tune import objective_value, tune, tuning_labels

LOG = logging.getLogger("waterwatch.training")

HEADLINE = ("precision_at_50", "precision_at_100", "precision_at_200", "precision_at_1pct", "recall_at_100",
            "labelled_at_100", "average_precision")


@dataclass
class TrainResult:
    version: str
    promoted: bool
    run_id: str
    objective: float
    champion_version: str | None
    champion_objective: float | None
    params: dict[str, Any]
    backtest: BacktestResult
    model_path: Path
    champion_path: Path
    report_path: Path  # the backtest page in English; its Chinese edition is ``report_zh_path``
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def report_zh_path(self) -> Path:
        return self.report_path.with_name(PAGES["zh"])

    @property
    def promotion(self) -> str:
        """Why the champion changed or stayed."""
        return self.summary.get("promotion", "")


def load_inputs(workspace: Path | str, settings=None) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.Timestamp]:
    """Typed tables, account links and as-of of an ingested workspace (links computed if the pipeline
    has not saved them yet)."""
    ws = Workspace(workspace)
    tables = ws.typed_tables()
    if ws.has("linked", "linkage"):
        links = ws.read("linked", "linkage")
    else:
        from features.linkage import link_accounts
        from features.settings import LinkageSettings

        linkage = settings.linkage if settings is not None else LinkageSettings()
        links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], linkage)
    return tables, links, ws.as_of()


def saved_snapshots(workspace: Path | str) -> dict[pd.Timestamp, Path]:
    """Snapshots an engine run saved in the profile stage: at as-of (``snapshot``) and at each backtest
    cut-off (``snapshot_YYYY-MM-DD``), by date."""
    ws = Workspace(workspace)
    folder = ws.stage("profiles")
    out: dict[pd.Timestamp, Path] = {}
    if ws.manifest().get("profiles_as_of") and (folder / "snapshot.parquet").is_dir():
        out[pd.Timestamp(ws.manifest()["profiles_as_of"])] = folder / "snapshot.parquet"
        for path in folder.glob("snapshot_*.parquet"):
            out[pd.Timestamp(path.stem.split("_", 1)[1])] = path
    return out


def _light_tables(workspace: Path | str) -> dict[str, pd.DataFrame]:
    """What training reads from the typed tables when the snapshots are saved: the inspections, and
    the first month of each monthly table (the backtest's usable cut-offs)."""
    import pyarrow.parquet as pq

    ws = Workspace(workspace)
    tables = {"inspections": ws.read("typed", "inspections") if ws.has("typed", "inspections") else None}
    if tables["inspections"] is None:
        from features.contract import TABLES
        from features.ingest import empty_typed

        tables["inspections"] = empty_typed(TABLES["inspections"])
    for name in ("supply", "discharge", "abstraction"):
        if ws.has("typed", name):
            month = pq.read_table(ws.table_path("typed", name), columns=["month"]).column("month")
            import pyarrow.compute as pc

            first = pc.min(month).as_py()
            tables[name] = pd.DataFrame({"month": pd.to_datetime([first]) if first is not None else pd.to_datetime([])})
    return tables


def profiles_at_as_of(workspace: Path | str, tables, links, as_of: pd.Timestamp, progress=None) -> pd.DataFrame:
    """The pipeline's saved profiles when they end the month before as_of, else built here."""
    from features.profiles import build_profiles

    ws = Workspace(workspace)
    if ws.has("profiles", "profiles"):
        saved = ws.read("profiles", "profiles")
        if len(saved) and saved["month"].max() == as_of - pd.DateOffset(months=1):
            return saved
    return build_profiles(tables, links, as_of, progress=progress)


def headline(result: BacktestResult) -> dict[str, float]:
    """The numbers a reader wants first: mean over cut-offs per target and scorer, and steadiness."""
    summary = result.summary()
    cap = result.capacity_k
    names = list(HEADLINE) + [f"precision_at_{cap}", f"lift_vs_naive_at_{cap}", f"lift_vs_random_at_{cap}"]
    out = {}
    for (target, scorer), row in summary.iterrows():
        for n in dict.fromkeys(names):
            if f"{n}_mean" in row and pd.notna(row[f"{n}_mean"]):
                out[f"{target}.{scorer}.{n}"] = round(float(row[f"{n}_mean"]), 4)
    for target in result.metrics["target"].unique():
        if np.isfinite(result.steadiness(target)):  # never a 0.000 or NaN standing in for "not measured"
            out[f"{target}.model.steadiness_at_capacity"] = round(result.steadiness(target), 4)
    return out


def _choose_params(cutoffs, ms, trials: int, window_labels: int, progress, workers: int = 1, defaults_backtest=None):
    """Optuna's choice when asked for and the backtest windows hold enough hidden-type verdicts to rank models
    (else the defaults, saying why), with the backtest of the parameters chosen (``defaults_backtest()``: the
    defaults' backtest already started, ``backtest_in_background``)."""
    tuned = None
    params: dict[str, Any] = {}
    backtest = None
    tuning_note = None
    if trials > 0 and window_labels < MIN_LABELS:
        tuning_note = (f"Optuna not run: the inspections after the backtest cut-offs found as few as {window_labels} "
                       f"hidden-type violation(s) in a window (< {MIN_LABELS}); an objective on so few is noise, so "
                       "the defaults are kept")
        LOG.warning(tuning_note)
    elif trials > 0:
        tuned = tune(cutoffs, ms.officer_capacity_k, trials, ms.random_state, progress=progress)
        params, backtest = tuned.params, tuned.backtest
    if backtest is None and defaults_backtest is not None:
        backtest = defaults_backtest()
    elif backtest is None:
        backtest = run_backtest(cutoffs, risk_model_fit_predict(params, ms.random_state), ms.officer_capacity_k,
                                workers=workers)
    return tuned, params, backtest, tuning_note


def _run_metrics(backtest: BacktestResult, window_labels: int, objective: float, champion_objective: float | None,
                 violation_rate: float | None, tuned) -> dict[str, float]:
    """What MLflow records of a training run: the backtest, and only the objectives that were measured."""
    metrics = {**backtest.flat_metrics(), "tuning.window_labels": float(window_labels)}
    if np.isfinite(objective):
        metrics["objective"] = objective
    if champion_objective is not None:
        metrics["champion_objective"] = champion_objective
    if violation_rate is not None:
        metrics["estimated_violation_rate"] = violation_rate
    if tuned is not None:
        metrics.update({"tune.best_value": tuned.best_value, "tune.default_value": tuned.default_value,
                        "tune.pruned": tuned.pruned, "tune.kept_defaults": float(tuned.kept_defaults)})
    return metrics


def _challenge_champion(settings, cutoffs, params: dict, objective: float, as_of: pd.Timestamp):
    """The registry, the champion in service, whether this fit replaces it, the champion's objective on this very
    backtest (None when not measurable) and why (the log, the run's and the version's MLflow tag ``promotion``)."""
    from training.champion import connect

    ms = settings.model
    client = connect(settings)
    current = registry.champion_version(client, ms.registered_model_name)
    if current is None:
        return client, current, True, None, "no champion yet"
    champion_params = registry.version_params(current)
    if champion_params == params:
        champion_objective = objective
    else:
        champ = run_backtest(cutoffs, risk_model_fit_predict(champion_params, ms.random_state), ms.officer_capacity_k,
                             workers=settings.scale.workers)
        champion_objective = objective_value(champ)
    promoted, reason = registry.promotion(objective, champion_objective, as_of.date().isoformat(),
                                          (current.tags or {}).get(registry.AS_OF_TAG, ""), str(current.version))
    measured = np.isfinite(objective) and np.isfinite(champion_objective)
    (LOG.info if measured else LOG.warning)("champion decision: %s", reason)  # unmeasured: decided on as-of alone
    return client, current, promoted, (champion_objective if np.isfinite(champion_objective) else None), reason


def _write_report(workspace: Path, backtest: BacktestResult, cutoffs, final_scores: pd.Series, labels: pd.DataFrame,
                  extra: dict, as_of: pd.Timestamp) -> tuple[Path, Path]:
    """The backtest's charts, tables and HTML pages (logged to MLflow from ``art``), and the training labels."""
    out = models_dir(workspace)
    out.mkdir(parents=True, exist_ok=True)
    art = out / "backtest"
    if art.exists():
        shutil.rmtree(art)
    art.mkdir()
    labels.rename_axis("uscc").reset_index().to_parquet(out / "training_labels.parquet", index=False)
    pngs = charts(backtest, cutoffs, final_scores)
    for name, data in pngs.items():
        (art / name).write_bytes(data)
    backtest.metrics.to_csv(art / "metrics.csv", index=False)
    backtest.audit.to_csv(art / "audit.csv", index=False)
    pages = {PAGES["en"]: report_html(backtest, pngs, f"WaterWatch backtest {as_of:%Y-%m}", extra),
             PAGES["zh"]: report_html(backtest, pngs, f"WaterWatch 回测报告 backtest {as_of:%Y-%m}", extra, lang="zh")}
    for folder in (art, out):  # the two editions side by side (each links the other), logged and in models/
        for name, html in pages.items():
            (folder / name).write_text(html, encoding="utf-8")
    return art, out / PAGES["en"]


@dataclass
class _FinalFit:
    """The model fitted on everything known at as-of, with what the report, the registry and the summary read."""
    model: Any
    X: pd.DataFrame
    y: pd.Series
    labels: pd.DataFrame
    scores: pd.Series
    violation_rate: float | None


def _backtest_inputs(workspace: Path, settings, extra_labels: list[Path], evaluation_truth, progress):
    """The tables, the as-of snapshot loader and the backtest cut-offs; an engine run's saved snapshots are
    read when present, so no typed monthly table or profile is read whole."""
    from features.profiles import entity_snapshot

    ms = settings.model
    saved = saved_snapshots(workspace)
    as_of = Workspace(workspace).as_of()
    if as_of in saved:
        tables, links, profiles = _light_tables(workspace), None, None
        loaders = {c: (lambda p=p: pd.read_parquet(p).set_index("uscc")) for c, p in saved.items()}
    else:
        tables, links, as_of = load_inputs(workspace, settings)
        profiles = profiles_at_as_of(workspace, tables, links, as_of, progress=progress)
        loaders = None
    cutoffs = build_cutoffs(
        tables, links, as_of, ms.backtest_cutoffs, extra_labels=extra_labels, truth=evaluation_truth,
        progress=progress, profiles=profiles, snapshots=loaders, sample_entities=ms.backtest_sample_entities,
        random_state=ms.random_state,
    )
    final_snapshot = loaders[as_of] if loaders is not None else (lambda: entity_snapshot(profiles, tables, as_of))
    return tables, as_of, cutoffs, final_snapshot


def at_latest_as_of(workspace: Path | str) -> bool:
    """Whether the workspace's as-of is its drop's latest (the first day after the last month: a run at the
    present), not a replay at an earlier one; a workspace that does not record its drop's latest is a replay."""
    ws = Workspace(workspace)
    latest = ws.manifest().get("latest_as_of")
    return latest is not None and ws.as_of() >= pd.Timestamp(latest)


def _fit_final(snapshot: pd.DataFrame, inspections_table: pd.DataFrame, extra_labels: list[Path], params: dict,
               as_of: pd.Timestamp, random_state: int, present: bool = False) -> _FinalFit:
    """The final model: features as of as_of; labels from the drop's inspections before as_of and from field
    verdicts before it, or (``present``: the drop's latest as-of) from every field verdict, also those recorded
    after it (``known_inspections``); calibrated to the violation rate estimated from queued verdicts, once there
    are enough of them."""
    from features.profiles import SNAPSHOT_META

    X, _ = split_snapshot(snapshot, SNAPSHOT_META)
    inspections = known_inspections(inspections_table, as_of, extra_labels, verdicts_after_as_of=present)
    everything = merge_inspections(inspections_table, extra_labels)
    if len(everything) > len(inspections):
        LOG.info("%d inspection(s) or verdict(s) dated on or after the as-of %s left out of the labels",
                 len(everything) - len(inspections), as_of.date())
    labels_known_at = max(as_of, inspections["inspected_on"].max() + pd.Timedelta(days=1)) if len(inspections) else as_of
    labels = inspection_labels(inspections, labels_known_at)
    y, w = label_vector(labels, X.index)
    violation_rate = estimate_violation_rate(inspections)
    model = make_model(params if violation_rate is None else {**params, "prior": violation_rate}, random_state)
    model.fit(X, y.to_numpy(), sample_weight=w.to_numpy())
    scores = pd.Series(model.predict_proba(X)[:, 1], index=X.index)
    return _FinalFit(model, X, y, labels, scores, violation_rate)


def _final_beside_backtest(cutoffs, ms, trials: int, window_labels: int, workers: int, final_snapshot,
                           inspections: pd.DataFrame, extra_labels: list[Path], as_of: pd.Timestamp, present: bool):
    """Without tuning the final model has the defaults the backtest tries: it is fitted here while the backtest's
    fits run in workers - 1 forked processes (one beside the final fit, so memory stays near the final fit's own).
    The final fit and the function that waits for the backtest, or (None, None) when that does not apply."""
    if not ((trials == 0 or window_labels < MIN_LABELS) and workers > 1 and forkable(cutoffs)):
        return None, None
    pending = backtest_in_background(cutoffs, risk_model_fit_predict({}, ms.random_state), ms.officer_capacity_k,
                                     workers - 1)
    return _fit_final(final_snapshot(), inspections, extra_labels, {}, as_of, ms.random_state, present), pending


def _report_facts(as_of, cutoffs, fit: _FinalFit, objective: float, window_labels: int,
                  champion_objective: float | None, tuning_note: str | None, trials: int, params: dict) -> dict:
    """The facts the backtest page shows above its charts."""
    y = fit.y
    return {
        "as_of": as_of.date().isoformat(),
        "cut-offs": ", ".join(f"{c.cutoff:%Y-%m}" for c in cutoffs),
        "labelled entities at as_of (1/0)": f"{int((y == 1).sum())}/{int((y == 0).sum())}",
        "objective (candidate)": _shown(objective, window_labels),
        "objective (champion, same backtest)": "none" if champion_objective is None else f"{champion_objective:.4f}",
        "tuning": tuning_note or ("none requested" if trials == 0 else f"{trials} Optuna trials"),
        "params": json.dumps(params, default=str),
    }


def _register(workspace: Path, ms, fit: _FinalFit, params: dict, metrics: dict, art: Path, objective: float,
              as_of: pd.Timestamp, trials: int, n_cutoffs: int, extra_labels: list[Path], tuning_note: str | None,
              started_ms: int):
    """One MLflow run and a new registered version: the run's params, the backtest metrics and report, and the
    training table as its dataset."""
    X = fit.X
    run_params = {
        "as_of": as_of.date().isoformat(), "trials": trials, "cutoffs": n_cutoffs,
        "capacity_k": ms.officer_capacity_k, "random_state": ms.random_state, "entities": len(X),
        "features": len(X.columns), "extra_label_files": len(list(extra_labels)),
        **{f"risk.{k}": v for k, v in params.items()},
    }
    return registry.log_run(
        name=ms.registered_model_name, params=run_params, risk_params=params, metrics=metrics, artifacts_dir=art,
        model=fit.model, X_example=X, objective=objective,
        tags={"workspace": str(workspace.resolve()), "tuning": tuning_note or f"trials={trials}"},
        as_of=as_of.date().isoformat(), run_name=f"train {as_of:%Y-%m}", started_ms=started_ms,
        dataset=X.assign(label=fit.y.to_numpy()), dataset_name=f"snapshot {as_of:%Y-%m}",
        dataset_source=str(workspace.resolve()), dataset_targets="label",
    )


def _save_bundles(out: Path, bundle: ModelBundle, promoted: bool, current, registered_name: str) -> tuple[Path, Path]:
    """``risk_model.joblib`` always; ``champion.joblib`` (what scoring reads) only when the candidate won, or
    fetched from the registry when this workspace has none or an older one (the alias moved elsewhere since)."""
    model_path = save_bundle(bundle, out / MODEL_FILE)
    champion_path = out / CHAMPION_FILE
    if promoted:
        save_bundle(bundle, champion_path)
    elif not champion_path.exists() or load_bundle(champion_path).version != str(current.version):
        export_champion(current, registered_name, champion_path)
    return model_path, champion_path


def _tuning_summary(tuning_note: str | None, tuned) -> dict | None:
    if tuning_note:
        return {"skipped": tuning_note}
    if tuned is None:
        return None
    return {"trials": tuned.trials, "pruned": tuned.pruned, "best_value": tuned.best_value,
            "default_value": tuned.default_value, "kept_defaults": tuned.kept_defaults, "best_params": tuned.best_params}


def _summary(meta: dict, promoted: bool, current, objective: float, window_labels: int,
             champion_objective: float | None, ms, cutoffs, violation_rate: float | None, champion_path: Path,
             tuning_note: str | None, tuned, decision: str) -> dict[str, Any]:
    """``model.json``: what this training run decided, why (``promotion``) and on what evidence."""
    champion_now = meta["version"] if promoted else (current.version if current is not None else None)
    return {
        "version": meta["version"], "trained_at": meta["trained_at"], "as_of": meta["as_of"], "run_id": meta["run_id"],
        "promoted": promoted, "promotion": decision,
        "champion_version": str(champion_now) if champion_now is not None else None,
        "previous_champion_version": str(current.version) if current is not None else None,
        "objective": round(objective, 6) if np.isfinite(objective) else None,
        "objective_note": None if np.isfinite(objective) else _shown(objective, window_labels),
        "champion_objective": None if champion_objective is None else round(champion_objective, 6),
        "capacity_k": ms.officer_capacity_k, "cutoffs": [f"{c.cutoff:%Y-%m}" for c in cutoffs],
        "params": meta["params"], "backtest": meta["metrics"],
        "artifact": workspace_relative(champion_path, champion_path.parent.parent),  # models/champion.joblib
        "estimated_violation_rate": violation_rate,
        "tuning": _tuning_summary(tuning_note, tuned),
    }


def train(
    workspace: Path,
    settings,
    trials: int | None = None,
    progress=None,
    extra_labels: Sequence[Path] = (),
    evaluation_truth: pd.DataFrame | None = None,
) -> TrainResult:
    """Train, backtest and register a risk model for the ingested ``workspace``.

    ``extra_labels``: exported verdict files (inspections format + queue_probability).
    ``evaluation_truth``: evaluation only, the planted truth of a generated city, so the backtest
    also reports against it; the platform itself never passes it.
    """
    started_ms = int(time.time() * 1000)  # the MLflow run lasts as long as the stage, not its logging
    ms = settings.model
    trials = ms.optuna_trials if trials is None else trials
    workspace = Path(workspace)
    extra_labels = [Path(p) for p in extra_labels]
    tables, as_of, cutoffs, final_snapshot = _backtest_inputs(workspace, settings, extra_labels, evaluation_truth,
                                                              progress)
    window_labels = tuning_labels(cutoffs)
    workers = settings.scale.workers
    present = at_latest_as_of(workspace)
    fit, pending = _final_beside_backtest(cutoffs, ms, trials, window_labels, workers, final_snapshot,
                                          tables["inspections"], extra_labels, as_of, present)
    tuned, params, backtest, tuning_note = _choose_params(cutoffs, ms, trials, window_labels, progress, workers,
                                                          defaults_backtest=pending)
    objective = objective_value(backtest)  # NaN: not measurable
    client, current, promoted, champion_objective, decision = _challenge_champion(settings, cutoffs, params, objective,
                                                                                  as_of)

    if fit is None:
        fit = _fit_final(final_snapshot(), tables["inspections"], extra_labels, params, as_of, ms.random_state, present)
    backtest.importance = model_importance(fit.model, list(fit.X.columns))
    facts = _report_facts(as_of, cutoffs, fit, objective, window_labels, champion_objective, tuning_note, trials, params)
    art, report_path = _write_report(workspace, backtest, cutoffs, fit.scores, fit.labels, facts, as_of)

    metrics = _run_metrics(backtest, window_labels, objective, champion_objective, fit.violation_rate, tuned)
    reg = _register(workspace, ms, fit, params, metrics, art, objective, as_of, trials, len(cutoffs), extra_labels,
                    tuning_note, started_ms)
    registry.decide(client, ms.registered_model_name, reg, promoted, decision)

    out = models_dir(workspace)
    meta = {
        "version": reg.version, "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "as_of": as_of.date().isoformat(), "run_id": reg.run_id, "params": params,
        "objective": objective if np.isfinite(objective) else None, "metrics": headline(backtest),
        "registered_model": ms.registered_model_name, "tuning": tuning_note,
    }
    model_path, champion_path = _save_bundles(out, ModelBundle(fit.model, list(fit.X.columns), meta), promoted,
                                              current, ms.registered_model_name)
    summary = _summary(meta, promoted, current, objective, window_labels, champion_objective, ms, cutoffs,
                       fit.violation_rate, champion_path, tuning_note, tuned, decision)
    (out / "model.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return TrainResult(
        version=reg.version, promoted=promoted, run_id=reg.run_id, objective=objective,
        champion_version=summary["champion_version"], champion_objective=champion_objective, params=params,
        backtest=backtest, model_path=model_path, champion_path=champion_path, report_path=report_path, summary=summary,
    )


def _shown(objective: float, window_labels: int) -> str:
    if np.isfinite(objective):
        return f"{objective:.4f}"
    return (f"not measured ({window_labels} hidden-type violation(s) found by inspections in the smallest "
            f"backtest window, fewer than {MIN_LABELS})")


def export_champion(version, name: str, path: Path) -> None:
    """A workspace trained for the first time against a registry whose champion came from elsewhere:
    fetch that champion so that scoring here uses the model that earned the alias."""
    model = registry.load_registered_model(name)
    features = registry.signature_columns(name)
    if not features:
        raise RuntimeError(f"registered champion {name} v{version.version} does not record its feature columns")
    meta = {"version": str(version.version), "trained_at": None, "run_id": version.run_id,
            "params": registry.version_params(version), "exported_from_registry": True}
    save_bundle(ModelBundle(model, features, meta), path)

