"""The province page: the cities of the last province run side by side (alerts by colour, cases, leads
in the province's top 1 %, inspections worked and their hit rate).

A province run (``waterwatch.province``) writes its summary into the run's ``model.json`` under
``province``; publishing any city folder of it carries the summary into the store (``runs.model_info``),
so every city's console can show where it stands in the province. The page computes nothing: it shows
what the pipeline published.

Province roles (users bound to no city) see every city side by side. A user bound to one city sees only that
city's row, from its own city's latest run: as everywhere else in the console (``serving.services.scope``), a
city's users see no other city's figures, and the other cities' alerts, cases and inspections are theirs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi.responses import HTMLResponse
from sqlalchemy import select

from serving import roles
from serving.console.charts import stacked_bars_svg
from serving.console.render import PageContext, page_for, page_router, render
from serving.deps import SessionDep
from serving.publish import current_run
from serving.store import Run

router = page_router()
LEVEL_COLOURS = {"red": "#d73027", "orange": "#fc8d59", "yellow": "#fee08b"}


@router.get("/province", response_class=HTMLResponse)
def province(ctx: Annotated[PageContext, page_for(*roles.DASHBOARD)], session: SessionDep):
    mine = ctx.principal.city
    run = current_run(session) if mine is None else session.scalars(
        select(Run).where(Run.city == mine).order_by(Run.updated_at.desc(), Run.published_at.desc()).limit(1)).first()
    summary = (run.model_info or {}).get("province") if run is not None else None
    cities = (summary or {}).get("cities", [])
    if mine is not None:  # a city's user: that city's row only
        cities = [c for c in cities if mine in (c.get("name"), c.get("city"))]
    en = ctx.lang == "en"
    rows = [
        (c.get("name") or c["city"], [(("Red" if en else "红"), c["alerts_red"], LEVEL_COLOURS["red"]),
                                      (("Orange" if en else "橙"), c["alerts_orange"], LEVEL_COLOURS["orange"]),
                                      (("Yellow" if en else "黄"), c["alerts_yellow"], LEVEL_COLOURS["yellow"])])
        for c in cities
    ]
    chart = stacked_bars_svg(rows, "province-alerts") if rows else None
    return render(ctx, "province.html", summary=summary, cities=cities, chart=chart, en=en, own_city=mine,
                  run_id=None if run is None else run.run_id)
