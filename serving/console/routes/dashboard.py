"""The supervisors' city dashboard: the queue by district, officers' workload, verdicts and hit rate,
alerts, the SMS outbox, water-rights candidates and the model's backtest. Each section is one function
returning the values its part of the template reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from serving import roles
from serving.console.charts import (
    LEVEL_COLOURS,
    STATUS_COLOURS,
    hit_rate_svg,
    level_rank,
    stacked_bars_svg,
)
from serving.console.render import PageContext, page_for, page_router, render
from serving.deps import ModelDep, SessionDep
from serving.i18n import metric_label, t
from serving.runtime import ModelInfo
from serving.store import LEAD_STATUSES, Alert, Entity, Lead, OutboxMessage, Verdict, WaterRight

router = page_router()
BACKTEST_ORDER = {"model": 0, "naive": 1, "random": 2}


def districts_section(session: Session, lang: str) -> dict[str, Any]:
    worked = or_(Lead.in_queue.is_(True), Lead.status != "new")
    table: dict[str, dict[str, int]] = {}
    for d, st, n in session.execute(select(Lead.district, Lead.status, func.count()).where(worked)
                                    .group_by(Lead.district, Lead.status)):
        table.setdefault(d or "—", {})[st] = n
    rows = [(d, [(t(f"status.{st}", lang), table[d].get(st, 0), STATUS_COLOURS[st]) for st in LEAD_STATUSES])
            for d in sorted(table)]
    return {"district_chart": stacked_bars_svg(rows, "districts") if rows else None,
            "district_table": [(d, table[d]) for d in sorted(table)], "statuses": LEAD_STATUSES}


def workload_section(session: Session, lang: str) -> dict[str, Any]:
    load: dict[str, dict[str, int]] = {}
    for officer, st, n in session.execute(select(Lead.assigned_officer, Lead.status, func.count())
                                          .where(Lead.assigned_officer.is_not(None))
                                          .group_by(Lead.assigned_officer, Lead.status)):
        load.setdefault(officer, {"open": 0, "closed": 0, "violations": 0, "verdicts": 0})
        load[officer]["closed" if st == "closed" else "open"] += n
    for officer, outcome, n in session.execute(select(Verdict.officer, Verdict.outcome, func.count())
                                               .group_by(Verdict.officer, Verdict.outcome)):
        row = load.setdefault(officer, {"open": 0, "closed": 0, "violations": 0, "verdicts": 0})
        row["verdicts"] += n
        row["violations"] += n if outcome == "violation" else 0
    rows = [(o, [(t("dash.open_assigned", lang), v["open"], "#4299e1"), (t("dash.closed", lang), v["closed"], "#38a169")])
            for o, v in sorted(load.items())]
    return {"workload_chart": stacked_bars_svg(rows, "workload") if rows else None, "workload": sorted(load.items())}


def verdicts_section(session: Session, lang: str) -> dict[str, Any]:
    """Verdicts and the hit rate (violations among decided visits) by month of the visit."""
    v_rows = session.execute(select(Verdict.visited_on, Verdict.outcome)).all()
    months, counts, rates, hits, visited = [], [], [], 0, 0
    if v_rows:
        import pandas as pd

        vf = pd.DataFrame(v_rows, columns=["visited_on", "outcome"])
        vf["month"] = pd.to_datetime(vf["visited_on"]).dt.strftime("%Y-%m")
        vf["hit"] = (vf["outcome"] == "violation").astype(int)
        vf["decided"] = vf["outcome"].isin(["violation", "no_violation"]).astype(int)
        g = vf.groupby("month").agg(n=("outcome", "size"), hits=("hit", "sum"), decided=("decided", "sum"))
        months, counts = g.index.tolist(), g["n"].astype(int).tolist()
        rates = [None if d == 0 else h / d for h, d in zip(g["hits"], g["decided"])]
        hits, visited = int(vf["hit"].sum()), int(vf["decided"].sum())
    chart = hit_rate_svg(months, counts, rates, {"verdicts": t("chart.verdicts", lang),
                                                 "hit_rate": t("chart.hit_rate", lang)}) if months else None
    return {"hit_chart": chart, "verdict_total": len(v_rows), "hits": hits, "visited": visited,
            "hit_rate": hits / visited if visited else None}


def alerts_section(session: Session, run_id: str | None, lang: str) -> dict[str, Any]:
    counts = session.execute(select(Alert.kind, Alert.level, func.count()).where(Alert.run_id == run_id)
                             .group_by(Alert.kind, Alert.level)).all()
    kinds: dict[str, dict[str, int]] = {}
    for kind, level, n in counts:
        kinds.setdefault(kind, {})[level or "notice"] = n
    rows = [(t(f"kind.{k}", lang), [(t(f"level.{lv}", lang), v.get(lv, 0), LEVEL_COLOURS.get(lv, "#a0aec0"))
                                    for lv in sorted(v, key=level_rank)]) for k, v in sorted(kinds.items())]
    return {"alert_chart": stacked_bars_svg(rows, "alerts") if rows else None,
            "levels_seen": sorted({lv for v in kinds.values() for lv in v}, key=level_rank),
            "alert_total": sum(n for _, _, n in counts)}


def outbox_and_rights_section(session: Session, run_id: str | None) -> dict[str, Any]:
    rights = session.scalars(select(WaterRight).where(WaterRight.run_id == run_id)
                             .order_by(WaterRight.volume_m3.desc(), WaterRight.id).limit(12)).all()
    parties = {w.seller_uscc for w in rights} | {w.buyer_uscc for w in rights}
    return {
        "outbox_counts": dict(session.execute(select(OutboxMessage.status, func.count())
                                              .group_by(OutboxMessage.status)).all()),
        "outbox_recent": session.scalars(select(OutboxMessage).order_by(
            (OutboxMessage.status != "failed"), OutboxMessage.created_at.desc(), OutboxMessage.message_id)
            .limit(10)).all(),
        "rights": rights, "names": dict(session.execute(select(Entity.uscc, Entity.name)
                                                        .where(Entity.uscc.in_(parties))).all()) if rights else {},
        "rights_total": session.scalar(select(func.count()).select_from(WaterRight)
                                       .where(WaterRight.run_id == run_id)) or 0,
    }


def backtest_rows(info: ModelInfo, lang: str) -> list[tuple[str, str, Any]]:
    """The model's backtest metrics, grouped by target, model before the naive rule and random."""
    keys = sorted((k for k, v in (info.backtest or {}).items() if isinstance(v, (int, float, str))),
                  key=lambda k: (k.split(".")[0], BACKTEST_ORDER.get((k.split(".") + ["", ""])[1], 9), k))
    return [(k, metric_label(k, lang), info.backtest[k]) for k in keys]


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(ctx: Annotated[PageContext, page_for(*roles.DASHBOARD)], session: SessionDep, model: ModelDep):
    lang = ctx.lang
    verdicts, alerts = verdicts_section(session, lang), alerts_section(session, model.run_id, lang)
    other = outbox_and_rights_section(session, model.run_id)
    in_queue = session.scalar(select(func.count()).select_from(Lead).where(Lead.in_queue.is_(True))) or 0
    tiles = {"in_queue": in_queue, "verdicts": verdicts.pop("verdict_total"), "hit_rate": verdicts.pop("hit_rate"),
             "hits": verdicts.pop("hits"), "visited": verdicts.pop("visited"), "alerts": alerts.pop("alert_total"),
             "outbox": other.pop("outbox_counts")}
    return render(ctx, "dashboard.html", info=model, tiles=tiles, backtest=backtest_rows(model, lang),
                  **districts_section(session, lang), **workload_section(session, lang), **verdicts, **alerts, **other)
