"""Verdicts: what a visit found. Each becomes a label of the next training."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from serving import roles
from serving.api.params import LeadId
from serving.auth import Principal
from serving.deps import RequireRole, SessionDep
from serving.schemas import CONFLICT, VerdictCreate, VerdictPublic
from serving.services import leads as service

router = APIRouter(tags=["leads"])


@router.post("/leads/{lead_id}/verdicts", response_model=VerdictPublic, status_code=201, responses=CONFLICT)
def post_verdict(lead_id: LeadId, body: VerdictCreate, session: SessionDep,
                 principal: Annotated[Principal, RequireRole(*roles.LEAD_WORK)]):
    """What the visit found; closes the lead. The verdict becomes a label of the next training."""
    return VerdictPublic.model_validate(service.record_verdict(session, lead_id, body, principal))
