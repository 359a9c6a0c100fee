"""The supervisors' city dashboard: the queue's state and backlog age per district, every officer's workload and
hit rate, verdicts and hit rate by month, each run's results while it was live, alerts by kind, and the model's
backtest (or why it has no measured number; the cities of a province whose models differ: each city's). Every
bar drills down to the list it counts; every table exports as CSV/XLSX (``?format=csv&table=districts|officers|
runs``). Each section is one function returning the values its part of the template reads."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from serving import roles
from serving.console.charts import AGE_COLOURS, LEVEL_COLOURS, STATUS_COLOURS, hit_rate_svg, level_rank, stacked_bars_svg
from serving.console.export import export_format, export_response
from serving.console.lists import area_menus, city_area
from serving.console.render import PageContext, display_zone, page_for, page_router, render
from serving.services.scope import Scope
from serving.deps import ModelDep, SessionDep
from serving.i18n import metric_label, t
from serving.runtime import ModelInfo
from serving.settings import bureau_today
from serving.store import LEAD_STATUSES, Alert, Lead, OutboxMessage, Run, Score, User, Verdict, utcnow

router = page_router()
BACKTEST_ORDER = {"model": 0, "naive": 1, "random": 2}
AGE_BUCKETS = (("d7", 7), ("d30", 30), ("d90", 90), ("older", None))
MIN_LABELLED = 10  # fewer labelled entities than this in the top K: a precision there measures nothing
TABLES = ("districts", "officers", "runs")
# a hit rate's denominator: conclusive verdicts, and only current ones (a verdict superseded when its lead was
# reopened is no longer the lead's verdict: counting it too would count that lead twice)
DECIDED = ("violation", "no_violation")
EVERYWHERE = Scope()


def _link(path: str, **params) -> str:
    return path + "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _district_key(city: str | None, district: str | None) -> tuple[str, str]:
    """A district of a city: two cities of a province's store may have districts of the same name."""
    return city or "", district or "—"


def _label(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}" if key[0] else key[1]


def districts_section(session: Session, lang: str, area: Scope = EVERYWHERE) -> dict[str, Any]:
    """Per district of each city: leads by status (the queue and every lead already worked) and the age of the
    open ones."""
    worked = or_(Lead.in_queue.is_(True), Lead.status != "new")
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for c, d, st, n in session.execute(select(Lead.city, Lead.district, Lead.status, func.count()).where(
            worked, *area.where(Lead)).group_by(Lead.city, Lead.district, Lead.status)):
        table.setdefault(_district_key(c, d), {s: 0 for s in LEAD_STATUSES})[st] = n
    now = utcnow()
    ages: dict[tuple[str, str], dict[str, int]] = {d: {b: 0 for b, _ in AGE_BUCKETS} for d in table}
    oldest: dict[tuple[str, str], int] = {}
    for c, d, created in session.execute(select(Lead.city, Lead.district, Lead.created_at).where(
            Lead.in_queue.is_(True), Lead.status != "closed", *area.where(Lead))):
        days = max(0, (now - created).days) if created else 0
        bucket = next(b for b, limit in AGE_BUCKETS if limit is None or days <= limit)
        key = _district_key(c, d)
        ages.setdefault(key, {b: 0 for b, _ in AGE_BUCKETS})[bucket] += 1
        oldest[key] = max(oldest.get(key, 0), days)
    status_rows = [(_label(d), [(t(f"status.{st}", lang), table[d].get(st, 0), STATUS_COLOURS[st],
                                 _link("/queue", city=d[0], district=d[1], status=st)) for st in LEAD_STATUSES])
                   for d in sorted(table)]
    age_rows = [(_label(d), [(t(f"age.{b}", lang), ages[d][b], AGE_COLOURS[b],
                              _link("/queue", city=d[0], district=d[1], status="open")) for b, _ in AGE_BUCKETS])
                for d in sorted(ages)]
    rows = [{"city": d[0] or None, "district": d[1], **table[d],
             "open": sum(v for k, v in table[d].items() if k != "closed"),
             **{f"age_{b}": ages.get(d, {}).get(b, 0) for b, _ in AGE_BUCKETS}, "oldest_days": oldest.get(d, 0)}
            for d in sorted(table)]
    return {"district_chart": stacked_bars_svg(status_rows, "districts") if status_rows else None,
            "age_chart": stacked_bars_svg(age_rows, "backlog-age") if any(sum(a.values()) for a in ages.values())
            else None, "district_rows": rows, "statuses": LEAD_STATUSES, "age_buckets": [b for b, _ in AGE_BUCKETS]}


def officers_section(session: Session, lang: str, area: Scope = EVERYWHERE,
                     today: date | None = None) -> dict[str, Any]:
    """Every active officer (of the city shown), with what they hold, what they closed, their verdicts and hit
    rate, and their verdicts of the last 30 days up to ``today`` (the bureau's: visits are dated on its day);
    those with nothing yet show zeros rather than being left out. The verdicts they recorded count their work;
    the hit rate counts only current verdicts (``DECIDED``)."""
    load: dict[str, dict[str, Any]] = {}
    for name, city, district in session.execute(select(User.username, User.city, User.district).where(
            User.role == "officer", User.active.is_(True), *Scope(area.city, every_city=area.every_city).where(User))):
        load[name] = {"officer": name, "city": city, "district": district, "open": 0, "closed": 0, "verdicts": 0,
                      "violations": 0, "decided": 0, "last_30": 0}

    def row(officer: str) -> dict[str, Any]:
        return load.setdefault(officer, {"officer": officer, "district": None, "open": 0, "closed": 0, "verdicts": 0,
                                         "violations": 0, "decided": 0, "last_30": 0})

    for officer, city, st, n in session.execute(
            select(Lead.assigned_officer, Lead.city, Lead.status, func.count())
            .where(Lead.assigned_officer.is_not(None), *area.where(Lead))
            .group_by(Lead.assigned_officer, Lead.city, Lead.status)):
        r = row(officer)
        r["closed" if st == "closed" else "open"] += n
        r.setdefault("city", city)  # an officer no longer active: the city of the leads they hold
    since = (today or bureau_today()) - timedelta(days=30)
    recent = func.sum(case((Verdict.visited_on >= since, 1), else_=0))
    current = func.sum(case((Verdict.superseded.is_(False), 1), else_=0))
    for officer, outcome, n, n_recent, n_current in session.execute(
            select(Verdict.officer, Verdict.outcome, func.count(), recent, current)
            .join(Lead, Lead.id == Verdict.lead_id)
            .where(*area.where(Lead)).group_by(Verdict.officer, Verdict.outcome)):
        r = row(officer)
        r["verdicts"] += n
        r["violations"] += int(n_current or 0) if outcome == "violation" else 0
        r["decided"] += int(n_current or 0) if outcome in DECIDED else 0
        r["last_30"] += int(n_recent or 0)
    rows = sorted(load.values(), key=lambda r: (r.get("city") or "", r["district"] or "", r["officer"]))
    for r in rows:
        r["hit_rate"] = r["violations"] / r["decided"] if r["decided"] else None
    bars = [(r["officer"], [(t("dash.open_assigned", lang), r["open"], STATUS_COLOURS["assigned"],
                             _link("/queue", officer=r["officer"], status="open")),
                            (t("dash.closed", lang), r["closed"], STATUS_COLOURS["closed"],
                             _link("/queue", officer=r["officer"], status="closed"))]) for r in rows]
    return {"workload_chart": stacked_bars_svg(bars, "workload") if bars else None, "officers": rows}


def verdicts_section(session: Session, lang: str, area: Scope = EVERYWHERE) -> dict[str, Any]:
    """Verdicts recorded and the hit rate (violations among decided visits, ``DECIDED``) by month of the visit."""
    v_rows = session.execute(select(Verdict.visited_on, Verdict.outcome, Verdict.superseded)
                             .join(Lead, Lead.id == Verdict.lead_id).where(*area.where(Lead))).all()
    months, counts, rates, hits, visited = [], [], [], 0, 0
    if v_rows:
        import pandas as pd

        vf = pd.DataFrame(v_rows, columns=["visited_on", "outcome", "superseded"])
        vf["month"] = pd.to_datetime(vf["visited_on"]).dt.strftime("%Y-%m")
        current = ~vf["superseded"].astype(bool)
        vf["hit"] = ((vf["outcome"] == "violation") & current).astype(int)
        vf["decided"] = (vf["outcome"].isin(DECIDED) & current).astype(int)
        g = vf.groupby("month").agg(n=("outcome", "size"), hits=("hit", "sum"), decided=("decided", "sum"))
        months, counts = g.index.tolist(), g["n"].astype(int).tolist()
        rates = [None if d == 0 else h / d for h, d in zip(g["hits"], g["decided"])]
        hits, visited = int(vf["hit"].sum()), int(vf["decided"].sum())
    chart = hit_rate_svg(months, counts, rates, {"verdicts": t("chart.verdicts", lang),
                                                 "hit_rate": t("chart.hit_rate", lang)}) if months else None
    return {"hit_chart": chart, "verdict_total": len(v_rows), "hits": hits, "visited": visited,
            "hit_rate": hits / visited if visited else None}


def _run_city(area: Scope) -> list:
    return [] if area.every_city else [Run.city.is_(None) if area.city is None else Run.city == area.city]


def runs_section(session: Session, area: Scope = EVERYWHERE) -> dict[str, Any]:
    """Each published run (of the city shown), oldest first: entities scored, and the verdicts recorded while it
    was the live run with their hit rate (current verdicts: ``DECIDED``; the trend of the field's results across
    runs). A run is its city's live run until that city's next one (a province's cities publish in turn), and
    counts its own city's verdicts."""
    runs = session.scalars(select(Run).where(*_run_city(area)).order_by(Run.published_at, Run.run_id)).all()
    scored = dict(session.execute(select(Score.run_id, func.count()).group_by(Score.run_id)).all())
    verdicts: dict[str | None, list[tuple[Any, str, bool]]] = {}
    for at, outcome, superseded, city in session.execute(
            select(Verdict.recorded_at, Verdict.outcome, Verdict.superseded, Lead.city)
            .join(Lead, Lead.id == Verdict.lead_id).where(*area.where(Lead))):
        verdicts.setdefault(city, []).append((at, outcome, bool(superseded)))
    ends: dict[str, Any] = {}
    following: dict[str | None, Any] = {}
    for run in reversed(runs):
        ends[run.run_id], following[run.city] = following.get(run.city), run.published_at
    rows = []
    for run in runs:
        start, end = run.published_at, ends[run.run_id]
        mine = [(o, gone) for at, o, gone in verdicts.get(run.city, ())
                if at is not None and at >= start and (end is None or at < end)]
        decided = sum(o in DECIDED and not gone for o, gone in mine)
        hits = sum(o == "violation" and not gone for o, gone in mine)
        rows.append({"run_id": run.run_id, "city": run.city, "as_of": run.as_of, "published_at": run.published_at,
                     "model_version": run.model_version, "entities": scored.get(run.run_id, run.entities or 0),
                     "verdicts": len(mine), "violations": hits, "hit_rate": hits / decided if decided else None})
    return {"runs": rows}


def alerts_section(session: Session, live_runs: tuple[str, ...], lang: str, area: Scope = EVERYWHERE) -> dict[str, Any]:
    """The alerts of each city's live run (of the city shown) by kind and level."""
    counts = session.execute(select(Alert.kind, Alert.level, func.count())
                             .where(Alert.run_id.in_(live_runs), *area.where(Alert))
                             .group_by(Alert.kind, Alert.level)).all()
    kinds: dict[str, dict[str, int]] = {}
    for kind, level, n in counts:
        kinds.setdefault(kind, {})[level or "notice"] = n
    rows = [(t(f"kind.{k}", lang), [(t(f"level.{lv}", lang), v.get(lv, 0), LEVEL_COLOURS.get(lv, "#a0aec0"),
                                     _link("/alerts", kind=k, level=lv, city=area.city))
                                    for lv in sorted(v, key=level_rank)])
            for k, v in sorted(kinds.items())]
    return {"alert_chart": stacked_bars_svg(rows, "alerts") if rows else None,
            "levels_seen": sorted({lv for v in kinds.values() for lv in v}, key=level_rank),
            "alert_total": sum(n for _, _, n in counts)}


def model_section(info: ModelInfo, lang: str) -> dict[str, Any]:
    """The backtest's numbers where they measure something; otherwise why there is none. A precision among the
    top K means nothing when (almost) none of the top K had an inspection: such a target is reported as not
    measurable with the number of labelled entities, never as 0.000."""
    metrics = {k: v for k, v in (info.backtest or {}).items() if isinstance(v, (int, float))}
    targets: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        parts = key.split(".")
        if len(parts) == 3:
            targets.setdefault(parts[0], {})[key] = value
    sections = []
    for target, values in sorted(targets.items()):
        labelled = [v for k, v in values.items() if ".model.labelled_at_" in k]
        n_labelled = max(labelled) if labelled else None
        measurable = not (n_labelled is not None and n_labelled < MIN_LABELLED) and any(
            v for k, v in values.items() if ".precision_at_" in k or "average_precision" in k)
        keys = sorted(values, key=lambda k: (BACKTEST_ORDER.get(k.split(".")[1], 9), k))
        rows = [(k, metric_label(k, lang), values[k], "labelled_at" in k) for k in keys
                if measurable or "labelled_at" in k]
        sections.append({"target": target, "measurable": measurable, "labelled": n_labelled, "rows": rows})
    why = None
    if not metrics:
        why = t("model.why_no_backtest", lang)
    return {"model_targets": sections, "model_why": why, "min_labelled": MIN_LABELLED}


def model_view(model: ModelInfo, area: Scope, lang: str) -> dict[str, Any]:
    """The model section for the cities in view. One city (or a city run's store): its live run's model. Every
    city of a province's store: the one model their live runs carry, shown once; or, when their models differ
    (``ModelInfo.models_differ``), each city's (version, trained, backtest), as the run published last speaks
    for no other city. In memory only (the holder's ``ModelInfo``): no query."""
    if area.every_city and len(model.cities) > 1:
        info, runs = model, tuple(sorted((i for i in model.cities if i.run_id), key=lambda i: i.city or ""))
    else:
        info = model.of(area)
        runs = (info,) if info.run_id else ()
    # the data period once when the cities share it (a province run's), else each city's
    periods = [(None, r.as_of) for r in runs[:1]] if len({r.as_of for r in runs}) <= 1 else \
        [(r.city, r.as_of) for r in runs]
    differ = bool(area.every_city and model.models_differ)
    return {"info": info, "run_shown": runs[0].run_id if len(runs) == 1 else None, "periods": periods,
            "model_cities": [{"city": r.city, "info": r, **model_section(r, lang)} for r in runs] if differ else [],
            **model_section(info, lang)}


def several_cities(model: ModelInfo, area: Scope) -> bool:
    """Whether the dashboard's rows may be of more than one city: every city of a store where more than one city
    has a live run (from the holder's ``ModelInfo``: no query)."""
    return area.every_city and len({info.city for info in model.cities}) > 1


def _export(table: str, fmt: str, lang: str, data: dict[str, Any], cities: bool, zone: str):
    """One table as a file. ``cities``: the rows may be of several cities (a province role's, without ``?city=``),
    so each carries its city (城市), as two cities' 德城区 are otherwise one name twice. A city's export (a city-bound
    caller's, or ``?city=``'s) keeps the columns a city's installation always had: its rows are of one city by
    construction, and the files the bureau already reads keep their shape."""
    city = [("city", t("queue.city", lang))] if cities else []
    if table == "officers":
        columns = [("officer", t("queue.officer", lang)), *city, ("district", t("queue.district", lang)),
                   ("open", t("dash.open_assigned", lang)), ("closed", t("dash.closed", lang)),
                   ("verdicts", t("dash.verdicts", lang)), ("violations", t("dash.violations", lang)),
                   ("hit_rate", t("dash.hit_rate", lang)), ("last_30", t("dash.last_30", lang))]
        rows = data["officers"]
    elif table == "runs":
        columns = [("run_id", t("dash.run", lang)), *city, ("as_of", t("dash.as_of_day", lang)),
                   ("published_at", t("dash.published", lang)), ("model_version", t("dash.model_version", lang)),
                   ("entities", t("dash.entities", lang)), ("verdicts", t("dash.verdicts", lang)),
                   ("violations", t("dash.violations", lang)), ("hit_rate", t("dash.hit_rate", lang))]
        rows = data["runs"]
    else:
        columns = [*city, ("district", t("queue.district", lang)),
                   *[(s, t(f"status.{s}", lang)) for s in LEAD_STATUSES], ("open", t("status.open", lang)),
                   *[(f"age_{b}", t(f"age.{b}", lang)) for b, _ in AGE_BUCKETS],
                   ("oldest_days", t("dash.oldest_days", lang))]
        rows = data["district_rows"]
    return export_response(fmt, f"dashboard-{table}", columns, rows, t("dash.title", lang), zone=zone)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, ctx: Annotated[PageContext, page_for(*roles.DASHBOARD)], session: SessionDep,
              model: ModelDep):
    lang, area = ctx.lang, city_area(request, ctx.principal)
    today = bureau_today(display_zone(request))
    fmt = export_format(request.query_params.get("format"))
    if fmt:
        table = request.query_params.get("table") or "districts"
        table = table if table in TABLES else "districts"
        data = {**districts_section(session, lang, area), **officers_section(session, lang, area, today),
                **runs_section(session, area)}
        return _export(table, fmt, lang, data, several_cities(model, area), zone=display_zone(request))
    verdicts, alerts = verdicts_section(session, lang, area), alerts_section(session, model.live_runs, lang, area)
    queued = (Lead.in_queue.is_(True), *area.where(Lead))
    in_queue = session.scalar(select(func.count()).select_from(Lead).where(*queued)) or 0
    open_ = session.scalar(select(func.count()).select_from(Lead).where(*queued, Lead.status != "closed")) or 0
    outbox = dict(session.execute(select(OutboxMessage.status, func.count()).where(
        *([] if area.every_city else [OutboxMessage.run_id.in_(select(Run.run_id).where(*_run_city(area)))]))
        .group_by(OutboxMessage.status)).all())
    tiles = {"in_queue": in_queue, "open": open_, "verdicts": verdicts.pop("verdict_total"),
             "hit_rate": verdicts.pop("hit_rate"), "hits": verdicts.pop("hits"), "visited": verdicts.pop("visited"),
             "alerts": alerts.pop("alert_total"), "outbox": outbox}
    return render(ctx, "dashboard.html", tiles=tiles, **districts_section(session, lang, area),
                  **officers_section(session, lang, area, today), **verdicts, **alerts, **runs_section(session, area),
                  **model_view(model, area, lang), several_cities=several_cities(model, area), city=area.city,
                  **area_menus(session, ctx.principal, area, Lead))
