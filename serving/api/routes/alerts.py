"""Alerts of the live runs' deterministic supervision checks (each city's latest run in a province's store)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from sqlalchemy import select

from serving import roles
from serving.api.params import City, Filter, PageNo, PageSize
from serving.identity import Principal
from serving.deps import ModelDep, RequireRole, SessionDep
from serving.schemas import ERRORS, AlertPublic, AlertsPublic
from serving.services.scope import caller_scope
from serving.services.query import paginate
from serving.store import Alert

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=AlertsPublic, responses=ERRORS)
def alerts(session: SessionDep, model: ModelDep, principal: Annotated[Principal, RequireRole(*roles.READ)],
           kind: Filter = None, level: Filter = None, district: Filter = None, city: City = None,
           page: PageNo = 1, page_size: PageSize = 50):
    """Alerts of each city's live run (officers: their city's district's; users bound to a city: its)."""
    area = caller_scope(principal, city, district)
    q = select(Alert).where(Alert.run_id.in_(model.live_runs), *area.where(Alert))
    for col, value in ((Alert.kind, kind), (Alert.level, level)):
        if value is not None:
            q = q.where(col == value)
    total, rows = paginate(q, session, page, page_size, (Alert.kind, Alert.district, Alert.alert_id))
    return AlertsPublic(total=total, page=page, page_size=page_size,
                        items=[AlertPublic.model_validate(a, from_attributes=True) for a in rows])
