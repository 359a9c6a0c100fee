"""The case track: documented breaches (an expired permit in use, unpermitted use the records show, a quota
overrun, a tax quantity to verify, a source to protect) as cases of desk work — a notice, an SMS, a tax
quantity correction, an enforcement file, procedure guidance. Runs raise them (``cases.csv``); their status
lives in the store and survives every later run: open -> in_progress -> closed | dismissed (a supervisor
may reopen). Each change of status is audited, with its note; a dismissal must give its reason there (a
supervisor reading the audit sees why a documented breach was dropped). Whoever starts a case holds it: an
officer moves only cases nobody holds or that they hold; a supervisor moves any case of their scope.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.errors import Conflict, Forbidden, Invalid, NotFound
from serving.identity import Principal
from serving.roles import SUPERVISE
from serving.services.scope import Scope, caller_scope
from serving.store import Case, begin_write, utcnow

CASE_ORDER = (Case.district, Case.kind, Case.case_id)
# status -> the statuses it may move to; back to open only by a supervisor
MOVES = {"open": ("in_progress", "closed", "dismissed"), "in_progress": ("open", "closed", "dismissed"),
         "closed": ("open",), "dismissed": ("open",)}
NEEDS_REASON = ("dismissed",)
REASON_REQUIRED = "撤销案件须填写理由 (dismissing a case needs a reason: send it as the note)"


def select_cases(area: Scope, kind: str | None = None, status: str | None = None) -> Select:
    """Cases within ``area`` (a city, a district of it: ``serving.services.scope``)."""
    q = select(Case).where(*area.where(Case))
    for column, value in ((Case.kind, kind), (Case.status, status)):
        if value is not None:
            q = q.where(column == value)
    return q


def may_move(case: Case, principal: Principal) -> bool:
    """Whether ``principal`` may move ``case`` (within their scope): an officer not a case a colleague holds."""
    return principal.role in SUPERVISE or case.assignee in (None, principal.username)


def set_status(session: Session, case_id: str, status: str, note: str | None, principal: Principal) -> Case:
    """Move a case along its track (officers: cases of their own city's district; users bound to a city: its);
    ``note`` goes to the audit log and is required for a dismissal (``Invalid``, 422, without one)."""
    begin_write(session)
    case = session.get(Case, case_id, with_for_update=True)
    if case is None:
        raise NotFound(f"案件 {case_id} 不存在 (no case {case_id})")
    if not caller_scope(principal).holds(case):
        raise Forbidden(f"案件 {case_id} 不在本辖区 (case {case_id} is in another city or district)")
    if not may_move(case, principal):
        raise Forbidden(f"案件 {case_id} 由 {case.assignee} 办理 (case {case_id} is handled by {case.assignee})")
    if status == case.status:
        return case
    if status not in MOVES[case.status]:
        raise Conflict(f"案件状态不能从 {case.status} 改为 {status} (a case cannot go from {case.status} to {status})")
    if status == "open" and principal.role not in SUPERVISE:
        raise Forbidden("只有督查负责人可以重新打开案件 (only a supervisor reopens a case)")
    note = (note or "").strip() or None
    if status in NEEDS_REASON and note is None:
        raise Invalid(REASON_REQUIRED)
    before, held_by = case.status, case.assignee
    case.status, case.updated_at = status, utcnow()
    if status == "in_progress":
        case.assignee = principal.username
    audit(session, principal.username, "case_status", "case", case_id,
          {"from": before, "to": status, "note": note, "kind": case.kind, "uscc": case.uscc, "assignee": held_by,
           **({"assignee_to": case.assignee} if case.assignee != held_by else {})})
    session.commit()
    return case
