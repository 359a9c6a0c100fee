"""The lead queue page: officers their district's queue in queue order, others the city by rank."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from serving.console.charts import level_rank
from serving.console.render import PageDep, page_router, render
from serving.deps import ModelDep, SessionDep
from serving.schemas import split_reasons
from serving.services import leads as service
from serving.services.query import paginate
from serving.store import LEAD_STATUSES, Alert, Lead, Verdict

PAGE_SIZE = 50

router = page_router()


@dataclass
class QueueFilters:
    """The queue page's filters, read leniently from the query string (a bad value shows the default)."""

    status: str
    kind: str
    text: str
    district: str | None
    page: int

    @classmethod
    def of(cls, request: Request) -> "QueueFilters":
        qp = request.query_params
        status = qp.get("status") or ""
        try:
            page = max(1, min(100_000, int(qp.get("page") or 1)))
        except ValueError:
            page = 1
        return cls(status=status if status in (*LEAD_STATUSES, service.OPEN) else "",
                   kind=(qp.get("kind") or "").strip()[:32], text=(qp.get("q") or "").strip()[:64],
                   district=(qp.get("district") or "").strip()[:64] or None, page=page)


def alert_chips(session: Session, run_id: str | None, usccs: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(kind, level) of each entity's live alerts, most severe first."""
    chips: dict[str, list[tuple[str, str]]] = {}
    if usccs and run_id:
        for uscc, kind, level in session.execute(select(Alert.uscc, Alert.kind, Alert.level)
                                                 .where(Alert.run_id == run_id, Alert.uscc.in_(usccs)).distinct()):
            chips.setdefault(uscc, []).append((kind, level or "notice"))
    for found in chips.values():
        found.sort(key=lambda c: level_rank(c[1]))
    return chips


def queue_tiles(session: Session, district: str | None) -> dict[str, int]:
    """The totals at the top of the page: open and closed leads, violations found."""
    scope = select(Lead.status, func.count()).where(or_(Lead.in_queue.is_(True), Lead.status != "new"))
    violations = select(func.count()).select_from(Verdict).join(Lead, Lead.id == Verdict.lead_id).where(
        Verdict.outcome == "violation")
    if district is not None:
        scope, violations = scope.where(Lead.district == district), violations.where(Lead.district == district)
    by_status = dict(session.execute(scope.group_by(Lead.status)).all())
    return {"open": sum(v for k, v in by_status.items() if k != "closed"), "closed": by_status.get("closed", 0),
            "violations": session.scalar(violations) or 0}


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, ctx: PageDep, session: SessionDep, model: ModelDep):
    p, f = ctx.principal, QueueFilters.of(request)
    district = service.officer_district(p, f.district)
    q = service.select_leads(f.status or service.WORKED, district, f.kind or None, model.run_id, f.text)
    total, rows = paginate(q, session, f.page, PAGE_SIZE, service.lead_order(p, closed_last=True))
    chips = alert_chips(session, model.run_id, [x.uscc for x in rows])
    items = [{
        "id": x.id, "uscc": x.uscc, "name": x.name, "district": x.district, "status": x.status,
        "position": x.queue_position, "officer": x.assigned_officer,
        "top_reason": (split_reasons(x.reasons) or [""])[0], "alerts": chips.get(x.uscc, []),
        "risk": None if p.is_officer else x.risk_score, "rank": None if p.is_officer else x.rank,
    } for x in rows]
    kinds = sorted(k for k in session.scalars(select(Alert.kind).where(Alert.run_id == model.run_id).distinct()) if k)
    districts = [] if p.is_officer else sorted(d for d in session.scalars(select(Lead.district).distinct()) if d)
    recorded = request.query_params.get("recorded")
    return render(
        ctx, "queue.html", items=items, total=total, page=f.page, pages=max(1, math.ceil(total / PAGE_SIZE)),
        status=f.status, kind=f.kind, q=f.text, district=district, kinds=kinds, districts=districts,
        statuses=LEAD_STATUSES, recorded=int(recorded) if (recorded or "").isdigit() else None,
        tiles=queue_tiles(session, district),
    )
