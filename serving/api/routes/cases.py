"""The case track: documented breaches and the desk work each needs (issue #9)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from serving import roles
from serving.api.params import City, Filter, PageNo, PageSize
from serving.deps import RequireRole, SessionDep
from serving.identity import Principal
from serving.schemas import (
    CONFLICT,
    ERRORS,
    CaseAssigneeCreate,
    CaseKind,
    CasePublic,
    CasesPublic,
    CaseStatus,
    CaseStatusCreate,
)
from serving.services import cases as service
from serving.services.query import paginate
from serving.services.scope import caller_scope

router = APIRouter(prefix="/cases", tags=["cases"])
CaseId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")]


@router.get("", response_model=CasesPublic, responses=ERRORS)
def cases(session: SessionDep, principal: Annotated[Principal, RequireRole(*roles.READ)],
          kind: Annotated[CaseKind | None, Query()] = None, district: Filter = None,
          status_: Annotated[CaseStatus | None, Query(alias="status")] = None, city: City = None,
          page: PageNo = 1, page_size: PageSize = 50):
    """Documented breaches with their evidence, the action each needs and its status (officers: their city's
    district's; users bound to a city: its; ``city``: one city of a province's store)."""
    q = service.select_cases(caller_scope(principal, city, district), kind, status_)
    total, rows = paginate(q, session, page, page_size, service.CASE_ORDER)
    return CasesPublic(total=total, page=page, page_size=page_size, items=[CasePublic.model_validate(c) for c in rows])


@router.post("/{case_id}/status", response_model=CasePublic, responses=CONFLICT)
def set_status(case_id: CaseId, body: CaseStatusCreate, session: SessionDep,
               principal: Annotated[Principal, RequireRole(*roles.CASE_WORK)]):
    """Move a case along open -> in_progress -> closed | dismissed (back to open: a supervisor); audited with its
    ``note``, which a dismissal must carry: its reason (422 without one)."""
    return CasePublic.model_validate(service.set_status(session, case_id, body.status, body.note, principal))


@router.put("/{case_id}/assignee", response_model=CasePublic, responses=CONFLICT)
def set_assignee(case_id: CaseId, body: CaseAssigneeCreate, session: SessionDep,
                 principal: Annotated[Principal, RequireRole(*roles.CASE_WORK)]):
    """Who works the case: a supervisor gives an open or in-progress case of their scope to an active user who
    works cases there (422 otherwise), or releases it (``"assignee": null``); an officer only hands back a case
    they hold, or takes one nobody holds (403 otherwise). A closed or dismissed case is 409. The status stays;
    each change is audited (``case_assign``) with the old and the new holder and the ``note``."""
    return CasePublic.model_validate(service.assign_case(session, case_id, body.assignee, body.note, principal))
