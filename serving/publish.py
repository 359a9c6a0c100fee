"""Publishing a run: the files of an output folder into the store, without losing anyone's work.

A run re-ranks the queue; it never resets it. Leads officers already work keep their status,
officer and history; entities new to the queue become new leads; leads nobody touched that fell out
of the queue leave it. Outbox messages already there keep their delivery status. Publishing the same
run twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from serving.auth import audit
from serving.history import publish_inspections
from serving.queue import build_queue
from serving.store import (
    Account,
    Alert,
    Entity,
    Lead,
    OutboxMessage,
    Permit,
    Run,
    Score,
    Series,
    WaterRight,
    utcnow,
)

SERIES_COLUMNS = {  # profile column -> key in the stored series
    "supply_m3": "supply_m3",
    "abstraction_m3": "abstraction_m3",
    "discharge_m3": "discharge_m3",
    "tax_declared_m3_q": "tax_declared_m3",
}
ALERT_COLUMNS = ["alert_id", "kind", "level", "uscc", "name", "permit_id", "district", "period", "value",
                 "threshold", "unit", "message", "audience"]
OUTBOX_COLUMNS = ["message_id", "alert_id", "uscc", "recipient", "text", "segments", "status"]
RIGHTS_COLUMNS = ["seller_uscc", "buyer_uscc", "source", "district", "surplus_m3", "shortfall_m3", "volume_m3"]
WORKED = ("assigned", "in_progress", "closed")
CHUNK = 5000


class PublishError(ValueError):
    """The output folder lacks what a publish needs; the message names the file."""


def _read_csv(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    return pd.read_csv(path, dtype={c: "str" for c in text_columns}, keep_default_na=True)


def _records(df: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, missing values as None, dates as ``date``."""
    df = df if columns is None else df.reindex(columns=columns)
    df = df.copy()
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = df[col].dt.date
    obj = df.astype(object)
    return obj.where(df.notna(), None).to_dict("records")


def _chunks(rows: list, size: int = CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _bulk_insert(session: Session, model, rows: list[dict]) -> None:
    for part in _chunks(rows):
        session.execute(insert(model), part)


def _bulk_update(session: Session, model, rows: list[dict]) -> None:
    for part in _chunks(rows):
        session.execute(update(model), part)


def _upsert(session: Session, model, key: str, rows: list[dict]) -> tuple[int, int]:
    """Insert new keys, update existing ones (portable across SQLite and PostgreSQL)."""
    if not rows:
        return 0, 0
    existing = set(session.scalars(select(getattr(model, key))))
    new = [r for r in rows if r[key] not in existing]
    old = [r for r in rows if r[key] in existing]
    _bulk_insert(session, model, new)
    _bulk_update(session, model, old)
    return len(new), len(old)


def _run_identity(out: Path, leads_bytes: bytes, model_info: dict) -> tuple[str, pd.Timestamp | None]:
    as_of = model_info.get("as_of")
    manifest = out / "workspace" / "manifest.json"
    if not as_of and manifest.exists():
        as_of = json.loads(manifest.read_text(encoding="utf-8")).get("as_of")
    as_of_ts = pd.Timestamp(as_of) if as_of else None
    digest = hashlib.sha256(leads_bytes + json.dumps(model_info, sort_keys=True, default=str).encode()).hexdigest()
    prefix = f"{as_of_ts:%Y-%m}" if as_of_ts is not None else "run"
    return f"{prefix}-{digest[:12]}", as_of_ts


def load_leads(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise PublishError(f"{path} not found: a run to publish needs leads.csv (run `waterwatch score` first)")
    leads = _read_csv(path, ("uscc", "name", "district", "industry_code", "reasons", "model_version"))
    missing = {"rank", "uscc", "risk_score"} - set(leads.columns)
    if missing:
        raise PublishError(f"{path}: missing columns {sorted(missing)}")
    leads = leads[leads["uscc"].notna()].drop_duplicates("uscc", keep="first")
    for col in ("name", "district", "industry_code", "reasons"):
        if col not in leads.columns:
            leads[col] = None
    leads["rank"] = pd.to_numeric(leads["rank"], errors="coerce").astype("int64")
    leads["risk_score"] = pd.to_numeric(leads["risk_score"], errors="coerce").astype(float)
    return leads.reset_index(drop=True)


SHIFT_SERIES = ("balance", "supply", "abstraction", "discharge")  # the profiles' dated level shifts


def _shift_columns(available) -> list[str]:
    return [f"{name}_shift_{part}" for name in SHIFT_SERIES for part in ("since", "score")
            if f"{name}_shift_since" in available and f"{name}_shift_score" in available]


def _shift_since(last: pd.DataFrame) -> pd.Series:
    """Per entity (rows of its last month), the month its strongest dated level shift began, 'YYYY-MM'
    (the profiles date a shift only when it is significant); None when none is dated."""
    names = [n for n in SHIFT_SERIES if f"{n}_shift_since" in last.columns]
    if not names:
        return pd.Series([None] * len(last), index=last.index, dtype=object)
    since = last[[f"{n}_shift_since" for n in names]].apply(pd.to_datetime)
    score = last[[f"{n}_shift_score" for n in names]].to_numpy(dtype=float)
    score = np.where(since.notna().to_numpy(), np.nan_to_num(score, nan=-np.inf), -np.inf)
    best = np.argmax(score, axis=1)
    picked = since.to_numpy()[np.arange(len(last)), best]
    dated = np.isfinite(score[np.arange(len(last)), best])
    return pd.Series([pd.Timestamp(m).strftime("%Y-%m") if ok else None for m, ok in zip(picked, dated)],
                     index=last.index, dtype=object)


def _series_rows(profiles: pd.DataFrame, run_id: str, usccs: set[str] | None = None) -> list[dict]:
    """One compact row per entity: months, the monthly volumes (NaN as null) and ``shift_since``."""
    cols = [c for c in SERIES_COLUMNS if c in profiles.columns]
    df = profiles[["uscc", "month", *cols, *_shift_columns(profiles.columns)]].copy()
    df["uscc"] = df["uscc"].astype("str")
    if usccs is not None:
        df = df[df["uscc"].isin(usccs)]
    if df.empty:
        return []
    df = df.sort_values(["uscc", "month"], kind="stable")
    month = pd.to_datetime(df["month"]).dt.strftime("%Y-%m").to_numpy(dtype=object)
    codes = df["uscc"].to_numpy(dtype=object)
    cut = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], cut])
    parts = {"month": np.split(month, cut)}
    for c in cols:
        vals = df[c].to_numpy(dtype=float).round(1).astype(object)
        vals[pd.isna(df[c]).to_numpy()] = None
        parts[SERIES_COLUMNS[c]] = np.split(vals, cut)
    since = _shift_since(df.iloc[np.concatenate([cut, [len(df)]]) - 1]).tolist()
    keys = list(parts)
    return [
        {"uscc": codes[s], "run_id": run_id,
         "series": {**{k: parts[k][i].tolist() for k in keys}, "shift_since": since[i]}}
        for i, s in enumerate(starts)
    ]


def _publish_entities(session: Session, out: Path, leads: pd.DataFrame) -> int:
    typed = out / "workspace" / "typed"
    ent_path = typed / "entities.parquet"
    if ent_path.exists():
        ents = pd.read_parquet(ent_path)
        ents = ents[ents["uscc"].notna()].drop_duplicates("uscc", keep="last").copy()
        ents["uscc"] = ents["uscc"].astype("str")
    else:
        ents = leads[["uscc", "name", "district", "industry_code"]].copy()
    ents["permits"] = 0
    ents["linked_accounts"] = 0
    permits_path = typed / "permits.parquet"
    if permits_path.exists():
        permits = pd.read_parquet(permits_path)
        permits = permits[permits["permit_id"].notna()].drop_duplicates("permit_id", keep="last")
        session.execute(delete(Permit))
        _bulk_insert(session, Permit, _records(permits, ["permit_id", "uscc", "source", "purpose", "annual_quota_m3",
                                                          "valid_from", "valid_to", "status", "wells"]))
        ents["permits"] = ents["uscc"].map(permits.groupby("uscc").size()).fillna(0).astype(int)
    linkage_path = out / "linkage.csv"
    if linkage_path.exists():
        links = _read_csv(linkage_path, ("source", "account_id", "account_name", "uscc", "method", "status"))
        links = links[links["account_id"].notna()].drop_duplicates(["source", "account_id"], keep="last")
        session.execute(delete(Account))
        _bulk_insert(session, Account, _records(links, ["source", "account_id", "account_name", "uscc", "method",
                                                         "confidence", "status"]))
        linked = links[links.get("status", pd.Series("linked", index=links.index)) == "linked"]
        ents["linked_accounts"] = ents["uscc"].map(linked.groupby("uscc").size()).fillna(0).astype(int)
    columns = ["uscc", "name", "district", "industry_code", "address", "registered_on", "deregistered_on",
               "employees", "permits", "linked_accounts"]
    _upsert(session, Entity, "uscc", _records(ents, columns))
    return len(ents)


def _publish_leads(session: Session, run_id: str, leads: pd.DataFrame, model_settings) -> dict[str, int]:
    seed = (int(getattr(model_settings, "random_state", 0)) * 1_000_003 + int(run_id.encode().hex()[-8:], 16)) % 2**32
    queue = build_queue(leads, int(model_settings.officer_capacity_k), float(model_settings.exploration_share), seed)
    queued = queue.set_index("uscc")
    now = utcnow().isoformat(timespec="seconds")
    existing = pd.DataFrame(
        session.execute(select(Lead.id, Lead.uscc, Lead.status, Lead.run_id, Lead.history)).all(),
        columns=["id", "uscc", "status", "run_id", "history"],
    )
    known = set(existing["uscc"])
    fresh = queue[~queue["uscc"].isin(known)]
    new_rows = _records(fresh, ["uscc", "name", "district", "industry_code", "rank", "queue_position",
                                "risk_score", "reasons", "queue_probability", "exploratory"])
    for row, rank in zip(new_rows, fresh["rank"].tolist()):
        row.update(run_id=run_id, status="new", in_queue=True,
                   history=[{"at": now, "event": "queued", "run_id": run_id, "rank": int(rank)}])
    _bulk_insert(session, Lead, new_rows)

    updates = []
    if len(existing):
        scored = leads.set_index("uscc")
        ex = existing
        in_q = ex["uscc"].isin(queued.index).to_numpy()
        is_scored = ex["uscc"].isin(scored.index).to_numpy()
        for (lead_id, uscc, status, last_run, history), q, s in zip(ex.itertuples(index=False), in_q, is_scored):
            if not s:  # the entity left the register: only work in hand stays in the queue
                updates.append({"id": lead_id, "in_queue": status in ("assigned", "in_progress"),
                                "queue_position": None})
                continue
            src = queued.loc[uscc] if q else scored.loc[uscc]
            row = {"id": lead_id, "rank": int(src["rank"]), "risk_score": float(src["risk_score"]),
                   "reasons": None if pd.isna(src["reasons"]) else src["reasons"],
                   "queue_position": int(src["queue_position"]) if q else None,
                   "in_queue": bool(q or status in ("assigned", "in_progress"))}
            if status == "new" and q:
                # untouched leads enter afresh: their chance of entering the queue is this run's
                row.update(queue_probability=float(src["queue_probability"]), exploratory=bool(src["exploratory"]))
            if last_run != run_id:
                history = list(history or [])
                history.append({"at": now, "event": "queued" if q else "re-scored", "run_id": run_id,
                                "rank": int(src["rank"])})
                row.update(run_id=run_id, history=history, updated_at=utcnow())
            updates.append(row)
    _bulk_update(session, Lead, updates)
    return {"queue": len(queue), "leads_new": len(new_rows), "leads_updated": len(updates)}


def publish_run(out_dir: Path | str, session_factory: sessionmaker, settings) -> dict:
    """Load one run's output folder into the store; returns counts of what it wrote."""
    out = Path(out_dir)
    model_settings = getattr(settings, "model", settings)
    leads_path = out / "leads.csv"
    leads = load_leads(leads_path)
    model_path = out / "model.json"
    model_info = json.loads(model_path.read_text(encoding="utf-8")) if model_path.exists() else {}
    run_id, as_of = _run_identity(out, leads_path.read_bytes(), model_info)
    model_version = model_info.get("version")
    if model_version is None and "model_version" in leads.columns and leads["model_version"].notna().any():
        model_version = leads["model_version"].dropna().iloc[0]
    counts: dict[str, Any] = {"run_id": run_id, "as_of": None if as_of is None else as_of.date().isoformat()}

    with session_factory() as session, session.begin():
        run = session.get(Run, run_id)
        if run is None:
            session.add(Run(run_id=run_id, as_of=None if as_of is None else as_of.date(),
                            model_version=None if model_version is None else str(model_version),
                            model_info=model_info, entities=len(leads)))
            session.flush()
        else:
            run.model_info, run.updated_at = model_info, utcnow()
        counts["entities"] = _publish_entities(session, out, leads)

        session.execute(delete(Score).where(Score.run_id == run_id))
        scores = leads[["uscc", "rank", "risk_score", "reasons"]].assign(run_id=run_id)
        _bulk_insert(session, Score, _records(scores))
        counts["scores"] = len(scores)
        counts.update(_publish_leads(session, run_id, leads, model_settings))

        alerts_path = out / "alerts.csv"
        if alerts_path.exists():
            alerts = _read_csv(alerts_path, ("alert_id", "uscc", "permit_id", "period", "name", "district"))
            alerts = alerts[alerts["alert_id"].notna()].drop_duplicates("alert_id", keep="last")
            rows = _records(alerts.assign(run_id=run_id), ALERT_COLUMNS + ["run_id"])
            counts["alerts"] = sum(_upsert(session, Alert, "alert_id", rows))

        outbox_path = out / "outbox.csv"
        if outbox_path.exists():
            outbox = _read_csv(outbox_path, ("message_id", "alert_id", "uscc", "recipient", "phone"))
            if "recipient" not in outbox.columns and "phone" in outbox.columns:
                outbox["recipient"] = outbox["phone"]
            outbox = outbox[outbox["message_id"].notna()].drop_duplicates("message_id", keep="last")
            known = set(session.scalars(select(OutboxMessage.message_id)))
            outbox = outbox[~outbox["message_id"].isin(known)].assign(run_id=run_id, status="queued")
            _bulk_insert(session, OutboxMessage, _records(outbox, OUTBOX_COLUMNS + ["run_id"]))
            counts["outbox_new"] = len(outbox)

        rights_path = out / "water_rights.csv"
        if rights_path.exists():
            rights = _read_csv(rights_path, ("seller_uscc", "buyer_uscc", "source", "district"))
            session.execute(delete(WaterRight).where(WaterRight.run_id == run_id))
            _bulk_insert(session, WaterRight, _records(rights.assign(run_id=run_id), RIGHTS_COLUMNS + ["run_id"]))
            counts["water_rights"] = len(rights)

        profiles_path = out / "profiles.parquet"
        if profiles_path.exists():
            import pyarrow.parquet as pq

            available = set(pq.read_schema(profiles_path).names)
            cols = ["uscc", "month", *[c for c in SERIES_COLUMNS if c in available], *_shift_columns(available)]
            series = _series_rows(pd.read_parquet(profiles_path, columns=cols), run_id)
            session.execute(delete(Series))
            _bulk_insert(session, Series, series)
            counts["series"] = len(series)

        counts["dept_inspections"] = publish_inspections(session, out, run_id)
        audit(session, "system", "publish", "run", run_id, {k: v for k, v in counts.items() if k != "run_id"})
    return counts


def current_run(session: Session) -> Run | None:
    """The live run: the one published (or re-published) last."""
    return session.scalars(select(Run).order_by(Run.updated_at.desc(), Run.published_at.desc()).limit(1)).first()
