"""Verdicts: what a visit found. One per lead and round, enforced by the store (a unique constraint, in the
transaction that closes the lead), so concurrent posts record one and the others get 409. A recorded
verdict changes only through a supervisor: ``amend_verdict`` corrects it, ``reopen_lead`` sends the lead
back to the field (the verdict stays, superseded) — both with a reason that goes to the audit log.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.errors import Conflict, Forbidden
from serving.identity import Principal
from serving.services.leads import add_event, lock_lead
from serving.store import Verdict, utcnow

def _values(v: Verdict) -> dict:
    return {"outcome": v.outcome, "violation_type": v.violation_type, "note": v.note,
            "visited_on": v.visited_on.isoformat()}


def record_verdict(session: Session, lead_id: int, body, principal: Principal) -> Verdict:
    """What the visit found (a ``schemas.VerdictCreate``); closes the lead. The verdict becomes a label of
    the next training."""
    lead = lock_lead(session, lead_id, principal)
    if lead.status == "closed":
        raise Conflict(f"线索 {lead_id} 已有核查结论；更正须由督查负责人修改或重新打开 "
                       f"(lead {lead_id} already has a verdict: a supervisor may amend it or reopen the lead)")
    if principal.is_officer and lead.assigned_officer not in (None, principal.username):
        raise Forbidden(f"线索已分配给 {lead.assigned_officer} (lead is assigned to another officer)")
    now = utcnow()
    verdict = Verdict(lead_id=lead.id, uscc=lead.uscc, officer=principal.username, outcome=body.outcome,
                      violation_type=body.violation_type, note=body.note, visited_on=body.visited_on or date.today(),
                      queue_probability=lead.queue_probability, recorded_at=now, round=lead.round)
    session.add(verdict)
    lead.status, lead.in_queue, lead.updated_at = "closed", False, now
    lead.assigned_officer = lead.assigned_officer or principal.username
    try:
        session.flush()
    except IntegrityError:  # another post closed this round first (the store's unique constraint)
        session.rollback()
        raise Conflict(f"线索 {lead_id} 已有核查结论 (lead {lead_id} already has a verdict)") from None
    add_event(session, lead, "verdict", principal.username, outcome=body.outcome, verdict_id=verdict.id)
    audit(session, principal.username, "verdict", "lead", lead.id,
          {"verdict_id": verdict.id, "uscc": lead.uscc, "outcome": body.outcome,
           "violation_type": body.violation_type, "visited_on": verdict.visited_on.isoformat()})
    session.commit()
    return verdict


def _current(session: Session, lead) -> Verdict:
    verdict = session.scalar(select(Verdict).where(Verdict.lead_id == lead.id, Verdict.round == lead.round,
                                                   Verdict.superseded.is_(False)))
    if verdict is None or lead.status != "closed":
        raise Conflict(f"线索 {lead.id} 尚无核查结论 (lead {lead.id} has no verdict to change)")
    return verdict


def amend_verdict(session: Session, lead_id: int, body, principal: Principal) -> Verdict:
    """A supervisor corrects the lead's verdict (a ``schemas.VerdictAmend``: the corrected verdict and the
    reason); the values before and after and the reason go to the audit log."""
    lead = lock_lead(session, lead_id, principal)
    verdict = _current(session, lead)
    before = _values(verdict)
    verdict.outcome, verdict.violation_type, verdict.note = body.outcome, body.violation_type, body.note
    verdict.visited_on = body.visited_on or verdict.visited_on
    verdict.amended_at = lead.updated_at = utcnow()
    add_event(session, lead, "amended", principal.username, verdict_id=verdict.id, reason=body.reason)
    audit(session, principal.username, "verdict_amend", "lead", lead.id,
          {"verdict_id": verdict.id, "reason": body.reason, "before": before, "after": _values(verdict)})
    session.commit()
    return verdict


def reopen_lead(session: Session, lead_id: int, reason: str, principal: Principal):
    """A supervisor sends a closed lead back to the field: its verdict is superseded (kept, no longer a label)
    and the lead takes a new round, assigned again to its officer."""
    lead = lock_lead(session, lead_id, principal)
    verdict = _current(session, lead)
    verdict.superseded = True
    lead.round += 1
    lead.status, lead.in_queue, lead.updated_at = ("assigned" if lead.assigned_officer else "new"), True, utcnow()
    try:
        session.flush()
    except IntegrityError:  # the store allows one open lead per entity
        session.rollback()
        raise Conflict(f"该单位已有未结线索 (entity {lead.uscc} already has an open lead)") from None
    add_event(session, lead, "reopened", principal.username, verdict_id=verdict.id, reason=reason)
    audit(session, principal.username, "reopen", "lead", lead.id,
          {"verdict_id": verdict.id, "reason": reason, "verdict": _values(verdict)})
    session.commit()
    return lead
