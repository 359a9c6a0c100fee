"""An entity's inspection history: the departments' own inspections (published from the drop's inspections
table) and the verdicts officers recorded on any of its leads, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from serving.store import DeptInspection, Lead, Verdict

COLUMNS = ["inspection_id", "uscc", "inspected_on", "officer_id", "outcome", "violation_type"]


def publish_inspections(session: Session, out: Path, run_id: str, usccs: list[str] | None = None) -> int:
    """Replace the departments' inspections with the run's (``workspace/typed/inspections.parquet``); with
    ``usccs`` (a province city's run) only those of these entities and of the run's inspection ids."""
    path = Path(out) / "workspace" / "typed" / "inspections.parquet"
    if not path.exists():
        return 0
    df = pd.read_parquet(path)
    df = df[[c for c in COLUMNS if c in df.columns]].reindex(columns=COLUMNS)
    df = df[df["inspection_id"].notna()].drop_duplicates("inspection_id", keep="last").copy()
    df["inspected_on"] = pd.to_datetime(df["inspected_on"], errors="coerce").dt.date
    for col in ("inspection_id", "uscc", "officer_id", "outcome", "violation_type"):
        df[col] = df[col].astype("object").where(df[col].notna(), None).map(lambda v: None if v is None else str(v))
    rows = [{**{k: (None if (isinstance(v, float) and pd.isna(v)) or v is pd.NaT else v) for k, v in r.items()},
             "run_id": run_id} for r in df.to_dict("records")]
    if usccs is None:
        session.execute(delete(DeptInspection))
    for column, values in (() if usccs is None else ((DeptInspection.uscc, usccs),
                                                      (DeptInspection.inspection_id, df["inspection_id"].tolist()))):
        for start in range(0, len(values), 5000):
            session.execute(delete(DeptInspection).where(column.in_(values[start:start + 5000])))
    for start in range(0, len(rows), 5000):
        session.execute(insert(DeptInspection), rows[start:start + 5000])
    return len(rows)


@dataclass
class HistoryItem:
    on: date | None
    source: str  # department | verdict
    outcome: str | None
    violation_type: str | None
    by: str | None
    note: str | None = None
    lead_id: int | None = None
    current: bool = False  # a verdict on the lead being shown
    superseded: bool = False
    recorded_at: datetime | None = None


def inspection_history(session: Session, lead: Lead) -> list[HistoryItem]:
    """Every inspection of the lead's entity we know of, newest first."""
    items = [HistoryItem(d.inspected_on, "department", d.outcome, d.violation_type, d.officer_id)
             for d in session.scalars(select(DeptInspection).where(DeptInspection.uscc == lead.uscc))]
    for v in session.scalars(select(Verdict).where(Verdict.uscc == lead.uscc).order_by(Verdict.id)):
        items.append(HistoryItem(v.visited_on, "verdict", v.outcome, v.violation_type, v.officer, v.note,
                                 v.lead_id, v.lead_id == lead.id, bool(getattr(v, "superseded", False)),
                                 v.recorded_at))
    items.sort(key=lambda i: (i.on or date.min, i.recorded_at or datetime.min.replace(tzinfo=None)
                              if i.recorded_at is None else i.recorded_at.replace(tzinfo=None)), reverse=True)
    return items
