"""FastAPI dependencies shared by the API and the console, as ``Annotated`` types.

``SessionDep`` a store session per request; ``ModelDep`` the live run; ``CurrentUser`` the caller of
an API request (bearer token or ``X-API-Key``); ``SessionUser`` the caller of a console page (the
session cookie, which holds the same signed token); ``RequireRole(*roles)`` either of them, refused
with 403 outside ``roles``. A credential only names its user: role, district and the active flag are
read from the store on every request, never kept between requests (``serving.identity``). Light
dependencies are async so that a request makes few hops to the thread pool (the identity query, a sync
endpoint), not one per dependency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from serving.errors import Forbidden, NotAuthenticated
from serving.identity import Principal, principal_for_key, principal_for_token
from serving.runtime import ModelHolder, ModelInfo
from serving.security import key_digest, read_token

API_PREFIX = "/api/v1"
SESSION_COOKIE = "ww_session"

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
    """The live run; every ``run_check_seconds`` a request first checks for a newer published run."""
    holder: ModelHolder = request.app.state.model
    if holder.due():
        await run_in_threadpool(holder.refresh)
    return holder.info


ModelDep = Annotated[ModelInfo, Depends(get_model)]


async def _store(read, arg):
    """The identity query in the thread pool: the event loop never waits on the database (the query costs about
    60 us of CPU, the hop as much; a stalled store then holds up the requests that need it, not all)."""
    return await run_in_threadpool(read, arg)


def identify_token(request: Request, token: str) -> Principal:
    """The user a signed token (bearer or session cookie) stands for, as the store says now (blocking)."""
    claims = read_token(token, request.app.state.secret_key)
    return principal_for_token(claims, request.app.state.identities.by_token(claims))


async def _from_token(request: Request, token: str) -> Principal:
    claims = read_token(token, request.app.state.secret_key)
    return principal_for_token(claims, await _store(request.app.state.identities.by_token, claims))


async def _from_api_key(request: Request, key: str) -> Principal:
    return principal_for_key(await _store(request.app.state.identities.by_key, key_digest(key)))


async def current_user(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The caller of an API request: a system with an API key, or a user with a bearer token."""
    if api_key:
        return await _from_api_key(request, api_key)
    if token:
        return await _from_token(request, token)
    raise NotAuthenticated("需要登录 (not authenticated: send a bearer token or X-API-Key)")


async def session_user(request: Request, token: Annotated[str | None, Depends(cookie_scheme)]) -> Principal:
    """The user of a console page, from the session cookie."""
    if not token:
        raise NotAuthenticated()
    return await _from_token(request, token)


CurrentUser = Annotated[Principal, Depends(current_user)]
SessionUser = Annotated[Principal, Depends(session_user)]


def RequireRole(*roles: str, via=current_user):  # noqa: N802 - reads as a type in signatures
    """A dependency: the caller (``via``: ``current_user`` for the API, ``session_user`` for pages) if its
    role is one of ``roles``, else 403."""

    async def check(principal: Principal = Depends(via)) -> Principal:  # a closure: no string annotation
        if principal.role not in roles:
            raise Forbidden(f"角色 {principal.role} 无权执行此操作 (role {principal.role} may not do this)")
        return principal

    return Depends(check)
