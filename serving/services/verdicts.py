"""Verdicts: what a visit found. A conclusive verdict (violation or no violation) closes the lead: one per lead
and round, enforced by the store (a unique index over conclusive verdicts, in the transaction that closes the
lead), so concurrent posts record one and the others get 409. An unreachable visit (nobody on site) is kept
as a visit record, with its audit entry, but closes nothing: the lead stays in the queue to be tried again
(training ignores unreachable visits as labels). A recorded verdict changes only through a supervisor:
``amend_verdict`` corrects it, ``reopen_lead`` sends the lead back to the field (the verdict stays,
superseded) — both with a reason that goes to the audit log.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.errors import Conflict, Forbidden, Invalid
from serving.identity import Principal
from serving.services.leads import add_event, lock_lead
from serving.settings import bureau_today
from serving.store import Verdict, utcnow

UNREACHABLE = "unreachable"  # nobody found on site: a visit record, not a verdict


def _values(v: Verdict) -> dict:
    return {"outcome": v.outcome, "violation_type": v.violation_type, "note": v.note,
            "visited_on": v.visited_on.isoformat()}


def record_verdict(session: Session, lead_id: int, body, principal: Principal) -> Verdict:
    """What the visit found (a ``schemas.VerdictCreate``). A conclusive verdict closes the lead and becomes a
    label of the next training; an unreachable visit is recorded and the lead goes back to the queue (its
    officer keeps it; an officer who went to an unassigned lead takes it), so that it can be tried again."""
    lead = lock_lead(session, lead_id, principal)
    if lead.status == "closed":
        raise Conflict(f"线索 {lead_id} 已有核查结论；更正须由督查负责人修改或重新打开 "
                       f"(lead {lead_id} already has a verdict: a supervisor may amend it or reopen the lead)")
    if principal.is_officer and lead.assigned_officer not in (None, principal.username):
        raise Forbidden(f"线索已分配给 {lead.assigned_officer} (lead is assigned to another officer)")
    conclusive, visited_on = body.outcome != UNREACHABLE, body.visited_on or bureau_today()
    if not conclusive and (same := _same_visit(session, lead, principal.username, visited_on)) is not None:
        session.commit()  # a resubmitted form (or a double tap): that visit is recorded already
        return same
    now = utcnow()
    verdict = Verdict(lead_id=lead.id, uscc=lead.uscc, officer=principal.username, outcome=body.outcome,
                      violation_type=body.violation_type, note=body.note, visited_on=visited_on,
                      queue_probability=lead.queue_probability, recorded_at=now, round=lead.round)
    session.add(verdict)
    if conclusive:
        lead.status, lead.in_queue = "closed", False
        lead.assigned_officer = lead.assigned_officer or principal.username
    else:
        lead.assigned_officer = lead.assigned_officer or (principal.username if principal.is_officer else None)
        lead.status, lead.in_queue = ("assigned" if lead.assigned_officer else "new"), True
    lead.updated_at = now
    try:
        session.flush()
    except IntegrityError:  # another post closed this round first (the store's unique index)
        session.rollback()
        raise Conflict(f"线索 {lead_id} 已有核查结论 (lead {lead_id} already has a verdict)") from None
    add_event(session, lead, "verdict", principal.username, outcome=body.outcome, verdict_id=verdict.id,
              **({} if conclusive else {"status": lead.status}))
    audit(session, principal.username, "verdict", "lead", lead.id,
          {"verdict_id": verdict.id, "uscc": lead.uscc, "outcome": body.outcome,
           "violation_type": body.violation_type, "visited_on": verdict.visited_on.isoformat(),
           **({} if conclusive else {"lead_status": lead.status})})
    session.commit()
    return verdict


def _same_visit(session: Session, lead, officer: str, visited_on: date) -> Verdict | None:
    """The unreachable visit ``officer`` already recorded on this lead, round and day, if any."""
    return session.scalar(select(Verdict).where(
        Verdict.lead_id == lead.id, Verdict.round == lead.round, Verdict.outcome == UNREACHABLE,
        Verdict.officer == officer, Verdict.visited_on == visited_on).limit(1))


def _current(session: Session, lead) -> Verdict:
    verdict = session.scalar(select(Verdict).where(Verdict.lead_id == lead.id, Verdict.round == lead.round,
                                                   Verdict.superseded.is_(False), Verdict.outcome != UNREACHABLE))
    if verdict is None or lead.status != "closed":
        raise Conflict(f"线索 {lead.id} 尚无核查结论 (lead {lead.id} has no verdict to change)")
    return verdict


def amend_verdict(session: Session, lead_id: int, body, principal: Principal) -> Verdict:
    """A supervisor corrects the lead's verdict (a ``schemas.VerdictAmend``: the corrected verdict and the
    reason); the values before and after and the reason go to the audit log."""
    lead = lock_lead(session, lead_id, principal)
    verdict = _current(session, lead)
    if body.outcome == UNREACHABLE:  # it would leave the lead closed without a verdict
        raise Invalid("无法核查不是核查结论；需再次核查请重新打开线索 "
                      "(unreachable is no verdict: reopen the lead to send it back to the field)")
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
