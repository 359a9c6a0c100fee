"""The officers' queue: which leads a caller sees, their facts and history, and assigning and starting them
(verdicts: ``serving.services.verdicts``).

Officers see and change only their own city's district's leads (``serving.services.scope``), and never
another officer's lead. Every write locks the lead first (concurrent writers wait and then see its new
state), appends to the lead's history and is audited in the same transaction as the change it records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.identity import Principal
from serving.errors import Conflict, Forbidden, Invalid, NotFound
from serving.services.scope import Scope, caller_scope
from serving.store import (
    LEAD_STATUSES,
    Account,
    Alert,
    Assignment,
    Entity,
    Lead,
    LeadEvent,
    Permit,
    Series,
    User,
    Verdict,
    begin_write,
    utcnow,
)

IN_QUEUE, OPEN, WORKED = "queue", "open", "worked"  # scopes besides a single status
EVERYWHERE = Scope()


def load_lead(session: Session, lead_id: int, principal: Principal, for_update: bool = False) -> Lead:
    lead = session.get(Lead, lead_id, with_for_update=for_update)
    if lead is None:
        raise NotFound(f"线索 {lead_id} 不存在 (no lead {lead_id})")
    if not caller_scope(principal).holds(lead):
        raise Forbidden(f"线索 {lead_id} 不在本辖区 (lead {lead_id} is in another city or district)")
    return lead


def select_leads(scope: str, area: Scope = EVERYWHERE, kind: str | None = None, live_runs: tuple[str, ...] = (),
                 text: str | None = None) -> Select:
    """Leads of a ``scope``: one of ``LEAD_STATUSES``, ``IN_QUEUE`` (the live queue), ``OPEN`` (queued, not
    closed) or ``WORKED`` (the queue plus every lead already worked), within ``area`` (a city, a district of
    it); ``kind``: with an alert of that kind in the live runs; ``text``: in the name, code or reasons."""
    q = select(Lead)
    if scope in LEAD_STATUSES:
        q = q.where(Lead.status == scope)
        if scope == "new":
            q = q.where(Lead.in_queue.is_(True))
    elif scope == OPEN:
        q = q.where(Lead.in_queue.is_(True), Lead.status != "closed")
    elif scope == WORKED:
        q = q.where(or_(Lead.in_queue.is_(True), Lead.status != "new"))
    else:
        q = q.where(Lead.in_queue.is_(True))
    q = q.where(*area.where(Lead))
    if kind is not None:
        q = q.where(Lead.uscc.in_(select(Alert.uscc).where(Alert.kind == kind, Alert.run_id.in_(live_runs))))
    if text:
        q = q.where(or_(Lead.reasons.contains(text, autoescape=True), Lead.name.contains(text, autoescape=True),
                        Lead.uscc.contains(text, autoescape=True)))
    return q


def select_assigned(officer: str, area: Scope = EVERYWHERE) -> Select:
    """Leads assigned to ``officer`` and not yet closed, within ``area`` (the caller's scope: an officer moved to
    another district or city keeps the old one's leads until reassigned, but no longer sees them)."""
    return select(Lead).where(Lead.assigned_officer == officer, Lead.status != "closed", *area.where(Lead))


def lead_order(principal: Principal, closed_last: bool = False) -> tuple:
    """Officers work in queue order (which hides the exploratory draws); others read the city-wide rank."""
    first = (Lead.status == "closed",) if closed_last else ()
    if principal.is_officer:
        return (*first, Lead.queue_position.is_(None), Lead.queue_position, Lead.id)
    return (*first, Lead.rank.is_(None), Lead.rank, Lead.id)


@dataclass
class LeadFacts:
    """What a lead page shows beside the lead: the entity's registration, permits, linked accounts,
    monthly series, live alerts and the verdicts recorded on it (oldest first)."""

    entity: Entity | None
    permits: list[Permit] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)


def lead_facts(session: Session, lead: Lead, live_runs: tuple[str, ...]) -> LeadFacts:
    row = session.get(Series, lead.uscc)
    return LeadFacts(
        entity=session.get(Entity, lead.uscc),
        permits=list(session.scalars(select(Permit).where(Permit.uscc == lead.uscc).order_by(Permit.permit_id))),
        accounts=list(session.scalars(select(Account).where(Account.uscc == lead.uscc)
                                      .order_by(Account.source, Account.account_id))),
        series=(row.series if row is not None else None) or {},
        alerts=list(session.scalars(select(Alert).where(Alert.uscc == lead.uscc, Alert.run_id.in_(live_runs))
                                    .order_by(Alert.kind, Alert.alert_id))),
        verdicts=list(session.scalars(select(Verdict).where(Verdict.lead_id == lead.id).order_by(Verdict.id))),
    )


def district_officers(session: Session, lead: Lead) -> list[str]:
    """Active officers of a lead's district of its city, whom a supervisor may assign the lead to."""
    city = User.city.is_(None) if lead.city is None else User.city == lead.city
    return list(session.scalars(select(User.username).where(User.role == "officer", User.district == lead.district,
                                                            city, User.active.is_(True)).order_by(User.username)))


def add_event(session: Session, lead: Lead, event: str, actor: str | None = None, run_id: str | None = None,
              **detail) -> None:
    """Append to the lead's history (never rewritten)."""
    session.add(LeadEvent(lead_id=lead.id, at=lead.updated_at or utcnow(), event=event, actor=actor, run_id=run_id,
                          detail=detail))


def lead_history(session: Session, lead_id: int) -> list[dict[str, Any]]:
    """The lead's events, oldest first, as {at, event, by, run_id, ...detail}."""
    out = []
    for e in session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)):
        row = {"at": e.at.isoformat(timespec="seconds"), "event": e.event}
        row.update({k: v for k, v in (("by", e.actor), ("run_id", e.run_id)) if v is not None})
        out.append({**row, **(e.detail or {})})
    return out


def lock_lead(session: Session, lead_id: int, principal: Principal) -> Lead:
    """The lead, locked for this transaction's write: concurrent writers on it wait and then see its new state."""
    begin_write(session)
    return load_lead(session, lead_id, principal, for_update=True)


def assign_lead(session: Session, lead_id: int, officer_name: str, principal: Principal) -> Lead:
    """Give a lead to an officer of its district. Officers may take an unassigned lead of their district for
    themselves; only a supervisor (or admin) gives a lead already assigned to another officer. Giving a lead
    to the officer who holds it changes nothing (no event, assignment or audit entry; in progress stays so);
    the change is a conditional UPDATE of the state read under the lock, so concurrent assigns write once."""
    lead = lock_lead(session, lead_id, principal)
    if principal.is_officer and officer_name != principal.username:
        raise Forbidden("执法人员只能把线索分配给自己 (officers may assign only themselves)")
    if principal.is_officer and lead.assigned_officer not in (None, principal.username):
        raise Forbidden(f"线索已分配给 {lead.assigned_officer}，改派须由督查负责人操作 "
                        f"(lead is assigned to another officer: a supervisor reassigns it)")
    officer = session.scalar(select(User).where(User.username == officer_name))
    if officer is not None and principal.city is not None and officer.city != principal.city:
        officer = None  # a caller bound to a city learns nothing of another city's users: as if there were none
    if officer is None or officer.role != "officer" or not officer.active:
        raise Invalid(f"{officer_name} 不是有效的执法人员账号 (no active officer {officer_name!r})")
    if (officer.city, officer.district) != (lead.city, lead.district):
        raise Invalid(f"{officer_name} 不负责 {lead.city or ''}{lead.district} "
                      f"(officer works in {officer.city or ''}{officer.district})")
    if lead.status == "closed":
        raise Conflict(f"线索 {lead_id} 已结案 (lead is closed)")
    previous, status = lead.assigned_officer, lead.status
    if previous == officer.username and status in ("assigned", "in_progress"):
        session.commit()  # already theirs: no change (an officer's visit in progress stays in progress)
        return lead
    changed = session.execute(  # only from the state read above: a writer that got past the lock changes nothing
        update(Lead).where(Lead.id == lead.id, Lead.status == status,
                           Lead.assigned_officer.is_(None) if previous is None else Lead.assigned_officer == previous)
        .values(assigned_officer=officer.username, status="assigned", in_queue=True, updated_at=utcnow())).rowcount
    if changed != 1:
        session.rollback()
        raise Conflict(f"线索 {lead_id} 刚被他人改动，请刷新后重试 (the lead changed meanwhile: reload and retry)")
    add_event(session, lead, "assigned", principal.username, officer=officer.username)
    session.add(Assignment(lead_id=lead.id, officer=officer.username, assigned_by=principal.username,
                           assigned_at=lead.updated_at))
    audit(session, principal.username, "assign", "lead", lead.id,
          {"officer": officer.username, "previous": previous, "uscc": lead.uscc})
    session.commit()
    return lead


def start_lead(session: Session, lead_id: int, principal: Principal) -> Lead:
    """The assigned officer sets out on the lead (status in_progress)."""
    lead = lock_lead(session, lead_id, principal)
    if lead.status not in ("assigned", "in_progress"):
        raise Conflict(f"线索 {lead_id} 状态为 {lead.status}，需先分配 (only an assigned lead can start)")
    if principal.is_officer and lead.assigned_officer != principal.username:
        raise Forbidden(f"线索已分配给 {lead.assigned_officer} (lead is assigned to another officer)")
    if lead.status == "assigned":
        lead.status, lead.updated_at = "in_progress", utcnow()
        add_event(session, lead, "started", principal.username)
        audit(session, principal.username, "start", "lead", lead.id, {"uscc": lead.uscc})
        session.commit()
    return lead
