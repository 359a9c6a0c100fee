"""Who is calling: every request's user (role, district, active flag, token version, revoked tokens) is read
from the store, through a brief cache that any change to users, keys or revoked tokens clears at once.

A token or key only names its user; what the user may do is what the store says now. A change committed
by this process (logout, deactivation, a new password, a revoked key, through the API, the console or the
CLI functions) clears the cache immediately; one committed by another process (the CLI beside a running
service) is seen within ``identity_cache_seconds``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from serving.security import AuthError, TokenClaims
from serving.store import ApiKey, RevokedToken, User, utcnow

REFUSED = "登录凭证无效或已撤销，请重新登录 (invalid or revoked credential: log in again)"


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a logged-in user or a system with an API key."""

    username: str
    role: str
    district: str | None = None
    via: str = "token"
    user_id: int | None = None
    jti: str | None = None  # the token's id (a logout revokes it)
    expires_at: datetime | None = None

    @property
    def is_officer(self) -> bool:
        return self.role == "officer"


@dataclass(frozen=True)
class UserState:
    """What the store says about a user now."""

    id: int
    username: str
    role: str
    district: str | None
    active: bool
    token_version: int
    revoked: frozenset[str]  # ids of this user's tokens revoked before they expire


class _Generation:
    """Bumped after every commit that changed users, API keys or revoked tokens (in this process)."""

    value = 0
    _lock = threading.Lock()

    @classmethod
    def bump(cls) -> None:
        with cls._lock:
            cls.value += 1


IDENTITY_TYPES = (User, ApiKey, RevokedToken)


@event.listens_for(Session, "after_flush")
def _note_identity_change(session: Session, _context) -> None:
    if any(isinstance(o, IDENTITY_TYPES) for o in chain(session.new, session.dirty, session.deleted)):
        session.info["identity_changed"] = True


@event.listens_for(Session, "after_commit")
def _identity_changed(session: Session) -> None:
    if session.info.pop("identity_changed", False):
        _Generation.bump()


@event.listens_for(Session, "after_rollback")
def _identity_unchanged(session: Session) -> None:
    session.info.pop("identity_changed", None)


def _state(session: Session, user: User) -> UserState:
    revoked = session.scalars(select(RevokedToken.jti).where(RevokedToken.user_id == user.id,
                                                             RevokedToken.expires_at > utcnow()))
    return UserState(user.id, user.username, user.role, user.district, bool(user.active), user.token_version,
                     frozenset(revoked))


class Identities:
    """The cache of user states, by username and by API-key digest."""

    def __init__(self, sessions: sessionmaker, ttl: float, size: int = 4096):
        self._sessions, self.ttl, self.size = sessions, ttl, size
        self._items: dict[tuple[str, str], tuple[UserState | None, float, int]] = {}

    def peek(self, kind: str, key: str) -> tuple[bool, UserState | None]:
        """(found, state) without touching the store."""
        hit = self._items.get((kind, key))
        if hit is None or hit[1] < time.monotonic() or hit[2] != _Generation.value:
            return False, None
        return True, hit[0]

    def load(self, kind: str, key: str) -> UserState | None:
        """The state from the store (``kind``: 'user' by username, 'key' by API-key digest), cached."""
        generation = _Generation.value
        with self._sessions() as session:
            if kind == "user":
                user = session.scalar(select(User).where(User.username == key))
            else:
                user = session.scalar(select(User).join(ApiKey, ApiKey.user_id == User.id)
                                      .where(ApiKey.key_hash == key, ApiKey.revoked.is_(False)))
            state = None if user is None else _state(session, user)
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[(kind, key)] = (state, time.monotonic() + self.ttl, generation)
        return state


def principal_for_token(claims: TokenClaims, state: UserState | None) -> Principal:
    """The caller a valid token stands for, if its user still exists, is active, has not changed since the
    token was issued (same id, same token version) and the token was not revoked."""
    if (state is None or not state.active or state.id != claims.user_id or state.token_version != claims.version
            or claims.jti in state.revoked):
        raise AuthError(REFUSED)
    return Principal(state.username, state.role, state.district, via="token", user_id=state.id, jti=claims.jti,
                     expires_at=claims.expires_at)


def principal_for_key(state: UserState | None) -> Principal:
    if state is None or not state.active:
        raise AuthError("API key 无效或已撤销 (invalid or revoked API key)")
    return Principal(state.username, state.role, state.district, via="api_key", user_id=state.id)
