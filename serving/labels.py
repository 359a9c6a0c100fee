"""Verdicts back as labels: the store's verdicts as the contract's ``inspections`` table.

The next training reads it beside the drop's own inspections. ``queue_probability`` is the chance
with which the lead entered the queue, so training can weight exploratory verdicts by its inverse;
``unreachable`` stays as it is (the contract's outcome for a visit that found no one).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.store import Verdict

INSPECTION_COLUMNS = ["inspection_id", "uscc", "inspected_on", "officer_id", "outcome", "violation_type"]
LABEL_COLUMNS = [*INSPECTION_COLUMNS, "queue_probability"]


def verdict_labels(session: Session) -> pd.DataFrame:
    """The recorded verdicts in the contract's inspections format, oldest first (a verdict superseded by a
    supervisor's reopen is no label; an amended one is exported as amended)."""
    rows = session.execute(
        select(Verdict.id, Verdict.uscc, Verdict.visited_on, Verdict.officer, Verdict.outcome,
               Verdict.violation_type, Verdict.queue_probability).where(Verdict.superseded.is_(False))
        .order_by(Verdict.id)
    ).all()
    df = pd.DataFrame(rows, columns=["id", "uscc", "inspected_on", "officer_id", "outcome", "violation_type",
                                     "queue_probability"])
    out = pd.DataFrame({
        "inspection_id": ("WW-V" + df["id"].astype("int64").astype("str").str.zfill(8)).astype("str"),
        "uscc": df["uscc"].astype("str"),
        "inspected_on": pd.to_datetime(df["inspected_on"]),
        "officer_id": df["officer_id"].astype("str"),
        "outcome": df["outcome"].astype("str"),
        "violation_type": df["violation_type"].astype("str"),
        "queue_probability": df["queue_probability"].astype(float),
    })
    return out[LABEL_COLUMNS]


def export_labels(session: Session, path: Path | str) -> int:
    """Write the verdicts to ``path`` (``.csv`` or ``.parquet``); returns the number of rows."""
    labels = verdict_labels(session)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        labels.to_parquet(path, index=False)
    else:
        out = labels.copy()
        out["inspected_on"] = out["inspected_on"].dt.strftime("%Y-%m-%d")
        out.to_csv(path, index=False, encoding="utf-8")
    return len(labels)
