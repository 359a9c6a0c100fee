"""Verdicts: what a visit found (one conclusive verdict per lead, enforced by the store; an unreachable visit is
recorded and closes nothing); corrections only by a supervisor, who amends the verdict or reopens the lead, with
a reason that goes to the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from serving import roles
from serving.api.params import LeadId
from serving.deps import RequireRole, SessionDep
from serving.identity import Principal
from serving.schemas import CONFLICT, LeadPublic, ReopenCreate, VerdictAmend, VerdictCreate, VerdictPublic
from serving.services import verdicts as service

router = APIRouter(prefix="/leads/{lead_id}", tags=["leads"])
Supervisor = Annotated[Principal, RequireRole(*roles.SUPERVISE)]


@router.post("/verdicts", response_model=VerdictPublic, status_code=201, responses=CONFLICT)
def post_verdict(lead_id: LeadId, body: VerdictCreate, session: SessionDep,
                 principal: Annotated[Principal, RequireRole(*roles.LEAD_WORK)]):
    """What the visit found. A violation or no violation closes the lead (409 when it already has a verdict)
    and becomes a label of the next training; ``unreachable`` (nobody on site) is recorded and the lead stays
    in the queue, with its officer, to be tried again (the same officer's second one on the same day: the first
    comes back)."""
    return VerdictPublic.model_validate(service.record_verdict(session, lead_id, body, principal))


@router.post("/verdict/amend", response_model=VerdictPublic, responses=CONFLICT)
def amend(lead_id: LeadId, body: VerdictAmend, session: SessionDep, principal: Supervisor):
    """A supervisor corrects the lead's verdict; the values before and after and the reason are audited. To
    ``unreachable`` it cannot (422): a lead to be tried again is reopened."""
    return VerdictPublic.model_validate(service.amend_verdict(session, lead_id, body, principal))


@router.post("/reopen", response_model=LeadPublic, responses=CONFLICT)
def reopen(lead_id: LeadId, body: ReopenCreate, session: SessionDep, principal: Supervisor):
    """A supervisor sends a closed lead back to the field; its verdict is kept but superseded (no longer a
    label), and the lead's next verdict is recorded in a new round."""
    return LeadPublic.of(service.reopen_lead(session, lead_id, body.reason, principal), officer_view=False)
