"""The alerts page: the supervision alerts of each city's live run by kind, with filters (level, city, district,
text), the text in the reader's language, the quota alerts' year-to-date curves against the three thresholds, a
link to the entity's lead, and the list as CSV/XLSX. Officers see their own city's district's, users bound to a
city their city's."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select

from serving.console.alert_text import alert_text
from serving.console.charts import LEVEL_ORDER, level_rank, ytd_curve_svg, ytd_share
from serving.console.export import export_response
from serving.console.lists import Listing, area_menus, area_param, text_param
from serving.console.render import PageDep, page_router, render
from serving.deps import ModelDep, SessionDep
from serving.i18n import t
from serving.services.scope import Scope
from serving.store import Alert, Lead, Series

router = page_router()
QUOTA_KINDS = ("quota", "quota_projection")


def quota_thresholds(settings) -> dict[str, float]:
    rules = getattr(settings, "rules", None)
    return {"yellow": 100 * getattr(rules, "quota_yellow", 0.8), "orange": 100 * getattr(rules, "quota_orange", 0.9),
            "red": 100 * getattr(rules, "quota_red", 1.0)}


def alerts_query(live_runs: tuple[str, ...], kind: str | tuple[str, ...], level: str, area: Scope, text: str):
    """The live runs' alerts of one kind (or any of several; none: every kind), filtered as the lists are."""
    q = select(Alert).where(Alert.run_id.in_(live_runs), *area.where(Alert))
    if kind:
        q = q.where(Alert.kind.in_(kind) if isinstance(kind, tuple) else Alert.kind == kind)
    if level:
        q = q.where(Alert.level == level)
    if text:
        q = q.where(or_(Alert.name.contains(text, autoescape=True), Alert.uscc.contains(text, autoescape=True),
                        Alert.permit_id.contains(text, autoescape=True)))
    return q


def lead_links(session, usccs: list[str], area: Scope) -> dict[str, int]:
    """The open (else latest) lead of each entity, for a link to its page."""
    if not usccs:
        return {}
    q = select(Lead.uscc, Lead.id).where(Lead.uscc.in_(usccs)).order_by(Lead.status == "closed", Lead.id.desc())
    q = q.where(*area.where(Lead))
    links: dict[str, int] = {}
    for uscc, lead_id in session.execute(q):
        links.setdefault(uscc, lead_id)
    return links


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, ctx: PageDep, session: SessionDep, model: ModelDep):
    lang, listing = ctx.lang, Listing.of(request)
    area = area_param(request, ctx.principal)
    kind, level, text = text_param(request, "kind", 32), text_param(request, "level", 16), text_param(request, "q")
    severity = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    from sqlalchemy import case

    order = (Alert.kind, case(severity, value=Alert.level, else_=len(severity)), Alert.value.desc(), Alert.alert_id)
    total, rows, pages = listing.rows(session, alerts_query(model.live_runs, kind, level, area, text), order)
    alerts_ = [r[0] for r in rows]
    if listing.fmt:
        columns = [("alert_id", t("alerts.id", lang)), ("kind", t("alerts.kind", lang)),
                   ("level", t("alerts.level", lang)), ("name", t("queue.entity", lang)),
                   ("uscc", t("lead.uscc", lang)), ("district", t("queue.district", lang)),
                   ("permit_id", t("lead.permit_id", lang)), ("period", t("alerts.period", lang)),
                   ("value", t("alerts.value", lang)), ("threshold", t("alerts.threshold", lang)),
                   ("unit", t("alerts.unit", lang)), ("text", t("dash.text", lang))]
        items = [{"alert_id": a.alert_id, "kind": t(f"kind.{a.kind}", lang),
                  "level": t(f"level.{a.level}", lang) if a.level else None, "name": a.name, "uscc": a.uscc,
                  "district": a.district, "permit_id": a.permit_id, "period": a.period, "value": a.value,
                  "threshold": a.threshold, "unit": a.unit, "text": alert_text(a, lang)} for a in alerts_]
        return export_response(listing.fmt, "alerts", columns, items, t("nav.alerts", lang))
    series = {}
    if any(a.kind in QUOTA_KINDS for a in alerts_):
        wanted = [a.uscc for a in alerts_ if a.kind in QUOTA_KINDS and a.uscc]
        series = dict(session.execute(select(Series.uscc, Series.series).where(Series.uscc.in_(wanted))).all())
    thresholds = quota_thresholds(request.app.state.settings)
    chart_labels = {"title": t("alerts.ytd", lang), "projection": t("alerts.projection", lang),
                    "now": t("alerts.ytd_now", lang), "jan": t("alerts.jan", lang), "dec": t("alerts.dec", lang)}
    links = lead_links(session, list({a.uscc for a in alerts_ if a.uscc}), area)
    items = [{"a": a, "text": alert_text(a, lang), "lead_id": links.get(a.uscc),
              "chart": ytd_curve_svg(ytd_share(series.get(a.uscc) or {}, str(a.period or "")[:4], a.value,
                                               bool(a.permit_id)), thresholds, chart_labels)
              if a.kind in QUOTA_KINDS and series.get(a.uscc) else None} for a in alerts_]
    by_kind_level = session.execute(select(Alert.kind, Alert.level, func.count())
                                    .where(Alert.run_id.in_(model.live_runs), *area.where(Alert))
                                    .group_by(Alert.kind, Alert.level)).all()
    kinds: dict[str, dict[str, int]] = {}
    for k, lv, n in by_kind_level:
        kinds.setdefault(k, {})[lv or "notice"] = n
    kind_tabs = [(k, sum(v.values()), sorted(v.items(), key=lambda x: level_rank(x[0]))) for k, v in sorted(kinds.items())]
    levels = sorted({lv for v in kinds.values() for lv in v}, key=level_rank)
    menus = area_menus(session, ctx.principal, area, Alert, Alert.run_id.in_(model.live_runs))
    return render(ctx, "alerts.html", items=items, total=total, page=listing.page, pages=pages, kind=kind,
                  kind_tabs=kind_tabs, level=level, levels=levels, district=area.district, city=area.city, q=text,
                  thresholds=thresholds, all_total=sum(n for *_, n in by_kind_level), **menus)
