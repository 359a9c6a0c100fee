"""The officers' lead queue: lists, one lead with its facts, assignment and the start of a visit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serving import roles
from serving.api.params import City, Filter, LeadId, PageNo, PageSize
from serving.identity import Principal
from serving.deps import ModelDep, RequireRole, SessionDep
from serving.schemas import (
    CONFLICT,
    ERRORS,
    AccountPublic,
    AlertPublic,
    AssignCreate,
    EntityPublic,
    LeadDetailPublic,
    LeadPublic,
    LeadsPublic,
    LeadStatus,
    MonthlySeries,
    PermitPublic,
    Text,
    VerdictPublic,
)
from serving.services import leads as service
from serving.services.query import paginate
from serving.services.scope import caller_scope

router = APIRouter(tags=["leads"])
Reader = Annotated[Principal, RequireRole(*roles.READ)]
Worker = Annotated[Principal, RequireRole(*roles.LEAD_WORK)]
AlertKind = Annotated[Text | None, Query(min_length=1, max_length=32,
                                         description="only leads with a live alert of this kind")]


def _page(session, q, principal: Principal, page: int, page_size: int) -> LeadsPublic:
    total, rows = paginate(q, session, page, page_size, service.lead_order(principal))
    return LeadsPublic(total=total, page=page, page_size=page_size,
                       items=[LeadPublic.of(x, principal.is_officer) for x in rows])


@router.get("/leads", response_model=LeadsPublic, responses=ERRORS)
def leads(session: SessionDep, model: ModelDep, principal: Reader, district: Filter = None,
          status_: Annotated[LeadStatus | None, Query(alias="status")] = None, kind: AlertKind = None,
          city: City = None,
          page: PageNo = 1, page_size: PageSize = 50):
    """The ranked queue (officers: their city's district's, in queue order; users bound to a city: its)."""
    q = service.select_leads(status_ or service.IN_QUEUE, caller_scope(principal, city, district), kind,
                             model.live_runs)
    return _page(session, q, principal, page, page_size)


@router.get("/me/leads", response_model=LeadsPublic)
def my_leads(session: SessionDep, principal: Reader, page: PageNo = 1, page_size: PageSize = 50):
    """Leads assigned to the caller and not yet closed, of the caller's city's district (officers) or city."""
    return _page(session, service.select_assigned(principal.username, caller_scope(principal)), principal, page,
                 page_size)


def _entity(facts: service.LeadFacts) -> EntityPublic | None:
    ent = facts.entity
    if ent is None:
        return None
    return EntityPublic(
        uscc=ent.uscc, name=ent.name, district=ent.district, industry_code=ent.industry_code, address=ent.address,
        registered_on=ent.registered_on, deregistered_on=ent.deregistered_on, employees=ent.employees,
        permits=[PermitPublic.model_validate(p, from_attributes=True) for p in facts.permits],
        accounts=[AccountPublic.model_validate(a, from_attributes=True) for a in facts.accounts],
    )


@router.get("/leads/{lead_id}", response_model=LeadDetailPublic, responses=ERRORS)
def lead_detail(lead_id: LeadId, session: SessionDep, model: ModelDep, principal: Reader):
    """A lead with the entity's registration, permits, linked accounts, monthly series, alerts, verdicts."""
    lead = service.load_lead(session, lead_id, principal)
    facts = service.lead_facts(session, lead, model.live_runs)
    return LeadDetailPublic(
        **LeadPublic.of(lead, principal.is_officer).model_dump(), entity=_entity(facts),
        series=MonthlySeries.of(facts.series),
        alerts=[AlertPublic.model_validate(a, from_attributes=True) for a in facts.alerts],
        verdicts=[VerdictPublic.model_validate(v) for v in facts.verdicts],
        history=None if principal.is_officer else service.lead_history(session, lead.id))


@router.post("/leads/{lead_id}/assign", response_model=LeadPublic, responses=CONFLICT)
def assign(lead_id: LeadId, body: AssignCreate, session: SessionDep, principal: Worker):
    """Give a lead to an officer of its district (officers may take leads of their own district)."""
    return LeadPublic.of(service.assign_lead(session, lead_id, body.officer, principal), principal.is_officer)


@router.post("/leads/{lead_id}/start", response_model=LeadPublic, responses=CONFLICT)
def start(lead_id: LeadId, session: SessionDep, principal: Worker):
    """The assigned officer sets out on the lead (status in_progress)."""
    return LeadPublic.of(service.start_lead(session, lead_id, principal), principal.is_officer)
