"""Reading a pipeline run's output folder (the files ``waterwatch pipeline`` writes) into the rows the store
takes. Pure reading: nothing here touches the store (``serving.publish`` writes what these return).
"""

from __future__ import annotations

import ast
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SERIES_COLUMNS = {  # profile column -> key in the stored series
    "supply_m3": "supply_m3",
    "abstraction_m3": "abstraction_m3",
    "discharge_m3": "discharge_m3",
    "tax_declared_m3_q": "tax_declared_m3",
}
SHIFT_SERIES = ("balance", "supply", "abstraction", "discharge")  # the profiles' dated level shifts
ALERT_COLUMNS = ["alert_id", "kind", "level", "uscc", "name", "permit_id", "district", "period", "value",
                 "threshold", "unit", "message", "audience"]
OUTBOX_COLUMNS = ["message_id", "alert_id", "uscc", "recipient", "text", "segments", "segment_count", "status"]
RIGHTS_COLUMNS = ["seller_uscc", "buyer_uscc", "source", "district", "surplus_m3", "shortfall_m3", "volume_m3"]
PERMIT_COLUMNS = ["permit_id", "uscc", "source", "purpose", "annual_quota_m3", "valid_from", "valid_to", "status",
                  "wells"]
ACCOUNT_COLUMNS = ["source", "account_id", "account_name", "uscc", "method", "confidence", "status"]
CASE_COLUMNS = ["case_id", "kind", "uscc", "name", "district", "permit_id", "project_id", "period", "evidence",
                "evidence_text", "evidence_text_en", "action", "volume_at_stake_m3", "tax_at_stake_yuan", "verified_m3",
                "alert_ids", "opened_as_of"]
CASE_TEXT = ("case_id", "kind", "uscc", "name", "district", "permit_id", "project_id", "period", "evidence",
             "evidence_text", "evidence_text_en", "action", "alert_ids", "status", "opened_as_of")
ENTITY_COLUMNS = ["uscc", "name", "district", "industry_code", "address", "registered_on", "deregistered_on",
                  "employees", "permits", "linked_accounts"]


class PublishError(ValueError):
    """The output folder lacks what a publish needs; the message names the file."""


def read_csv(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    return pd.read_csv(path, dtype={c: "str" for c in text_columns}, keep_default_na=True)


def records(df: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, missing values as None, dates as ``date``."""
    df = (df if columns is None else df.reindex(columns=columns)).copy()
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = df[col].dt.date
    obj = df.astype(object)
    return obj.where(df.notna(), None).to_dict("records")


def model_info(out: Path) -> dict[str, Any]:
    path = out / "model.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def scored_version(out: Path, leads: pd.DataFrame, info: dict) -> str | None:
    """The model version that scored the leads (leads.csv's ``model_version``; else model.json's), refusing a
    model.json that describes another model: the store would record that model's version, training time and
    backtest as the run's. model.json names the model scoring used as ``champion_version`` (the champion training
    left; the trained ``version`` may have lost to it), a hand-written one as ``version``."""
    scored = sorted(leads["model_version"].dropna().astype(str).unique()) if "model_version" in leads else []
    if len(scored) > 1:
        raise PublishError(f"{out / 'leads.csv'}: scored by several model versions {scored}; score the run again")
    described = info.get("champion_version") or info.get("version")
    if scored and described is not None and str(described) != scored[0]:
        raise PublishError(
            f"{out / 'leads.csv'} was scored by model version {scored[0]} but {out / 'model.json'} describes version "
            f"{described}: run `waterwatch score --workspace {out / 'workspace'} --out {out / 'leads.csv'}` "
            "(it writes model.json beside the leads), then publish")
    return scored[0] if scored else (None if described is None else str(described))


def run_identity(out: Path, leads_bytes: bytes, info: dict) -> tuple[str, pd.Timestamp | None]:
    """A run id stable for the same files: the as-of month and a digest of the leads and the model."""
    as_of = info.get("as_of")
    manifest = out / "workspace" / "manifest.json"
    if not as_of and manifest.exists():
        as_of = json.loads(manifest.read_text(encoding="utf-8")).get("as_of")
    as_of_ts = pd.Timestamp(as_of) if as_of else None
    digest = hashlib.sha256(leads_bytes + json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()
    prefix = f"{as_of_ts:%Y-%m}" if as_of_ts is not None else "run"
    return f"{prefix}-{digest[:12]}", as_of_ts


def _json(value, kind: type):
    """A JSON value of type ``kind`` from a CSV cell; the empty value of that type when absent or unreadable."""
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return kind()
        return parsed if isinstance(parsed, kind) else kind()
    return kind()


def load_leads(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise PublishError(f"{path} not found: a run to publish needs leads.csv (run `waterwatch score` first)")
    leads = read_csv(path, ("uscc", "name", "district", "industry_code", "reasons", "model_version", "reason_codes"))
    missing = {"rank", "uscc", "risk_score"} - set(leads.columns)
    if missing:
        raise PublishError(f"{path}: missing columns {sorted(missing)}")
    leads = leads[leads["uscc"].notna()].drop_duplicates("uscc", keep="first")
    for col in ("name", "district", "industry_code", "reasons"):
        if col not in leads.columns:
            leads[col] = None
    leads["rank"] = pd.to_numeric(leads["rank"], errors="coerce").astype("int64")
    leads["risk_score"] = pd.to_numeric(leads["risk_score"], errors="coerce").astype(float)
    # machine-readable reasons (runs written before them have none): a JSON list per row, None when absent
    codes = leads["reason_codes"] if "reason_codes" in leads.columns else pd.Series(None, index=leads.index)
    leads["reason_codes"] = pd.Series([_json(v, list) if isinstance(v, str) else None for v in codes],
                                      index=leads.index, dtype=object)
    return leads.reset_index(drop=True)


def read_alerts(out: Path) -> pd.DataFrame | None:
    path = out / "alerts.csv"
    if not path.exists():
        return None
    alerts = read_csv(path, ("alert_id", "uscc", "permit_id", "period", "name", "district"))
    return alerts[alerts["alert_id"].notna()].drop_duplicates("alert_id", keep="last")


def _segments(value) -> list[str]:
    """The SMS segments as the pipeline wrote them: a JSON or Python list of texts (CSV keeps its repr)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value).strip()
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    return []


def read_outbox(out: Path) -> pd.DataFrame | None:
    path = out / "outbox.csv"
    if not path.exists():
        return None
    outbox = read_csv(path, ("message_id", "alert_id", "uscc", "recipient", "phone", "text", "segments"))
    if "recipient" not in outbox.columns and "phone" in outbox.columns:
        outbox["recipient"] = outbox["phone"]
    outbox = outbox[outbox["message_id"].notna()].drop_duplicates("message_id", keep="last").copy()
    segments = [_segments(v) for v in outbox.get("segments", pd.Series(None, index=outbox.index, dtype=object))]
    outbox["segments"] = pd.Series(segments, index=outbox.index, dtype=object)
    counts = pd.to_numeric(outbox.get("segment_count"), errors="coerce") if "segment_count" in outbox else None
    lengths = pd.Series([len(s) for s in segments], index=outbox.index)
    outbox["segment_count"] = (lengths if counts is None else counts.fillna(lengths)).astype("int64")
    return outbox


def read_cases(out: Path) -> pd.DataFrame | None:
    """The run's documented breaches (cases.csv: the format in docs/INTERFACES), evidence parsed, alert ids a
    list; None when the run has no such file (runs before the case track)."""
    path = out / "cases.csv"
    if not path.exists():
        return None
    cases = read_csv(path, CASE_TEXT)
    missing = {"case_id", "kind", "action"} - set(cases.columns)
    if missing:
        raise PublishError(f"{path}: missing columns {sorted(missing)}")
    cases = cases[cases["case_id"].notna()].drop_duplicates("case_id", keep="last").copy()
    cases["evidence"] = pd.Series([_json(v, dict) for v in cases.get("evidence", pd.Series(index=cases.index))],
                                  index=cases.index, dtype=object)
    ids = cases.get("alert_ids", pd.Series(index=cases.index))
    cases["alert_ids"] = pd.Series([[a for a in v.split(";") if a] if isinstance(v, str) else [] for v in ids],
                                   index=cases.index, dtype=object)
    for col in ("volume_at_stake_m3", "tax_at_stake_yuan", "verified_m3"):
        cases[col] = pd.to_numeric(cases.get(col), errors="coerce") if col in cases.columns else np.nan
    cases["opened_as_of"] = pd.to_datetime(cases.get("opened_as_of"), errors="coerce")
    return cases


def read_rights(out: Path) -> pd.DataFrame | None:
    path = out / "water_rights.csv"
    return read_csv(path, ("seller_uscc", "buyer_uscc", "source", "district")) if path.exists() else None


def read_register(out: Path, leads: pd.DataFrame) -> tuple[list[dict], list[dict] | None, list[dict] | None]:
    """(entities, permits, accounts) rows: the typed register when the workspace has it, else the leads'
    names; permits and linked accounts (None when the run has no such file) counted per entity."""
    typed = out / "workspace" / "typed"
    if (typed / "entities.parquet").exists():
        ents = pd.read_parquet(typed / "entities.parquet")
        ents = ents[ents["uscc"].notna()].drop_duplicates("uscc", keep="last").copy()
        ents["uscc"] = ents["uscc"].astype("str")
    else:
        ents = leads[["uscc", "name", "district", "industry_code"]].copy()
    ents["permits"], ents["linked_accounts"] = 0, 0
    permits = accounts = None
    if (typed / "permits.parquet").exists():
        p = pd.read_parquet(typed / "permits.parquet")
        p = p[p["permit_id"].notna()].drop_duplicates("permit_id", keep="last")
        permits = records(p, PERMIT_COLUMNS)
        ents["permits"] = ents["uscc"].map(p.groupby("uscc").size()).fillna(0).astype(int)
    if (out / "linkage.csv").exists():
        links = read_csv(out / "linkage.csv", ("source", "account_id", "account_name", "uscc", "method", "status"))
        links = links[links["account_id"].notna()].drop_duplicates(["source", "account_id"], keep="last")
        accounts = records(links, ACCOUNT_COLUMNS)
        linked = links[links.get("status", pd.Series("linked", index=links.index)) == "linked"]
        ents["linked_accounts"] = ents["uscc"].map(linked.groupby("uscc").size()).fillna(0).astype(int)
    return records(ents, ENTITY_COLUMNS), permits, accounts


# -- the monthly series of each entity ----------------------------------------------------------------------


def _shift_columns(available) -> list[str]:
    return [f"{name}_shift_{part}" for name in SHIFT_SERIES for part in ("since", "score")
            if f"{name}_shift_since" in available and f"{name}_shift_score" in available]


def _shift_since(last: pd.DataFrame) -> list[str | None]:
    """Per entity (rows of its last month), the month its strongest dated level shift began, 'YYYY-MM'
    (the profiles date a shift only when it is significant); None when none is dated."""
    names = [n for n in SHIFT_SERIES if f"{n}_shift_since" in last.columns]
    if not names:
        return [None] * len(last)
    since = last[[f"{n}_shift_since" for n in names]].apply(pd.to_datetime)
    score = last[[f"{n}_shift_score" for n in names]].to_numpy(dtype=float)
    score = np.where(since.notna().to_numpy(), np.nan_to_num(score, nan=-np.inf), -np.inf)
    rows = np.arange(len(last))
    best = np.argmax(score, axis=1)
    picked, dated = since.to_numpy()[rows, best], np.isfinite(score[rows, best])
    return [pd.Timestamp(m).strftime("%Y-%m") if ok else None for m, ok in zip(picked, dated)]


def read_series(out: Path, run_id: str) -> list[dict] | None:
    """One compact row per entity: months, the monthly volumes (NaN as null) and ``shift_since``."""
    path = out / "profiles.parquet"
    if not path.exists():
        return None
    import pyarrow.parquet as pq

    available = set(pq.read_schema(path).names)
    cols = [c for c in SERIES_COLUMNS if c in available]
    df = pd.read_parquet(path, columns=["uscc", "month", *cols, *_shift_columns(available)])
    df["uscc"] = df["uscc"].astype("str")
    if df.empty:
        return []
    df = df.sort_values(["uscc", "month"], kind="stable")
    codes = df["uscc"].to_numpy(dtype=object)
    cut = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    parts = {"month": np.split(pd.to_datetime(df["month"]).dt.strftime("%Y-%m").to_numpy(dtype=object), cut)}
    for c in cols:
        vals = df[c].to_numpy(dtype=float).round(1).astype(object)
        vals[pd.isna(df[c]).to_numpy()] = None
        parts[SERIES_COLUMNS[c]] = np.split(vals, cut)
    since = _shift_since(df.iloc[np.concatenate([cut, [len(df)]]) - 1])
    return [{"uscc": code, "run_id": run_id,
             "series": {**{k: v[i].tolist() for k, v in parts.items()}, "shift_since": since[i]}}
            for i, code in enumerate(codes[np.concatenate([[0], cut])])]


# -- evidence with a date ----------------------------------------------------------------------------------


def period_start(period: str | None) -> date | None:
    """First day of a period written 'YYYY', 'YYYY-Qn' or 'YYYY-MM'; None for anything else."""
    text = (period or "").strip()
    try:
        if len(text) == 4:
            return date(int(text), 1, 1)
        if len(text) == 7 and text[5] == "Q":
            return date(int(text[:4]), 3 * int(text[6]) - 2, 1)
        if len(text) == 7:
            return date(int(text[:4]), int(text[5:7]), 1)
    except ValueError:
        return None
    return None


def dated_evidence(alerts: pd.DataFrame | None, series: list[dict] | None) -> dict[str, list[tuple[date, str]]]:
    """Per entity, the run's evidence that carries a date: each alert (from the start of its period) and the
    month its level shift began. A later run re-raises a closed lead only on evidence dated after its visit."""
    found: dict[str, list[tuple[date, str]]] = {}
    if alerts is not None and len(alerts):
        for uscc, kind, period in alerts[["uscc", "kind", "period"]].itertuples(index=False):
            start = period_start(period) if isinstance(period, str) else None
            if start is not None and isinstance(uscc, str):
                found.setdefault(uscc, []).append((start, f"alert:{kind}:{period}"))
    for row in series or []:
        since = row["series"].get("shift_since")
        if since:
            found.setdefault(row["uscc"], []).append((period_start(since), f"shift:{since}"))
    return found
