"""The one shape every check returns (``ALERT_COLUMNS``), stable alert ids, and the bureau's formatting.

Alert ids hash (kind, level, uscc, permit_id, period[, source or project_id]) so that the
same finding on a re-run keeps its id and an escalation (yellow -> orange) is a new alert:
that is what lets the outbox send each reminder exactly once.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

ALERT_COLUMNS = [
    "alert_id",
    "kind",
    "level",
    "basis",
    "uscc",
    "name",
    "permit_id",
    "project_id",
    "source",
    "district",
    "period",
    "value",
    "threshold",
    "unit",
    "volume_at_stake_m3",
    "tax_at_stake_yuan",
    "message",
    "audience",
]
NUMBER_COLUMNS = ("value", "threshold", "volume_at_stake_m3", "tax_at_stake_yuan")
LEVEL_ORDER = {"notice": 0, "reminder_90": 1, "reminder_60": 2, "warning": 3, "yellow": 4, "orange": 5, "red": 6}
LEVEL_CN = {"yellow": "黄色", "orange": "橙色", "red": "红色"}
SOURCE_CN = {"groundwater": "地下水", "surface": "地表水"}


def alert_ids(frame: pd.DataFrame) -> pd.Series:
    """Stable id of an alert: the same finding in a later run hashes the same.

    The key is (kind, level, uscc, permit_id, period); findings not tied to a
    permit add what tells them apart: the source (a declaration per source) or
    the project.
    """
    parts = frame[["kind", "level", "uscc", "permit_id", "period"]].fillna("").astype("str")
    keys = parts["kind"] + "|" + parts["level"] + "|" + parts["uscc"] + "|" + parts["permit_id"] + "|" + parts["period"]
    no_permit = parts["permit_id"] == ""
    for extra in ("source", "project_id"):
        if extra in frame.columns:
            value = frame[extra].fillna("").astype("str")
            keys = keys.where(~no_permit | (value == ""), keys + "|" + extra + "=" + value)
    return keys.map(lambda k: hashlib.sha1(k.encode("utf-8")).hexdigest()[:16])


def empty_alerts() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="str") for c in ALERT_COLUMNS})
    for c in NUMBER_COLUMNS:
        frame[c] = pd.Series(dtype="float64")
    return frame


def finish_alerts(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill the common columns, compute ids, order columns and rows."""
    if frame.empty:
        return empty_alerts()
    out = frame.copy()
    for c in ALERT_COLUMNS:
        if c not in out.columns:
            out[c] = np.nan if c in NUMBER_COLUMNS else ""
    for c in ALERT_COLUMNS:
        if c not in NUMBER_COLUMNS and c != "alert_id":
            out[c] = out[c].fillna("").astype("str")
    for c in NUMBER_COLUMNS:
        out[c] = out[c].astype("float64")
    out["alert_id"] = alert_ids(out)
    order = ["kind", "uscc", "permit_id", "period", "source", "project_id"]
    return out[ALERT_COLUMNS].sort_values(order, kind="stable").reset_index(drop=True)


def m3_text(value: float) -> str:
    """A volume as a bureau writes it: 万m³ with one decimal from 10,000 m³, else whole m³."""
    v = 0.0 if value is None or np.isnan(value) else float(value)
    return f"{np.round(v / 10_000, 1):.1f}万m³" if v >= 10_000 else f"{np.round(v, 0):.0f}m³"


def fmt_m3(values: pd.Series) -> pd.Series:
    """``m3_text`` of every value."""
    return values.astype("float64").map(m3_text).astype("str")


def fmt_pct(values: pd.Series) -> pd.Series:
    return values.astype("float64").round(0).map("{:.0f}%".format).astype("str")


def with_entity(frame: pd.DataFrame, tables, name_fallback: str | None = None) -> pd.DataFrame:
    """Attach the registered name and district (falling back to the permit's holder name)."""
    ent = tables["entities"][["uscc", "name", "district"]].dropna(subset=["uscc"])
    ent = ent.drop_duplicates("uscc").set_index("uscc")
    out = frame.copy()
    out["name"] = out["uscc"].map(ent["name"])
    if name_fallback and name_fallback in out.columns:
        out["name"] = out["name"].fillna(out[name_fallback])
    out["name"] = out["name"].fillna("")
    district = out["uscc"].map(ent["district"])
    if "district" in out.columns:
        district = district.fillna(out["district"])
    out["district"] = district.fillna("")
    return out
