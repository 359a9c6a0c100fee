"""The water-rights page: the live run's candidate trades (an entity with surplus quota, one short of it, in
the same district and water source), and the sellers and buyers with their volumes; each view as CSV/XLSX."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from serving import roles
from serving.console.export import export_response
from serving.console.lists import Listing, choice_param, city_area, text_param
from serving.console.render import PageContext, page_for, page_router, render
from serving.deps import ModelDep, SessionDep
from serving.i18n import code_label, t
from serving.store import Entity, WaterRight

router = page_router()
Reader = Annotated[PageContext, page_for(*roles.SCORES)]
VIEWS = ("matches", "sellers", "buyers")


def _filtered(q, run_ids: tuple[str, ...], district: str, source: str, text: str, seller, buyer):
    q = q.where(WaterRight.run_id.in_(run_ids))
    if district:
        q = q.where(WaterRight.district == district)
    if source:
        q = q.where(WaterRight.source == source)
    if text:
        q = q.where(or_(*(c.contains(text, autoescape=True) for c in (
            seller.name, buyer.name, WaterRight.seller_uscc, WaterRight.buyer_uscc))))
    return q


@router.get("/water-rights", response_class=HTMLResponse)
def water_rights(request: Request, ctx: Reader, session: SessionDep, model: ModelDep):
    lang, listing = ctx.lang, Listing.of(request)
    area = city_area(request, ctx.principal)  # the caller's city, or the one a province role asks for
    runs = model.runs_of(area)
    view = choice_param(request, "view", VIEWS) or "matches"
    district, source, text = text_param(request, "district"), text_param(request, "source", 16), text_param(request, "q")
    seller, buyer = aliased(Entity), aliased(Entity)
    base = (select(WaterRight.id, WaterRight.seller_uscc, seller.name.label("seller_name"), WaterRight.buyer_uscc,
                   buyer.name.label("buyer_name"), WaterRight.source, WaterRight.district, WaterRight.surplus_m3,
                   WaterRight.shortfall_m3, WaterRight.volume_m3)
            .outerjoin(seller, seller.uscc == WaterRight.seller_uscc)
            .outerjoin(buyer, buyer.uscc == WaterRight.buyer_uscc))
    matches = _filtered(base, runs, district, source, text, seller, buyer)
    sub = matches.subquery()
    if view == "matches":
        query, order = matches, (WaterRight.volume_m3.desc(), WaterRight.id)
    else:
        side = "seller" if view == "sellers" else "buyer"
        need = sub.c.surplus_m3 if side == "seller" else sub.c.shortfall_m3
        query = (select(sub.c[f"{side}_uscc"].label("uscc"), func.max(sub.c[f"{side}_name"]).label("name"),
                        func.max(sub.c.district).label("district"), func.max(sub.c.source).label("source"),
                        func.max(need).label("need_m3"), func.sum(sub.c.volume_m3).label("matched_m3"),
                        func.count().label("partners"))
                 .group_by(sub.c[f"{side}_uscc"]))
        order = (func.sum(sub.c.volume_m3).desc(), sub.c[f"{side}_uscc"])
    total, rows, pages = listing.rows(session, query, order)
    items = [dict(r._mapping) for r in rows]
    if listing.fmt:
        for item in items:
            item["source"] = code_label("src", item.get("source"), lang)
        if view == "matches":
            columns = [("seller_name", t("dash.seller", lang)), ("seller_uscc", t("wr.seller_uscc", lang)),
                       ("surplus_m3", t("dash.surplus", lang)), ("buyer_name", t("dash.buyer", lang)),
                       ("buyer_uscc", t("wr.buyer_uscc", lang)), ("shortfall_m3", t("dash.shortfall", lang)),
                       ("source", t("lead.source", lang)), ("district", t("queue.district", lang)),
                       ("volume_m3", t("dash.volume", lang))]
        else:
            columns = [("name", t("queue.entity", lang)), ("uscc", t("lead.uscc", lang)),
                       ("district", t("queue.district", lang)), ("source", t("lead.source", lang)),
                       ("need_m3", t("dash.surplus" if view == "sellers" else "dash.shortfall", lang)),
                       ("matched_m3", t("wr.matched", lang)), ("partners", t(f"wr.partners_{view}", lang))]
        return export_response(listing.fmt, f"water-rights-{view}", columns, items, t("dash.water_rights", lang))
    totals = session.execute(select(func.count(), func.count(func.distinct(sub.c.seller_uscc)),
                                    func.count(func.distinct(sub.c.buyer_uscc)), func.sum(sub.c.volume_m3))).one()
    districts = sorted(d for d in session.scalars(select(WaterRight.district).where(
        WaterRight.run_id.in_(runs)).distinct()) if d)
    sources = sorted(s for s in session.scalars(select(WaterRight.source).where(
        WaterRight.run_id.in_(runs)).distinct()) if s)
    cities = [] if ctx.principal.city else sorted(info.city for info in model.cities if info.city)
    return render(ctx, "water_rights.html", items=items, total=total, page=listing.page, pages=pages, view=view,
                  views=VIEWS, city=area.city, cities=cities, district=district, districts=districts, source=source,
                  sources=sources, q=text,
                  tiles={"matches": totals[0] or 0, "sellers": totals[1] or 0, "buyers": totals[2] or 0,
                         "volume": totals[3] or 0.0})
