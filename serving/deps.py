"""FastAPI dependencies shared by the API and the console, as ``Annotated`` types.

``SessionDep`` a store session per request; ``ModelDep`` the live run; ``CurrentUser`` the caller of
an API request (bearer token or ``X-API-Key``); ``SessionUser`` the caller of a console page (the
session cookie, which holds the same signed token); ``RequireRole(*roles)`` either of them, refused
with 403 outside ``roles``. Light dependencies are async so that a request makes one hop to the
thread pool (its endpoint), not five.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session, sessionmaker

from serving import auth
from serving.errors import Forbidden, NotAuthenticated
from serving.runtime import ModelInfo

API_PREFIX = "/api/v1"
SESSION_COOKIE = "ww_session"
API_KEY_CACHE_SECONDS = 60.0

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="key of another system")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="console session")


async def get_session(request: Request) -> AsyncIterator[Session]:
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_model(request: Request) -> ModelInfo:
    return request.app.state.model.info


ModelDep = Annotated[ModelInfo, Depends(get_model)]


class KeyCache:
    """Recently seen API keys (by hash): systems call many times a second; a revoked key stops within a minute."""

    def __init__(self, ttl: float = API_KEY_CACHE_SECONDS, size: int = 1024):
        self.ttl, self.size, self._items = ttl, size, {}

    def get(self, digest: str) -> auth.Principal | None:
        hit = self._items.get(digest)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def put(self, digest: str, principal: auth.Principal) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[digest] = (principal, time.monotonic() + self.ttl)


def _lookup_key(sessions: sessionmaker, key: str) -> auth.Principal:
    with sessions() as session:
        return auth.principal_from_api_key(session, key)


async def _from_api_key(request: Request, key: str) -> auth.Principal:
    cache: KeyCache = request.app.state.key_cache
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    principal = cache.get(digest)
    if principal is None:
        principal = await run_in_threadpool(_lookup_key, request.app.state.sessions, key)
        cache.put(digest, principal)
    return principal


def identify_token(request: Request, token: str) -> auth.Principal:
    """The user a signed token (bearer or session cookie) stands for."""
    return auth.principal_from_token(token, request.app.state.settings.secret_key)


async def current_user(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> auth.Principal:
    """The caller of an API request: a system with an API key, or a user with a bearer token."""
    if api_key:
        return await _from_api_key(request, api_key)
    if token:
        return identify_token(request, token)
    raise NotAuthenticated("需要登录 (not authenticated: send a bearer token or X-API-Key)")


async def session_user(request: Request, token: Annotated[str | None, Depends(cookie_scheme)]) -> auth.Principal:
    """The user of a console page, from the session cookie."""
    if not token:
        raise NotAuthenticated()
    return identify_token(request, token)


CurrentUser = Annotated[auth.Principal, Depends(current_user)]
SessionUser = Annotated[auth.Principal, Depends(session_user)]


def RequireRole(*roles: str, via=current_user):  # noqa: N802 - reads as a type in signatures
    """A dependency: the caller (``via``: ``current_user`` for the API, ``session_user`` for pages) if its
    role is one of ``roles``, else 403."""

    async def check(principal: auth.Principal = Depends(via)) -> auth.Principal:  # a closure: no string annotation
        if principal.role not in roles:
            raise Forbidden(f"角色 {principal.role} 无权执行此操作 (role {principal.role} may not do this)")
        return principal

    return Depends(check)
