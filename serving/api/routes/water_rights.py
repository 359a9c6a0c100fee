"""Candidate water-rights trades of the live run (surplus quota -> shortfall)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from sqlalchemy import select

from serving import roles
from serving.api.params import City, Filter, PageNo, PageSize
from serving.identity import Principal
from serving.deps import ModelDep, RequireRole, SessionDep
from serving.schemas import WaterRightPublic, WaterRightsPublic
from serving.services.query import paginate
from serving.services.scope import caller_scope
from serving.store import WaterRight

router = APIRouter(tags=["water rights"])


@router.get("/water-rights", response_model=WaterRightsPublic)
def water_rights(session: SessionDep, model: ModelDep, principal: Annotated[Principal, RequireRole(*roles.SCORES)],
                 city: City = None, district: Filter = None, page: PageNo = 1, page_size: PageSize = 50):
    """Candidate water-rights trades of the live runs (surplus quota -> shortfall): the caller's city's, or
    (a caller bound to no city) ``city``'s or every city's. Trades stay within a city's district."""
    q = select(WaterRight).where(WaterRight.run_id.in_(model.runs_of(caller_scope(principal, city))))
    if district is not None:
        q = q.where(WaterRight.district == district)
    total, rows = paginate(q, session, page, page_size, (WaterRight.volume_m3.desc(), WaterRight.id))
    return WaterRightsPublic(total=total, page=page, page_size=page_size,
                             items=[WaterRightPublic.model_validate(w) for w in rows])
