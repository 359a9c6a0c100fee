"""What the console's list pages share: lenient query parameters, the caller's city and district, paging of
row tuples, and the export switch (``?format=csv|xlsx`` gives the whole filtered list as a file instead of
the page, up to ``serving.console.export.MAX_ROWS`` rows: the query fetches no more)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from serving.console.export import export_format, fetch_limit
from serving.identity import Principal
from serving.services.scope import Scope, caller_scope

PAGE_SIZE = 50


def text_param(request: Request, name: str, limit: int = 64) -> str:
    """A query value, trimmed and cut to ``limit`` characters ('' when absent)."""
    return (request.query_params.get(name) or "").strip()[:limit]


def is_number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes digits ``int`` cannot read, such as '²' (a 500)."""
    return text.isascii() and text.isdigit()


def area_param(request: Request, principal: Principal) -> Scope:
    """The ``city`` and ``district`` a list page asks for, within what the caller may see (else 403)."""
    return caller_scope(principal, text_param(request, "city") or None, text_param(request, "district") or None)


def city_area(request: Request, principal: Principal) -> Scope:
    """The ``city`` a city-wide page (the dashboard) asks for, within what the caller may see (else 403)."""
    return caller_scope(principal, text_param(request, "city") or None)


def area_menus(session: Session, principal: Principal, area: Scope, model, *where) -> dict[str, list[str]]:
    """The city menu (province roles, a province's store) and the district menu (not officers: they have one)
    of a list of ``model`` rows (leads, alerts, cases; ``where``: which), the districts those of the city
    chosen."""
    cities = [] if principal.city or principal.is_officer else sorted(
        c for c in session.scalars(select(model.city).where(*where).distinct()) if c)
    in_city = Scope(area.city, every_city=area.every_city).where(model)
    districts = [] if principal.is_officer else sorted(
        d for d in session.scalars(select(model.district).where(*where, *in_city).distinct()) if d)
    return {"cities": cities, "districts": districts}


def choice_param(request: Request, name: str, allowed) -> str:
    """A query value when it is one of ``allowed``, else '' (a bad value shows the default, not an error)."""
    value = text_param(request, name)
    return value if value in allowed else ""


@dataclass
class Listing:
    page: int
    fmt: str | None

    @classmethod
    def of(cls, request: Request) -> "Listing":
        try:
            page = max(1, min(100_000, int(request.query_params.get("page") or 1)))
        except ValueError:
            page = 1
        return cls(page=page, fmt=export_format(request.query_params.get("format")))

    def rows(self, session: Session, query: Select, order_by, size: int = PAGE_SIZE) -> tuple[int, list, int]:
        """(total, the rows of this page, number of pages); an export gets every row on one page, up to what an
        export writes (and one more, so that it knows it cut the list)."""
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        q = query.order_by(*order_by)
        q = q.offset((self.page - 1) * size).limit(size) if self.fmt is None else q.limit(fetch_limit())
        return total, session.execute(q).all(), max(1, math.ceil(total / size))
