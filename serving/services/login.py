"""Logging in and out, with throttling: failed logins lock the username (and, far later, the client
address) for a time that doubles with each further failure. An unknown username costs the same work as a
known one with a wrong password, and is locked the same way, so neither the answer nor its timing tells
whether an account exists. Logins, failures, lockouts and logouts go to the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.identity import Principal
from serving.security import AuthError, issue_token, verify_password
from serving.errors import TooManyAttempts
from serving.store import LoginThrottle, RevokedToken, User, utcnow

WRONG = "用户名或密码错误 (wrong username or password)"


@dataclass(frozen=True)
class Login:
    principal: Principal
    token: str
    expires_in: int  # seconds


def _throttle_keys(username: str, address: str | None) -> list[str]:
    return [f"user:{username}"[:160]] + ([f"addr:{address}"[:160]] if address else [])


def _check_lock(session: Session, keys: list[str]) -> None:
    now = utcnow()
    for row in session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))):
        if row.locked_until is not None and row.locked_until > now:
            wait = max(1, int((row.locked_until - now).total_seconds() + 0.999))
            raise TooManyAttempts(f"登录失败次数过多，请{wait}秒后再试 (too many failed logins: try again in "
                                  f"{wait} s)", retry_after=wait)


def _record_failure(session: Session, keys: list[str], auth, username: str, address: str | None) -> None:
    now = utcnow()
    for key in keys:
        row = session.get(LoginThrottle, key) or LoginThrottle(key=key, failures=0)
        session.add(row)
        row.failures, row.updated_at = row.failures + 1, now
        limit = auth.login_max_failures if key.startswith("user:") else auth.login_address_max_failures
        if row.failures >= limit:
            seconds = min(auth.lockout_seconds * 2 ** (row.failures - limit), auth.lockout_max_seconds)
            row.locked_until = now + timedelta(seconds=seconds)
            audit(session, username, "login_locked", "login", key, {"failures": row.failures, "seconds": seconds})
    audit(session, username, "login_failed", "login", username, {"address": address})


def login(session: Session, username: str, password: str, address: str | None, auth, secret_key: str) -> Login:
    """A token for a user whose password matches; AuthError (401) otherwise, TooManyAttempts (429) while locked.
    ``auth`` is the ``AuthSettings``."""
    keys = _throttle_keys(username, address)
    _check_lock(session, keys)
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(password, user.password_hash if user is not None else None)
    if not ok or user is None or not user.active:
        _record_failure(session, keys, auth, username, address)
        session.commit()
        raise AuthError(WRONG)
    for row in session.scalars(select(LoginThrottle).where(LoginThrottle.key == keys[0])):
        session.delete(row)
    token, claims = issue_token(user.username, user.id, user.token_version, secret_key, auth.token_minutes)
    audit(session, user.username, "login", "login", user.username, {"address": address})
    session.commit()
    principal = Principal(user.username, user.role, user.district, via="password", city=user.city, user_id=user.id,
                          jti=claims.jti, expires_at=claims.expires_at)
    return Login(principal, token, auth.token_minutes * 60)


def logout(session: Session, principal: Principal) -> None:
    """Revoke the token the caller used (at once: the service reads revoked tokens on every request)."""
    if principal.jti is None or principal.user_id is None:
        return
    if session.get(RevokedToken, principal.jti) is None:
        session.add(RevokedToken(jti=principal.jti, user_id=principal.user_id,
                                 expires_at=principal.expires_at or utcnow() + timedelta(days=1)))
        audit(session, principal.username, "logout", "login", principal.username)
        session.commit()
