"""Logging in and out, with throttling: failed logins lock the username (and, far later, the client
address) for a time that doubles with each further failure. An unknown username costs the same work as a
known one with a wrong password, and is locked the same way, so neither the answer nor its timing tells
whether an account exists. Logins, failures, lockouts and logouts go to the audit log.

Each attempt is counted before its password is checked, in one upsert per key, so that parallel attempts
each get their own number: the one that reaches the limit locks the key in the same transaction, and the
others are refused without a password check (checking first and counting after let 30 parallel guesses
check 20 to 30 passwords, and the insert-if-missing now and then failed with a duplicate key: a 500). A
success clears its username's count and takes its attempt back from the address's. A count starts afresh
once its key has had no failure for a window (a day for a username, 15 minutes for an address) after its
last failure or lockout, so an office's occasional typos behind one address never add up to a lock, while
a username's guesses stay few."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import and_, case, delete, literal, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.identity import Principal
from serving.security import AuthError, issue_token, verify_password
from serving.errors import TooManyAttempts
from serving.store import LoginThrottle, RevokedToken, User, utcnow

WRONG = "用户名或密码错误 (wrong username or password)"
# a revoked token's row goes this long after the token expired: a server whose clock runs behind the one that
# purges still refuses the token as expired, never lets it in as not revoked
PURGE_AFTER = timedelta(minutes=10)
_THROTTLE = LoginThrottle.__table__
_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}  # the two stores make_engine serves


@dataclass(frozen=True)
class Login:
    principal: Principal
    token: str
    expires_in: int  # seconds


@dataclass(frozen=True)
class _Attempt:
    """This attempt's number on one key, and the lockout it set by reaching the key's limit (None: none)."""

    key: str
    count: int
    locked_until: datetime | None = None
    seconds: int = 0


def _throttle_keys(username: str, address: str | None) -> list[str]:
    return [f"user:{username}"[:160]] + ([f"addr:{address}"[:160]] if address else [])


def _rule(key: str, auth) -> tuple[int, int]:
    """The failures that lock ``key`` and the quiet seconds after which its count starts afresh."""
    if key.startswith("user:"):
        return auth.login_max_failures, auth.login_failure_window_seconds
    return auth.login_address_max_failures, auth.login_address_failure_window_seconds


def _count(session: Session, key: str, auth, now: datetime) -> _Attempt | None:
    """Count one attempt on ``key`` (None, and nothing counted, while it is locked). ``updated_at`` is the
    last failure or the start of the count (a success does not keep old failures alive). The upsert's row
    lock (PostgreSQL) or write lock (SQLite) lasts to the caller's commit, so setting the lockout here is
    atomic with the count."""
    t, (limit, window) = _THROTTLE, _rule(key, auth)
    quiet_since = now - timedelta(seconds=window)
    stale = and_(t.c.updated_at < quiet_since, or_(t.c.locked_until.is_(None), t.c.locked_until < quiet_since))
    stmt = _UPSERT[session.get_bind().dialect.name](t).values(key=key, failures=1, updated_at=now)
    restart = {"failures": case((stale, 1), else_=t.c.failures + 1),
               "updated_at": case((stale, literal(now, t.c.updated_at.type)), else_=t.c.updated_at)}
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.key], set_=restart,
                                      where=or_(t.c.locked_until.is_(None), t.c.locked_until <= now))
    count = session.scalar(stmt.returning(t.c.failures))
    if count is None:
        return None
    if count < limit:
        return _Attempt(key, count)
    seconds = min(auth.lockout_seconds * 2 ** min(count - limit, 30), auth.lockout_max_seconds)
    until = now + timedelta(seconds=seconds)
    session.execute(update(t).where(t.c.key == key).values(locked_until=until))
    return _Attempt(key, count, until, seconds)


def _too_many(wait: int) -> NoReturn:
    wait = max(1, wait)
    raise TooManyAttempts(f"登录失败次数过多，请{wait}秒后再试 (too many failed logins: try again in {wait} s)",
                          retry_after=wait)


def _refuse_if_locked(session: Session, keys: list[str]) -> None:
    """TooManyAttempts (429) while a key is locked: a read, so that refused attempts write nothing."""
    now = utcnow()
    for until in session.scalars(select(_THROTTLE.c.locked_until).where(_THROTTLE.c.key.in_(keys))):
        if until is not None and until > now:
            _too_many(int((until - now).total_seconds() + 0.999))


def _admit(session: Session, keys: list[str], auth) -> list[_Attempt]:
    """Count this attempt on every key, all or none; TooManyAttempts (429) if any key is locked."""
    _refuse_if_locked(session, keys)
    now = utcnow()
    attempts = []
    for key in keys:  # always the user row first, then the address: one order, no deadlock
        attempt = _count(session, key, auth, now)
        if attempt is None:  # locked by a parallel attempt since the read above
            session.rollback()
            _refuse_if_locked(session, keys)
            _too_many(1)  # and already unlocked again by a success
        attempts.append(attempt)
    session.commit()
    return attempts


def _failed(session: Session, attempts: list[_Attempt], username: str, address: str | None) -> None:
    """Date the failure on each key (its window runs from the last failure) and the lockout it set (which
    runs from the failure, not from the start of the attempt); audit both."""
    t, now = _THROTTLE, utcnow()
    for a in attempts:  # a row at a time, in the order ``_admit`` locks them
        session.execute(update(t).where(t.c.key == a.key).values(updated_at=now))
        if a.locked_until is not None:
            session.execute(update(t).where(t.c.key == a.key, t.c.locked_until == a.locked_until)
                            .values(locked_until=now + timedelta(seconds=a.seconds)))
            audit(session, username, "login_locked", "login", a.key, {"failures": a.count, "seconds": a.seconds})
    audit(session, username, "login_failed", "login", username, {"address": address})


def _succeeded(session: Session, attempts: list[_Attempt]) -> None:
    """Clear the username's failures; take this attempt back from the address's count (and the lockout it
    set, if it reached the limit), leaving the others' failures counted."""
    t = _THROTTLE
    session.execute(delete(t).where(t.c.key == attempts[0].key))
    for a in attempts[1:]:
        values = {"failures": case((t.c.failures > 0, t.c.failures - 1), else_=0)}
        if a.locked_until is not None:
            values["locked_until"] = case((t.c.locked_until == a.locked_until, null()), else_=t.c.locked_until)
        session.execute(update(t).where(t.c.key == a.key).values(**values))


def login(session: Session, username: str, password: str, address: str | None, auth, secret_key: str) -> Login:
    """A token for a user whose password matches; AuthError (401) otherwise, TooManyAttempts (429) while locked.
    ``auth`` is the ``AuthSettings``."""
    attempts = _admit(session, _throttle_keys(username, address), auth)
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(password, user.password_hash if user is not None else None, auth.password_hash_cost)
    if not ok or user is None or not user.active:
        _failed(session, attempts, username, address)
        session.commit()
        raise AuthError(WRONG)
    _succeeded(session, attempts)
    purge_revoked(session)
    token, claims = issue_token(user.username, user.id, user.token_version, secret_key, auth.token_minutes)
    audit(session, user.username, "login", "login", user.username, {"address": address})
    session.commit()
    principal = Principal(user.username, user.role, user.district, via="password", city=user.city, user_id=user.id,
                          jti=claims.jti, expires_at=claims.expires_at)
    return Login(principal, token, auth.token_minutes * 60)


def logout(session: Session, principal: Principal) -> None:
    """Revoke the token the caller used (at once: the service reads revoked tokens on every request). Logging out
    twice, or twice at once, revokes it once (one row, one audit entry) and never fails."""
    if principal.jti is None or principal.user_id is None:
        return
    t = RevokedToken.__table__
    stmt = _UPSERT[session.get_bind().dialect.name](t).values(
        jti=principal.jti, user_id=principal.user_id, expires_at=principal.expires_at or utcnow() + timedelta(days=1),
        revoked_at=utcnow())
    # idempotent: a concurrent logout with the same token (its insert waits for this one's) inserts nothing
    if session.scalar(stmt.on_conflict_do_nothing(index_elements=[t.c.jti]).returning(t.c.jti)) is not None:
        audit(session, principal.username, "logout", "login", principal.username)
    purge_revoked(session)
    session.commit()


def purge_revoked(session: Session) -> int:
    """Delete the revoked tokens that have expired anyway (a token is refused once past its ``exp``: its row
    guards nothing), ``PURGE_AFTER`` late; run on each login and logout, so that the table holds about the
    tokens revoked within one token lifetime. Returns how many rows went. Part of the caller's transaction."""
    gone = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow() - PURGE_AFTER))
    return gone.rowcount or 0
