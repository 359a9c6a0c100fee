"""Who is calling: every request reads its user (role, city, district, active flag, token version, whether its token
was revoked) from the store, in one small Core query on a pooled connection. Nothing about a user is kept
between requests, so a change committed by any process (the API, the console, the CLI, an admin's SQL) counts
from the next request on.

A token or key only names its user; what the user may do is what the store says now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, bindparam, exists, select

from serving.security import AuthError, TokenClaims
from serving.store import ApiKey, RevokedToken, User

REFUSED = "登录凭证无效或已撤销，请重新登录 (invalid or revoked credential: log in again)"


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a logged-in user or a system with an API key."""

    username: str
    role: str
    district: str | None = None
    via: str = "token"
    city: str | None = None  # the one city of a province's store the user is bound to; None: every city
    user_id: int | None = None
    jti: str | None = None  # the token's id (a logout revokes it)
    expires_at: datetime | None = None

    @property
    def is_officer(self) -> bool:
        return self.role == "officer"


@dataclass(frozen=True)
class UserState:
    """What the store says about a user now (``token_revoked``: the token of this request was logged out)."""

    id: int
    username: str
    role: str
    district: str | None
    city: str | None
    active: bool
    token_version: int
    token_revoked: bool = False


_USER = (User.id, User.username, User.role, User.district, User.city, User.active, User.token_version)
# built once: each request only binds its values (SQLAlchemy reuses the compiled statement)
BY_TOKEN = select(*_USER, exists().where(RevokedToken.jti == bindparam("jti")).label("token_revoked")).where(
    User.username == bindparam("username"))
BY_KEY = select(*_USER).join(ApiKey, and_(ApiKey.user_id == User.id, ApiKey.revoked.is_(False))).where(
    ApiKey.key_hash == bindparam("digest"))


class Identities:
    """Reads user states from the store through ``engine``'s connection pool (no ORM session: a quarter of the CPU)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _one(self, statement, **params) -> UserState | None:
        with self.engine.connect() as connection:
            row = connection.execute(statement, params).first()
        if row is None:
            return None
        revoked = bool(row.token_revoked) if "token_revoked" in row._fields else False
        return UserState(row.id, row.username, row.role, row.district, row.city, bool(row.active), row.token_version,
                         revoked)

    def by_token(self, claims: TokenClaims) -> UserState | None:
        """The state of the user a token names, and whether that token was revoked."""
        return self._one(BY_TOKEN, username=claims.username, jti=claims.jti)

    def by_key(self, digest: str) -> UserState | None:
        """The state of the user an API key (by its digest) belongs to, if the key is not revoked."""
        return self._one(BY_KEY, digest=digest)


def principal_for_token(claims: TokenClaims, state: UserState | None) -> Principal:
    """The caller a valid token stands for, if its user still exists, is active, has not changed since the
    token was issued (same id, same token version) and the token was not revoked."""
    if (state is None or not state.active or state.id != claims.user_id or state.token_version != claims.version
            or state.token_revoked):
        raise AuthError(REFUSED)
    return Principal(state.username, state.role, state.district, via="token", city=state.city, user_id=state.id,
                     jti=claims.jti, expires_at=claims.expires_at)


def principal_for_key(state: UserState | None) -> Principal:
    if state is None or not state.active:
        raise AuthError("API key 无效或已撤销 (invalid or revoked API key)")
    return Principal(state.username, state.role, state.district, via="api_key", city=state.city, user_id=state.id)
