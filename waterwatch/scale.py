"""The features and checks stages over an engine (``features.engine``): the composition of the
per-partition kernels, since a kernel that runs both the profiles (``features``) and the checks
(``models``) may only live at the composition root.

A run partitions the typed tables by ranges of entity code (``bucket_entities`` entities each),
then for every partition: profiles (``features.profiles.build_profiles``), checks
(``models.rules.run_checks``), the water-rights market sides and the SMS outbox; the industry
peer statistics over all partitions; the partition's peer z-scores and snapshots. A city smaller
than one partition is one partition, and then every output equals the in-memory run's row for row.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pyarrow.parquet as pq

from features.engine import Engine, PartitionPlan, open_engine
from features.engine.base import read_parts
from features.engine.profiles import (
    finish_partition,
    peer_codes,
    peer_part_statistics,
    profile_partition,
    whole_city_partition,
)
from features.workspace import Workspace

STAGING = "staging"


def engine_for(settings, workspace: Workspace | None = None) -> Engine:
    """The engine the settings name, spilling under the workspace."""
    if settings.engine in ("embedded", "duckdb"):
        from features.engine.embedded import EmbeddedEngine

        temp = workspace.root / "tmp" if workspace is not None else None
        return EmbeddedEngine(settings.scale, temp_directory=temp)
    return open_engine(settings.engine, settings.scale, spark_master=settings.spark_master)


def _stamp(ws: Workspace) -> str:
    """What the partitions were made from: the typed tables' and links' files."""
    files = sorted(ws.stage("typed").glob("*.parquet")) + [ws.table_path("linked", "linkage")]
    return json.dumps([(f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists()])


def partitioned(ws: Workspace, engine: Engine, bucket_entities: int) -> PartitionPlan:
    """The partition plan, partitioning the typed tables unless the same inputs were partitioned already."""
    folder = ws.stage("partitioned")
    plan_file = folder / "plan.json"
    stamp = _stamp(ws)
    if plan_file.exists():
        saved = json.loads(plan_file.read_text(encoding="utf-8"))
        if saved.get("stamp") == stamp and saved.get("bucket_entities") == bucket_entities and saved.get("as_of") == str(ws.as_of().date()):
            return PartitionPlan(bounds=saved["bounds"], entities=saved["entities"], first_month=saved["first_month"])
    plan = engine.plan(ws.stage("typed"), ws.as_of())
    engine.partition(ws.stage("typed"), ws.table_path("linked", "linkage"), plan, folder)
    plan_file.write_text(json.dumps({
        "stamp": stamp, "bucket_entities": bucket_entities, "as_of": str(ws.as_of().date()), "bounds": plan.bounds,
        "entities": plan.entities, "first_month": plan.first_month,
    }), encoding="utf-8")
    return plan


def check_partition(tables: dict[str, pd.DataFrame], links: pd.DataFrame, ctx: dict) -> dict[str, pd.DataFrame]:
    """The checks of one partition: alerts, the cases they make, both sides of the water-rights market,
    new SMS (each entity's alerts and cases depend on its own rows only)."""
    from models.cases import build_cases
    from models.notifications import build_outbox
    from models.rules import run_checks
    from models.rules.memo import reuse
    from models.rules.rights import rights_market

    with reuse():  # the checks share the year's quota usage and the declared-beside-metered volumes
        alerts = run_checks(tables, links, ctx["as_of"], ctx["rules"], quarantine=ctx.get("quarantine"))
        cases = build_cases(tables, links, alerts, ctx["as_of"], ctx["rules"])
        sellers, buyers = rights_market(tables, links, ctx["as_of"], ctx["rules"])
    outbox = build_outbox(alerts, tables["entities"], ctx["already_queued"], ctx["rules"])
    return {"alerts": alerts, "cases": cases, "rights_sellers": sellers, "rights_buyers": buyers, "outbox": outbox}


def feature_partition(tables: dict[str, pd.DataFrame], links: pd.DataFrame, ctx: dict) -> dict[str, pd.DataFrame]:
    """Step 1 of the profiles (all of them for a city of one partition) and, when asked, the checks."""
    out = {}
    if "profiles" in ctx["stages"]:
        out = whole_city_partition(tables, links, ctx) if ctx["single"] else profile_partition(tables, links, ctx)
    if "checks" in ctx["stages"]:
        out.update(check_partition(tables, links, ctx))
    return out


def _entity_industries(ws: Workspace) -> pd.Series:
    return pq.read_table(ws.table_path("typed", "entities"), columns=["industry_code"]).to_pandas()["industry_code"]


def run_engine_stages(ws: Workspace, settings, stages=("profiles", "checks"), cutoffs=(), already_queued=frozenset(),
                      progress=None) -> dict:
    """Profiles + snapshots (stage folder ``profiles``) and/or checks on the configured engine.

    Returns the checks' frames (alerts, water_rights, outbox) when checks ran; profiles stay on disk
    (``profiles/profiles.parquet``, ``profiles/snapshot.parquet``: folders of partitions, in uscc order).
    """
    from models.rules.rights import match_market

    ws.require_typed()
    if not ws.has("linked", "linkage"):
        raise FileNotFoundError(f"{ws.stage('linked')} has no linkage: run `waterwatch ingest` (it links) first")
    engine = engine_for(settings, ws)
    try:
        plan = partitioned(ws, engine, settings.scale.bucket_entities)
        as_of = ws.as_of()
        ctx = {
            "as_of": as_of, "first_month": plan.first_month, "rules": settings.rules, "stages": tuple(stages),
            "already_queued": set(already_queued),
            "quarantine": ws.quarantine("permits") if "checks" in stages else None,
            "peer_codes": peer_codes(_entity_industries(ws)) if "profiles" in stages else {},
            "single": plan.buckets == 1, "cutoffs": [pd.Timestamp(c) for c in cutoffs],
        }
        staging = ws.reset_stage(STAGING)
        engine.map_buckets(ws.stage("partitioned"), plan, feature_partition, ctx, staging, progress=progress)
        result: dict = {"plan": plan}
        if "profiles" in stages and ctx["single"]:  # the partition's outputs are final
            out = ws.reset_stage("profiles")
            for folder in staging.glob("*.parquet"):
                if folder.name.startswith(("profiles", "snapshot")):
                    folder.rename(out / folder.name)
        elif "profiles" in stages:
            engine.map_groups(staging / "peer_observations.parquet", "part", peer_part_statistics, staging / "peer_stats.parquet")
            ctx["peer_stats"] = read_parts(staging / "peer_stats.parquet")
            out = ws.reset_stage("profiles")
            engine.map_buckets(ws.stage("partitioned"), plan, finish_partition, ctx, out,
                               extra={"profiles_staged": staging / "profiles_staged.parquet"}, progress=progress)
        if "checks" in stages:
            alerts = read_parts(staging / "alerts.parquet")
            cases = read_parts(staging / "cases.parquet")
            sellers = read_parts(staging / "rights_sellers.parquet")
            buyers = read_parts(staging / "rights_buyers.parquet")
            outbox = read_parts(staging / "outbox.parquet").sort_values("message_id").reset_index(drop=True)
            outbox["segments"] = outbox["segments"].map(list)  # Parquet gives arrays back
            result.update(alerts=alerts, cases=cases, water_rights=match_market(sellers, buyers), outbox=outbox)
        shutil.rmtree(staging)
        return result
    finally:
        engine.close()
