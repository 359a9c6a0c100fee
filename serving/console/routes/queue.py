"""The lead queue page: officers their city's district's queue in queue order, others the city (or the
province: a city menu) by rank; sort, search
(name, code, reason, address, industry name), filters (district, industry, status, alert kind, "mine"), the
address and industry name of each lead; the list as CSV/XLSX; and the officer's day sheet: the chosen leads
grouped by industrial park or street, printable, and as CSV."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from serving.console.charts import level_rank
from serving.console.export import export_format, export_response, fetch_limit
from serving.console.lists import area_menus, is_number
from serving.console.render import PageDep, display_zone, page_router, render
from serving.console.route_groups import route_group
from serving.deps import ModelDep, SessionDep
from serving.i18n import t
from serving.industries import codes_named, industry_name
from serving.console.reasons import lead_reasons
from serving.services import leads as service
from serving.services.scope import Scope, caller_scope
from serving.settings import bureau_today
from serving.store import LEAD_STATUSES, Alert, Entity, Lead, Verdict

PAGE_SIZE = 50
DAY_SHEET_MAX = 200
SORTS = ("queue", "risk", "name", "address", "industry", "status", "updated")
OFFICER_SORTS = ("queue", "name", "address", "industry", "status", "updated")  # officers never sort by score

router = page_router()


@dataclass
class QueueFilters:
    """The queue page's filters, read leniently from the query string (a bad value shows the default)."""

    status: str
    kind: str
    text: str
    district: str | None
    city: str | None
    industry: str
    mine: bool
    officer: str
    sort: str
    page: int

    @classmethod
    def of(cls, request: Request, officer: bool) -> "QueueFilters":
        qp = request.query_params
        status = qp.get("status") or ""
        try:
            page = max(1, min(100_000, int(qp.get("page") or 1)))
        except ValueError:
            page = 1
        sort = qp.get("sort") or "queue"
        return cls(status=status if status in (*LEAD_STATUSES, service.OPEN) else "",
                   kind=(qp.get("kind") or "").strip()[:32], text=(qp.get("q") or "").strip()[:64],
                   district=(qp.get("district") or "").strip()[:64] or None,
                   city=(qp.get("city") or "").strip()[:64] or None,
                   industry=(qp.get("industry") or "").strip()[:16], mine=qp.get("mine") in ("1", "on", "true"),
                   officer="" if officer else (qp.get("officer") or "").strip()[:64],
                   sort=sort if sort in (OFFICER_SORTS if officer else SORTS) else "queue", page=page)


def alert_chips(session: Session, live_runs: tuple[str, ...], usccs: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(kind, level) of each entity's alerts in its city's live run, most severe first."""
    chips: dict[str, list[tuple[str, str]]] = {}
    if usccs and live_runs:
        for uscc, kind, level in session.execute(select(Alert.uscc, Alert.kind, Alert.level).where(
                Alert.run_id.in_(live_runs), Alert.uscc.in_(usccs)).distinct()):
            chips.setdefault(uscc, []).append((kind, level or "notice"))
    for found in chips.values():
        found.sort(key=lambda c: level_rank(c[1]))
    return chips


def queue_tiles(session: Session, area: Scope) -> dict[str, int]:
    """The totals at the top of the page: open and closed leads, violations found."""
    scope = select(Lead.status, func.count()).where(or_(Lead.in_queue.is_(True), Lead.status != "new"))
    violations = select(func.count()).select_from(Verdict).join(Lead, Lead.id == Verdict.lead_id).where(
        Verdict.outcome == "violation", Verdict.superseded.is_(False))  # a reopened lead's old verdict: not twice
    scope, violations = scope.where(*area.where(Lead)), violations.where(*area.where(Lead))
    by_status = dict(session.execute(scope.group_by(Lead.status)).all())
    return {"open": sum(v for k, v in by_status.items() if k != "closed"), "closed": by_status.get("closed", 0),
            "violations": session.scalar(violations) or 0}


def queue_query(session: Session, p, f: QueueFilters, area: Scope, live_runs: tuple[str, ...], lang: str):
    q = (service.select_leads(f.status or service.WORKED, area, f.kind or None, live_runs)
         .add_columns(Entity.address, Entity.industry_code.label("entity_industry"))
         .outerjoin(Entity, Entity.uscc == Lead.uscc))
    if f.mine:
        q = q.where(Lead.assigned_officer == p.username)
    if f.officer:  # a supervisor's drill-down from an officer's workload
        q = q.where(Lead.assigned_officer == f.officer)
    if f.industry:
        q = q.where(func.coalesce(Entity.industry_code, Lead.industry_code) == f.industry)
    if f.text:
        text = f.text
        conditions = [Lead.reasons.contains(text, autoescape=True), Lead.name.contains(text, autoescape=True),
                      Lead.uscc.contains(text, autoescape=True), Entity.address.contains(text, autoescape=True)]
        known = set(session.scalars(select(Entity.industry_code).distinct())) | set(
            session.scalars(select(Lead.industry_code).distinct()))
        named = codes_named(text, known, lang)
        if named:
            conditions.append(func.coalesce(Entity.industry_code, Lead.industry_code).in_(named))
        q = q.where(or_(*conditions))
    return q


def queue_order(p, f: QueueFilters) -> tuple:
    closed_last = (Lead.status == "closed",)
    by = {
        "risk": (Lead.risk_score.desc(), Lead.id),
        "name": (Lead.name, Lead.id),
        "address": (Entity.address, Lead.id),
        "industry": (func.coalesce(Entity.industry_code, Lead.industry_code), Lead.id),
        "status": (Lead.status, Lead.id),
        "updated": (Lead.updated_at.desc(), Lead.id),
    }.get(f.sort)
    return (*closed_last, *by) if by else service.lead_order(p, closed_last=True)


def queue_items(p, rows, chips, lang: str) -> list[dict]:
    items = []
    for x, address, entity_industry in rows:
        industry = entity_industry or x.industry_code
        items.append({
            "id": x.id, "uscc": x.uscc, "name": x.name, "district": x.district, "status": x.status,
            "position": x.queue_position, "officer": x.assigned_officer, "address": address,
            "industry_code": industry, "industry": industry_name(industry, lang),
            "group": route_group(address, x.district),
            "top_reason": (lead_reasons(x, lang) or [""])[0], "reasons": lead_reasons(x, lang),
            "alerts": chips.get(x.uscc, []),
            "risk": None if p.is_officer else x.risk_score, "rank": None if p.is_officer else x.rank,
        })
    return items


def _export(items: list[dict], fmt: str, lang: str, officer: bool, day: bool):
    columns = ([("group", t("day.group", lang))] if day else []) + [
        ("position" if officer else "rank", t("queue.position") if officer else t("lead.rank", lang)),
        ("name", t("queue.entity", lang)), ("uscc", t("lead.uscc", lang)), ("address", t("lead.address", lang)),
        ("district", t("queue.district", lang)), ("industry", t("queue.industry", lang)),
        ("status", t("queue.status", lang)), ("officer", t("queue.officer", lang)),
        ("top_reason", t("queue.top_reason", lang))] + ([] if officer else [("risk", t("queue.risk", lang))])
    for item in items:
        item["status"] = t(f"status.{item['status']}", lang)
    return export_response(fmt, "day-sheet" if day else "queue", columns, items,
                           t("day.title" if day else "queue.title_all", lang))


def _filters_context(session: Session, p, area: Scope, lang: str, live_runs: tuple[str, ...]) -> dict:
    kinds = sorted(k for k in session.scalars(select(Alert.kind).where(Alert.run_id.in_(live_runs)).distinct()) if k)
    scope = select(func.coalesce(Entity.industry_code, Lead.industry_code)).select_from(Lead).outerjoin(
        Entity, Entity.uscc == Lead.uscc).where(or_(Lead.in_queue.is_(True), Lead.status != "new"), *area.where(Lead))
    codes = {c for c in session.scalars(scope.distinct()) if c}
    industries = sorted(((c, industry_name(c, lang)) for c in codes), key=lambda x: (x[1], x[0]))
    return {"kinds": kinds, "industries": industries, **area_menus(session, p, area, Lead)}


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, ctx: PageDep, session: SessionDep, model: ModelDep):
    p, lang = ctx.principal, ctx.lang
    f = QueueFilters.of(request, p.is_officer)
    area = caller_scope(p, f.city, f.district)
    q = queue_query(session, p, f, area, model.live_runs, lang)
    fmt = export_format(request.query_params.get("format"))
    order = queue_order(p, f)
    total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    q = q.order_by(*order)
    rows = session.execute(q.limit(fetch_limit()) if fmt else q.offset((f.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    items = queue_items(p, rows, alert_chips(session, model.live_runs, [r[0].uscc for r in rows]), lang)
    if fmt:
        return _export(items, fmt, lang, p.is_officer, day=False)
    recorded = request.query_params.get("recorded")
    return render(
        ctx, "queue.html", items=items, total=total, page=f.page, pages=max(1, math.ceil(total / PAGE_SIZE)),
        status=f.status, kind=f.kind, q=f.text, district=area.district, city=area.city, industry=f.industry,
        mine=f.mine, sort=f.sort,
        officer=f.officer,
        sorts=OFFICER_SORTS if p.is_officer else SORTS, statuses=LEAD_STATUSES,
        recorded=int(recorded) if is_number(recorded or "") else None, tiles=queue_tiles(session, area),
        recorded_unreachable=request.query_params.get("unreachable") == "1",
        **_filters_context(session, p, area, lang, model.live_runs),
    )


@router.get("/queue/day", response_class=HTMLResponse)
def day_sheet(request: Request, ctx: PageDep, session: SessionDep, model: ModelDep):
    """The officer's day: the leads of the queue's current filters (default: mine, still open), grouped by
    park or street for one route, printable; ``?format=csv`` the same, grouped."""
    p, lang = ctx.principal, ctx.lang
    f = QueueFilters.of(request, p.is_officer)
    if not request.query_params.get("status"):
        f.status = service.OPEN
    if "mine" not in request.query_params and p.is_officer:
        f.mine = True
    area = caller_scope(p, f.city, f.district)
    q = queue_query(session, p, f, area, model.live_runs, lang).order_by(*queue_order(p, f)).limit(DAY_SHEET_MAX)
    rows = session.execute(q).all()
    items = queue_items(p, rows, alert_chips(session, model.live_runs, [r[0].uscc for r in rows]), lang)
    items.sort(key=lambda x: (x["group"] == "其他", x["group"], x["address"] or "", x["id"]))
    fmt = export_format(request.query_params.get("format"))
    if fmt:
        return _export(items, fmt, lang, p.is_officer, day=True)
    groups: dict[str, list[dict]] = {}
    for item in items:
        groups.setdefault(item["group"], []).append(item)
    return render(ctx, "day_sheet.html", groups=list(groups.items()), total=len(items), district=area.district,
                  mine=f.mine, status=f.status, today=bureau_today(display_zone(request)).isoformat(),
                  limit=DAY_SHEET_MAX)
