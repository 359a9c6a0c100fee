"""The province page: the cities of the last province run side by side (alerts by colour, cases, leads
in the province's top 1 %, inspections worked and their hit rate).

A province run (``waterwatch.province``) writes its summary into the run's ``model.json`` under
``province``; publishing any city folder of it carries the summary into the store (``runs.model_info``),
so every city's console can show where it stands in the province. The page computes nothing: it shows
what the pipeline published.
"""

from __future__ import annotations

from typing import Annotated

from fastapi.responses import HTMLResponse

from serving import roles
from serving.console.charts import stacked_bars_svg
from serving.console.render import PageContext, page_for, page_router, render
from serving.deps import SessionDep
from serving.publish import current_run

router = page_router()
LEVEL_COLOURS = {"red": "#d73027", "orange": "#fc8d59", "yellow": "#fee08b"}


@router.get("/province", response_class=HTMLResponse)
def province(ctx: Annotated[PageContext, page_for(*roles.DASHBOARD)], session: SessionDep):
    run = current_run(session)
    summary = (run.model_info or {}).get("province") if run is not None else None
    cities = (summary or {}).get("cities", [])
    en = ctx.lang == "en"
    rows = [
        (c.get("name") or c["city"], [(("Red" if en else "红"), c["alerts_red"], LEVEL_COLOURS["red"]),
                                      (("Orange" if en else "橙"), c["alerts_orange"], LEVEL_COLOURS["orange"]),
                                      (("Yellow" if en else "黄"), c["alerts_yellow"], LEVEL_COLOURS["yellow"])])
        for c in cities
    ]
    chart = stacked_bars_svg(rows, "province-alerts") if rows else None
    return render(ctx, "province.html", summary=summary, cities=cities, chart=chart, en=en,
                  run_id=None if run is None else run.run_id)
