"""Paging a query: the total and one page of rows, in one place for every list."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def paginate(query: Select, session: Session, page: int, page_size: int, order_by) -> tuple[int, list]:
    """(total rows of ``query``, the rows of page ``page`` in ``order_by`` order)."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.order_by(*order_by).offset((page - 1) * page_size).limit(page_size)).all()
    return total, list(rows)
