"""The case track: documented breaches (an expired permit in use, unpermitted use the records show, a quota
overrun, a tax quantity to verify, a source to protect) as cases of desk work — a notice, an SMS, a tax
quantity correction, an enforcement file, procedure guidance. Runs raise them (``cases.csv``); their status
lives in the store and survives every later run: open -> in_progress -> closed | dismissed (a supervisor
may reopen). Each change of status is audited, with its note; a dismissal must give its reason there (a
supervisor reading the audit sees why a documented breach was dropped). Whoever starts a case nobody holds
holds it: an officer moves only cases nobody holds or that they hold; a supervisor moves any case of their scope.
A supervisor gives a case to, or takes it from, whoever may work it (``assign_case``); an officer hands back a
case they hold. Every write locks the case row first, so a move and an assignment of one case serialise.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.errors import Conflict, Forbidden, Invalid, NotFound
from serving.identity import Principal
from serving.roles import CASE_WORK, SUPERVISE
from serving.services.scope import Scope, caller_scope
from serving.store import Case, User, begin_write, utcnow

CASE_ORDER = (Case.district, Case.kind, Case.case_id)
# status -> the statuses it may move to; back to open only by a supervisor
MOVES = {"open": ("in_progress", "closed", "dismissed"), "in_progress": ("open", "closed", "dismissed"),
         "closed": ("open",), "dismissed": ("open",)}
NEEDS_REASON = ("dismissed",)
FINISHED = ("closed", "dismissed")  # no one is given these: a supervisor reopens first
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


def lock_case(session: Session, case_id: str, principal: Principal) -> Case:
    """The case, locked for this transaction's write (concurrent writers wait, then see its new state), if it
    lies in ``principal``'s scope."""
    begin_write(session)
    case = session.get(Case, case_id, with_for_update=True)
    if case is None:
        raise NotFound(f"案件 {case_id} 不存在 (no case {case_id})")
    if not caller_scope(principal).holds(case):
        raise Forbidden(f"案件 {case_id} 不在本辖区 (case {case_id} is in another city or district)")
    return case


def set_status(session: Session, case_id: str, status: str, note: str | None, principal: Principal) -> Case:
    """Move a case along its track (officers: cases of their own city's district; users bound to a city: its);
    ``note`` goes to the audit log and is required for a dismissal (``Invalid``, 422, without one). Starting a
    case nobody holds makes the caller its holder; starting one somebody holds keeps them (a supervisor who
    starts a case they gave an officer does not take it back)."""
    case = lock_case(session, case_id, principal)
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
    if status == "in_progress" and case.assignee is None:
        case.assignee = principal.username
    audit(session, principal.username, "case_status", "case", case_id,
          {"from": before, "to": status, "note": note, "kind": case.kind, "uscc": case.uscc, "assignee": held_by,
           **({"assignee_to": case.assignee} if case.assignee != held_by else {})})
    session.commit()
    return case


def works_case(user: User, case: Case) -> bool:
    """Whether ``user``'s own account may work ``case``: active, a role that works cases, and a scope (their
    city, an officer's district of it) that holds the case. An officer with no district works nothing."""
    if not user.active or user.role not in CASE_WORK:
        return False
    if user.role == "officer" and not user.district:
        return False
    return caller_scope(Principal(user.username, user.role, user.district, city=user.city)).holds(case)


def case_officers(session: Session, cases: list[Case]) -> dict[tuple[str | None, str | None], list[str]]:
    """The active officers of each (city, district) of ``cases``: whom a supervisor may give those cases to."""
    places = {(c.city, c.district) for c in cases if c.district}
    found: dict[tuple[str | None, str | None], list[str]] = {place: [] for place in places}
    if not places:
        return found
    rows = session.execute(select(User.city, User.district, User.username).where(
        User.role == "officer", User.active.is_(True), User.district.in_(sorted({d for _, d in places})))
        .order_by(User.username))
    for city, district, username in rows:
        if (city, district) in found:
            found[(city, district)].append(username)
    return found


def assign_case(session: Session, case_id: str, assignee: str | None, note: str | None,
                principal: Principal) -> Case:
    """Give a case to ``assignee`` (a username), or release it (None: nobody holds it). A supervisor gives any
    open or in-progress case of their scope to an active user who works cases and whose own scope holds it (a
    caller bound to a city learns nothing of another city's users: as if there were none); an officer only
    hands back a case they hold, or takes one nobody holds. The status stays as it is. Giving a case to its
    holder changes nothing and logs nothing; every change is one audit row naming the old and the new holder."""
    case = lock_case(session, case_id, principal)
    held_by = case.assignee
    if principal.role not in SUPERVISE:
        if assignee not in (None, principal.username):
            raise Forbidden("执法人员不能把案件交给他人，改派须由督查负责人操作 "
                            "(officers do not give cases to others: a supervisor assigns them)")
        if held_by not in (None, principal.username):
            raise Forbidden(f"案件 {case_id} 由 {held_by} 办理 (case {case_id} is handled by {held_by})")
    if case.status in FINISHED:
        raise Conflict(f"案件 {case_id} 已{'办结' if case.status == 'closed' else '撤销'}，不能分派 "
                       f"(case {case_id} is {case.status}: reopen it first)")
    if assignee is not None:
        user = session.scalar(select(User).where(User.username == assignee))
        if user is not None and principal.city is not None and user.city != principal.city:
            user = None  # another city's user, to a caller bound to a city: as if there were none
        if user is None or not user.active or user.role not in CASE_WORK:
            raise Invalid(f"{assignee} 不是可以办理案件的有效账号 (no active user {assignee!r} who works cases)")
        if not works_case(user, case):
            raise Invalid(f"{assignee} 不负责 {case.city or ''}{case.district or ''} "
                          f"(user works in {user.city or ''}{user.district or ''}, not in the case's district)")
        assignee = user.username
    if assignee == held_by:
        session.commit()  # already theirs (or already nobody's): no change
        return case
    case.assignee, case.updated_at = assignee, utcnow()
    audit(session, principal.username, "case_assign", "case", case_id,
          {"assignee": held_by, "assignee_to": assignee, "status": case.status, "note": (note or "").strip() or None,
           "kind": case.kind, "uscc": case.uscc})
    session.commit()
    return case
