"""The case track's page: documented breaches by kind, each with its evidence, the action it needs and its
status, moved along (open -> in progress -> closed | dismissed; a supervisor reopens) with the same service
the API's ``POST /api/v1/cases/{id}/status`` calls, and given to an officer of its district by a supervisor (or
handed back by its holder) with the one ``PUT /api/v1/cases/{id}/assignee`` calls. Beside the cases, the two kinds
of notice the checks raise before a breach: quota use in three colours with each entity's year-to-date curve, and
permit renewals at 90 and 60 days. Officers see their own city's district's, users bound to a city their city's,
province roles every city's or the one they choose. Every list exports as CSV/XLSX."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import case as sql_case
from sqlalchemy import func, or_, select

from serving.console.alert_text import alert_text
from serving.console.charts import LEVEL_ORDER, ytd_curve_svg, ytd_share
from serving.console.export import export_response
from serving.console.lists import Listing, area_menus, area_param, choice_param, text_param
from serving import roles
from serving.console.render import PageContext, PageDep, check_csrf, page_for, page_router, render
from serving.console.routes.alerts import alerts_query, lead_links, quota_thresholds
from serving.deps import ModelDep, SessionDep
from serving.errors import Invalid, NotFound
from serving.i18n import t
from serving.identity import Principal
from serving.schemas import Text
from serving.services import cases as service
from serving.services.scope import Scope
from serving.store import Alert, Case, Series

router = page_router()
CaseWorker = Annotated[PageContext, page_for(*roles.CASE_WORK)]
CASE_KINDS = ("expired_permit_in_use", "unpermitted_use", "quota_red", "tax_verification", "source_prevention")
NOTICE_KINDS = {"quota": ("quota", "quota_projection"), "renewal": ("renewal",)}  # tab -> alert kinds
TABS = ("quota", "renewal", *CASE_KINDS)
STATUSES = ("open", "in_progress", "closed", "dismissed")


def _cases(kind: str, area: Scope, status: str, text: str):
    q = service.select_cases(area, kind, status or None)
    if text:
        q = q.where(or_(Case.name.contains(text, autoescape=True), Case.uscc.contains(text, autoescape=True),
                        Case.permit_id.contains(text, autoescape=True), Case.project_id.contains(text, autoescape=True)))
    return q


def _tab_counts(session, live_runs: tuple[str, ...], area: Scope) -> dict[str, int]:
    counts = dict(session.execute(select(Case.kind, func.count()).where(Case.status.in_(("open", "in_progress")),
                                                                        *area.where(Case)).group_by(Case.kind)).all())
    for tab, kinds in NOTICE_KINDS.items():
        counts[tab] = session.scalar(select(func.count()).select_from(Alert).where(
            Alert.run_id.in_(live_runs), Alert.kind.in_(kinds), *area.where(Alert))) or 0
    return counts


def case_text(c: Case, lang: str) -> str:
    return (c.evidence_text_en if lang == "en" else c.evidence_text) or c.evidence_text or ""


def _case_items(session, rows: list[Case], p: Principal, links: dict, lang: str) -> list[dict]:
    """Each case with what the caller may do to it: no button the service would refuse. A case a colleague holds
    says who; a supervisor gets the officers of its district to give it to; its holder may hand it back."""
    supervises = p.role in roles.SUPERVISE
    officers = service.case_officers(session, rows) if supervises else {}
    items = []
    for c in rows:
        held = p.role in roles.CASE_WORK and not service.may_move(c, p)
        moves = [s for s in service.MOVES.get(c.status, ()) if s != "open" or supervises]
        live = c.status not in service.FINISHED
        items.append({"c": c, "text": case_text(c, lang), "lead_id": links.get(c.uscc), "held": held,
                      "moves": moves if p.role in roles.CASE_WORK and not held else [],
                      "officers": officers.get((c.city, c.district), []) if supervises and live else None,
                      "hand_back": live and p.is_officer and c.assignee == p.username})
    return items


@router.get("/cases", response_class=HTMLResponse)
def cases(request: Request, ctx: PageDep, session: SessionDep, model: ModelDep):
    lang, listing = ctx.lang, Listing.of(request)
    tab = choice_param(request, "kind", TABS) or "quota"
    area = area_param(request, ctx.principal)
    status, level, text = choice_param(request, "status", STATUSES), text_param(request, "level", 16), text_param(request, "q")
    severity = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    notices, rows = tab in NOTICE_KINDS, []
    if notices:
        order = (sql_case(severity, value=Alert.level, else_=len(severity)), Alert.value.desc(), Alert.alert_id)
        if tab == "renewal":
            order = (Alert.value, Alert.alert_id)  # fewest days left first
        query = alerts_query(model.live_runs, NOTICE_KINDS[tab], level, area, text)
        total, found, pages = listing.rows(session, query, order)
        rows = [r[0] for r in found]
    else:
        total, found, pages = listing.rows(session, _cases(tab, area, status, text),
                                           (Case.status.in_(("closed", "dismissed")), Case.district, Case.case_id))
        rows = [r[0] for r in found]
    if listing.fmt:
        return _export(tab, rows, listing.fmt, lang)
    links = lead_links(session, list({r.uscc for r in rows if r.uscc}), area)
    items = []
    if notices:
        series = {}
        if tab == "quota" and rows:
            series = dict(session.execute(select(Series.uscc, Series.series)
                                          .where(Series.uscc.in_([a.uscc for a in rows if a.uscc]))).all())
        thresholds = quota_thresholds(request.app.state.settings)
        labels = {"title": t("alerts.ytd", lang), "projection": t("alerts.projection", lang),
                  "now": t("alerts.ytd_now", lang), "jan": t("alerts.jan", lang), "dec": t("alerts.dec", lang)}
        red_cases = {} if tab != "quota" else {
            (c.uscc, c.period): c for c in session.scalars(select(Case).where(
                Case.kind == "quota_red", Case.uscc.in_([a.uscc for a in rows if a.uscc])))}
        for a in rows:
            chart = (ytd_curve_svg(ytd_share(series.get(a.uscc) or {}, str(a.period or "")[:4], a.value,
                                             bool(a.permit_id)), thresholds, labels)
                     if tab == "quota" and series.get(a.uscc) else None)
            items.append({"a": a, "text": alert_text(a, lang), "chart": chart, "lead_id": links.get(a.uscc),
                          "case": red_cases.get((a.uscc, str(a.period or "")[:4]))})
    else:
        items = _case_items(session, rows, ctx.principal, links, lang)
    levels = [] if not notices else sorted({lv for lv in session.scalars(select(Alert.level).where(
        Alert.run_id.in_(model.live_runs), Alert.kind.in_(NOTICE_KINDS[tab])).distinct()) if lv},
        key=lambda lv: severity.get(lv, 99))
    return render(ctx, "cases.html", tab=tab, tabs=TABS, counts=_tab_counts(session, model.live_runs, area),
                  items=items, total=total, page=listing.page, pages=pages, notices=notices, district=area.district,
                  city=area.city, **area_menus(session, ctx.principal, area, Case), status=status,
                  statuses=STATUSES, level=level, levels=levels, q=text,
                  thresholds=quota_thresholds(request.app.state.settings),
                  flash=request.query_params.get("done"), note_required=request.query_params.get("note_required"),
                  assigned=request.query_params.get("assigned"))


def _back(back: str) -> str | None:
    """The list page a form came from (its filters kept), if it is one of ours."""
    return back if back.startswith("/cases") and not back.startswith("//") else None


def _with(target: str, **params: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}{urlencode(params)}"


@router.post("/cases/{case_id}/status", response_class=HTMLResponse)
def move(case_id: str, request: Request, ctx: CaseWorker, session: SessionDep, csrf: Annotated[Text, Form()] = "",
         status: Annotated[Text, Form()] = "", note: Annotated[Text, Form()] = "", back: Annotated[Text, Form()] = ""):
    check_csrf(ctx, csrf)
    if status not in STATUSES:
        raise NotFound()
    target = _back(back)
    note = note.strip()[:500] or None
    if status in service.NEEDS_REASON and note is None:  # back to the list, the error beside the case's form
        return RedirectResponse(_with(target or "/cases", note_required=case_id[:64]), status_code=303)
    c = service.set_status(session, case_id[:64], status, note, ctx.principal)
    return RedirectResponse(_with(target or f"/cases?kind={c.kind}", done=status), status_code=303)


@router.post("/cases/{case_id}/assignee", response_class=HTMLResponse)
def assign(case_id: str, ctx: CaseWorker, session: SessionDep, csrf: Annotated[Text, Form()] = "",
           assignee: Annotated[Text, Form()] = "", release: Annotated[Text, Form()] = "",
           back: Annotated[Text, Form()] = ""):
    """A supervisor gives the case to the officer chosen, or releases it (``release``); its holder hands it back
    (``release``). The same service as the API's ``PUT /api/v1/cases/{id}/assignee``."""
    check_csrf(ctx, csrf)
    name = None if release else assignee.strip()
    if name is not None and not 1 <= len(name) <= 64:
        raise Invalid(t("cases.assign_choose", ctx.lang))
    c = service.assign_case(session, case_id[:64], name, None, ctx.principal)
    return RedirectResponse(_with(_back(back) or f"/cases?kind={c.kind}", assigned="1" if c.assignee else "0"),
                            status_code=303)


def _export(tab: str, rows, fmt: str, lang: str):
    if tab in NOTICE_KINDS:
        columns = [("kind", t("alerts.kind", lang)), ("level", t("alerts.level", lang)),
                   ("name", t("queue.entity", lang)), ("uscc", t("lead.uscc", lang)),
                   ("district", t("queue.district", lang)), ("permit_id", t("lead.permit_id", lang)),
                   ("period", t("alerts.period", lang)), ("value", t("alerts.value", lang)),
                   ("threshold", t("alerts.threshold", lang)), ("unit", t("alerts.unit", lang)),
                   ("text", t("dash.text", lang))]
        items = [{"kind": t(f"kind.{a.kind}", lang), "level": t(f"level.{a.level}", lang) if a.level else None,
                  "name": a.name, "uscc": a.uscc, "district": a.district, "permit_id": a.permit_id,
                  "period": a.period, "value": a.value, "threshold": a.threshold, "unit": a.unit,
                  "text": alert_text(a, lang)} for a in rows]
    else:
        columns = [("case_id", t("cases.id", lang)), ("kind", t("cases.kind", lang)), ("name", t("queue.entity", lang)),
                   ("uscc", t("lead.uscc", lang)), ("district", t("queue.district", lang)),
                   ("permit_id", t("lead.permit_id", lang)), ("project_id", t("cases.project", lang)),
                   ("period", t("alerts.period", lang)), ("action", t("cases.action", lang)),
                   ("status", t("queue.status", lang)), ("volume_at_stake_m3", t("cases.volume", lang)),
                   ("tax_at_stake_yuan", t("cases.tax", lang)), ("verified_m3", t("cases.verified", lang)),
                   ("assignee", t("cases.assignee", lang)), ("evidence", t("cases.evidence", lang))]
        items = [{"case_id": c.case_id, "kind": t(f"casekind.{c.kind}", lang), "name": c.name, "uscc": c.uscc,
                  "district": c.district, "permit_id": c.permit_id, "project_id": c.project_id, "period": c.period,
                  "action": t(f"action.{c.action}", lang), "status": t(f"case.{c.status}", lang),
                  "volume_at_stake_m3": c.volume_at_stake_m3, "tax_at_stake_yuan": c.tax_at_stake_yuan,
                  "verified_m3": c.verified_m3, "assignee": c.assignee, "evidence": case_text(c, lang)} for c in rows]
    return export_response(fmt, f"cases-{tab}", columns, items, t("nav.cases", lang))
