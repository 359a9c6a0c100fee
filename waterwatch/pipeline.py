"""Wires the layers together, stage by stage. The only module that imports every layer.

Each ``run_*`` function is one stage: it reads what the stage before it left in
the workspace and writes its own folder, so a stage can be re-run alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from features.ingest import ingest
from features.workspace import Workspace
from waterwatch.settings import Settings

OUTPUT_FILES = (
    "ingest_summary.json",
    "quarantine.csv",
    "linkage.csv",
    "linkage_review.csv",
    "profiles.parquet",
    "alerts.csv",
    "cases.csv",
    "water_rights.csv",
    "outbox.csv",
    "leads.csv",
    "model.json",
    "report.html",
)


def progress_factory(settings: Settings):
    """A tqdm wrapper when progress is wanted, else None (stages accept either)."""
    if not settings.show_progress:
        return None
    from tqdm.auto import tqdm

    return tqdm


def _say(settings: Settings, message: str) -> None:
    if settings.show_progress:
        print(message, flush=True)


def run_ingest(data: Path, workspace: Path, settings: Settings, as_of: str | None = None) -> dict:
    """Validate the drop (typed/ + quarantine/) and link its accounts (linked/)."""
    ws = Workspace(workspace)
    summary = ingest(data, ws, as_of=as_of, progress=progress_factory(settings), chunk_rows=settings.scale.chunk_rows)
    run_link(ws, settings)
    return summary


def run_link(ws: Workspace, settings: Settings) -> pd.DataFrame:
    from features.linkage import link_accounts

    tables = _linkage_inputs(ws)
    links = link_accounts(
        tables["entities"], tables["supply"], tables["discharge"], settings.linkage, progress=progress_factory(settings)
    )
    ws.reset_stage("linked")
    ws.write("linked", "linkage", links)
    counts = links["status"].value_counts().to_dict()
    ws.update_manifest(linkage={k: int(v) for k, v in counts.items()})
    return links


def _linkage_inputs(ws: Workspace) -> dict[str, pd.DataFrame]:
    """The typed tables linkage reads, and of the monthly ones only the rows and columns it reads (each
    account as written in its latest month, and its code): a large city's months, volumes and other tables
    stay on disk."""
    from features.contract import TABLES
    from features.ingest import empty_typed
    from features.linkage import account_rows

    ws.require_typed()
    out = {"entities": pd.read_parquet(ws.table_path("typed", "entities")) if ws.has("typed", "entities") else empty_typed(TABLES["entities"])}
    for name in ("supply", "discharge"):  # of each account only the rows linkage reads (its latest and its code)
        out[name] = account_rows(ws.table_path("typed", name)) if ws.has("typed", name) else empty_typed(TABLES[name])
    return out


def run_profiles(ws: Workspace, settings: Settings, tables: dict[str, pd.DataFrame] | None = None,
                 load: bool = True) -> pd.DataFrame | None:
    """Monthly profiles, and the entity snapshot at as-of that training and scoring read. ``load=False``
    (engine runs) leaves the profiles on disk and returns None: a large city's profiles do not fit in memory."""
    from features.profiles import build_profiles, entity_snapshot

    if settings.engine != "memory":
        from waterwatch.scale import run_engine_stages

        from training.backtest import cutoff_dates

        ws.require_typed()
        cutoffs = cutoff_dates(ws.as_of(), settings.model.backtest_cutoffs)  # training reads these snapshots
        run_engine_stages(ws, settings, stages=("profiles",), cutoffs=cutoffs, progress=progress_factory(settings))
        ws.update_manifest(profiles_as_of=ws.as_of().date().isoformat())
        if not load:
            return None
        profiles = ws.read("profiles", "profiles")
        for col in profiles.select_dtypes("datetime").columns:  # Parquet stores seconds as milliseconds
            profiles[col] = profiles[col].astype("datetime64[s]")
        return profiles
    tables = ws.typed_tables() if tables is None else tables
    links = ws.read("linked", "linkage")
    as_of = ws.as_of()
    profiles = build_profiles(tables, links, as_of, progress=progress_factory(settings))
    ws.reset_stage("profiles")
    ws.write("profiles", "profiles", profiles)
    ws.write("profiles", "snapshot", entity_snapshot(profiles, tables, as_of).reset_index())
    ws.update_manifest(profiles_as_of=as_of.date().isoformat())
    return profiles


def run_checks(
    ws: Workspace, settings: Settings, tables: dict[str, pd.DataFrame] | None = None
) -> dict[str, pd.DataFrame]:
    """Supervision alerts, the cases they make (documented breaches, one per entity and action),
    water-rights matches and the new outbox messages (never queued twice)."""
    from models.cases import build_cases
    from models.notifications import build_outbox
    from models.rules import run_checks as checks, water_rights_candidates
    from models.rules.memo import reuse

    # the outbox history lives outside the checks stage folder so that re-runs see earlier messages
    history_path = ws.root / "outbox_history.parquet"
    history = pd.read_parquet(history_path) if history_path.exists() else pd.DataFrame(columns=["message_id"])
    queued = set(history["message_id"].astype(str))
    if settings.engine != "memory":
        from waterwatch.scale import run_engine_stages

        checked = run_engine_stages(ws, settings, stages=("checks",), already_queued=queued, progress=progress_factory(settings))
        alerts, cases, matches, outbox = (checked[k] for k in ("alerts", "cases", "water_rights", "outbox"))
    else:
        tables = ws.typed_tables() if tables is None else tables
        links = ws.read("linked", "linkage")
        as_of = ws.as_of()
        with reuse():  # the checks share intermediates (models.rules.memo)
            alerts = checks(tables, links, as_of, settings.rules, quarantine=ws.quarantine("permits"))
            cases = build_cases(tables, links, alerts, as_of, settings.rules)
            matches = water_rights_candidates(tables, links, as_of, settings.rules)
        outbox = build_outbox(alerts, tables["entities"], queued, settings.rules)
    pd.concat([history, outbox], ignore_index=True).to_parquet(history_path, index=False)
    ws.reset_stage("checks")
    ws.write("checks", "alerts", alerts)
    ws.write("checks", "cases", cases)
    ws.write("checks", "water_rights", matches)
    ws.write("checks", "outbox", outbox)
    return {"alerts": alerts, "cases": cases, "water_rights": matches, "outbox": outbox}


def run_train(ws: Workspace, settings: Settings, trials: int | None = None, extra_labels=()):
    from training.train import train

    return train(ws.root, settings, trials=trials, progress=progress_factory(settings), extra_labels=list(extra_labels))


def run_score(ws: Workspace, settings: Settings, prune: bool = True) -> pd.DataFrame:
    """The leads, by the champion; the bundle that scored them kept under its version and content
    (``training.artifacts.keep_scored``) and named as ``artifact`` in ``models/model.json``; then the kept copies
    no run needs any more removed (``prune``; ``waterwatch.scored_models``)."""
    from serving.scoring import checked_champion, score
    from training.artifacts import keep_scored

    bundle, data = checked_champion(ws.root, settings)  # refused when the registry's alias says otherwise
    # one process: scoring 200,000 entities in two (serving.scoring, workers=2) measured no faster
    # (docs/measurements.md, "Province scale")
    leads = score(ws.root, settings, bundle=bundle)
    kept = keep_scored(ws.root, bundle, data)  # before the leads: none are written without their model kept
    ws.reset_stage("scores")
    ws.write("scores", "leads", leads)
    name_scored_model(ws, kept, bundle.version)
    if prune:
        from waterwatch.scored_models import prune_scored_models, summary

        _say(settings, summary(*prune_scored_models(ws, settings)))
    return leads


def name_scored_model(ws: Workspace, artifact: Path, version: str) -> None:
    """``models/model.json``'s ``artifact``: the kept copy of the bundle that scored, no longer ``champion.joblib``,
    which the next training or rollback rewrites (a service started after it would answer with a model that did
    not rank the run's leads), named relative to the workspace (moving the workspace keeps it right). Left alone
    when model.json describes another version: ``publish`` refuses such leads and model.json together
    (``serving.run_files.scored_version``)."""
    from training.artifacts import workspace_relative

    path = ws.stage("models") / "model.json"
    if not path.exists():
        return
    info = json.loads(path.read_text(encoding="utf-8"))
    if str(info.get("champion_version") or info.get("version")) != version:
        return
    info["artifact"] = workspace_relative(artifact, ws.root)
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def run_model_info(ws: Workspace, info: dict, out: Path) -> dict:
    """A workspace's ``model.json`` as a run folder ``out`` holds it: ``artifact`` relative to the run's workspace
    (``out/workspace``, the folder ``publish`` reads), which is ``ws`` itself for a pipeline run; a province city's
    run names the province workspace's copy from its own workspace."""
    from training.artifacts import artifact_path, workspace_relative

    artifact = info.get("artifact")
    if not artifact or Path(str(artifact)).is_absolute():
        return info
    return {**info, "artifact": workspace_relative(artifact_path(artifact, ws.root), Path(out) / "workspace")}


def write_model_info(ws: Workspace, out: Path) -> Path | None:
    """``model.json`` beside a run's leads: the summary of the workspace's last training, whose ``champion_version``
    is the model ``run_score`` scores with and whose ``artifact`` is the copy of it that scored (``run_score``).
    ``waterwatch publish`` records it as the run's model, so the pipeline and ``waterwatch score`` both write it
    beside the leads they write; one left from an earlier run would describe an older model."""
    source = ws.stage("models") / "model.json"
    if not source.exists():
        return None
    target = Path(out) / "model.json"
    info = json.loads(source.read_text(encoding="utf-8"))
    here = run_model_info(ws, info, out)
    if here == info:  # a pipeline run's workspace is out/workspace: the same file
        shutil.copyfile(source, target)
    else:
        target.write_text(json.dumps(here, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return target


def run_pipeline(
    data: Path, out: Path, settings: Settings, as_of: str | None = None, trials: int | None = None
) -> dict:
    """Every stage in order, from a drop to the run's outputs in OUT (a stable contract: OUTPUT_FILES)."""
    from serving.report import backtest_section, profile_section, write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ws = Workspace(out / "workspace")
    _say(settings, "[1/6] ingest and link")
    summary = run_ingest(data, ws.root, settings, as_of=as_of)
    (out / "ingest_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shutil.copyfile(ws.stage("quarantine") / "quarantine.csv", out / "quarantine.csv")
    links = ws.read("linked", "linkage")
    links[["source", "account_id", "account_name", "uscc", "method", "confidence", "status"]].to_csv(
        out / "linkage.csv", index=False
    )
    links[links["status"] == "review"].to_csv(out / "linkage_review.csv", index=False)

    tables = ws.typed_tables()  # read once; each stage run alone reads them itself
    _say(settings, "[2/6] monthly profiles")
    profiles = run_profiles(ws, settings, tables)
    profiles.to_parquet(out / "profiles.parquet", index=False)

    _say(settings, "[3/6] supervision checks")
    checked = run_checks(ws, settings, tables)
    for name in ("alerts", "cases", "water_rights", "outbox"):
        checked[name].to_csv(out / f"{name}.csv", index=False)

    _say(settings, "[4/6] train and backtest")
    result = run_train(ws, settings, trials=trials)

    _say(settings, "[5/6] score")
    leads = run_score(ws, settings)
    leads.to_csv(out / "leads.csv", index=False)
    write_model_info(ws, out)

    _say(settings, "[6/6] report")
    snapshot = ws.read("profiles", "snapshot")
    detail = result.report_zh_path.resolve().relative_to(out.resolve()).as_posix()  # the bureau's edition
    extra = [profile_section(profiles, snapshot), backtest_section(result.backtest, detail)]
    write_report(out, checked["alerts"], checked["water_rights"], tables, ws.as_of(), extra_sections=extra,
                 rules=settings.rules, cases=checked["cases"])
    ws.update_manifest(outputs=[f for f in OUTPUT_FILES if (out / f).exists()])
    return {"ingest_summary": summary, "workspace": ws.root, "train": result, "leads": len(leads)}
