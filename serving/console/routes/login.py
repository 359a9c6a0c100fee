"""Signing in and out of the console, the landing redirect and the console's own static files.

The login form carries a CSRF token like every other console form (``check_csrf``), so that another site cannot
sign a user in under its own account (login CSRF: what the user then records would be the attacker's). With no
session yet to bind it to, it is bound to a random value the login page puts in its own cookie (``ww_login``,
HttpOnly, SameSite=Lax like the session's, sent to ``/login`` only): a cross-site post carries neither."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from serving.console.render import (
    SUPERVISOR_HOME,
    PageContext,
    anonymous,
    check_csrf,
    csrf_token,
    home_for,
    optional_context,
    page_router,
    render,
    secure_cookies,
)
from serving.deps import SESSION_COOKIE, SessionDep
from serving.errors import Forbidden, TooManyAttempts
from serving.i18n import t
from serving.schemas import Text
from serving.security import AuthError
from serving.services import login as service
from serving.services.login import Login

STATIC = Path(__file__).resolve().parents[2] / "static"

router = page_router()
LOGIN_COOKIE = "ww_login"
NONCE = re.compile(r"[A-Za-z0-9_-]{32}")  # what ``secrets.token_urlsafe(24)`` makes


def safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/static/{name}")
def static(name: str):
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})


@router.get("/", response_class=HTMLResponse)
def root(request: Request):
    principal = optional_context(request).principal
    return RedirectResponse(home_for(principal.role) if principal else "/login", status_code=303)


def _nonce(request: Request) -> str | None:
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    return nonce if NONCE.fullmatch(nonce) else None


def _form_context(request: Request, nonce: str) -> PageContext:
    """The login form's context for ``check_csrf``: its token is bound to the nonce, as others' to the session
    (a session token is a JWT: never ``login:...``)."""
    return PageContext(request, anonymous(request).lang, None, f"login:{nonce}")


def _login_page(request: Request, status_code: int = 200, **values) -> HTMLResponse:
    """The login form, its CSRF token bound to the browser's nonce (a new one, set, if it has none)."""
    nonce = _nonce(request) or secrets.token_urlsafe(24)
    ctx = _form_context(request, nonce)
    token = csrf_token(ctx.session_token, request.app.state.secret_key)
    response = render(anonymous(request), "login.html", status_code=status_code, login_csrf=token, **values)
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="lax", secure=secure_cookies(request),
                        path="/login")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Text | None = None, expired: Text | None = None):
    error = t("login.expired", anonymous(request).lang) if expired else None
    return _login_page(request, next=safe_next(next) or "", error=error, username="")


def _login(request: Request, username: str, password: str) -> Login:
    with request.app.state.sessions() as session:
        return service.login(session, username, password, request.client.host if request.client else None,
                             request.app.state.settings.auth, request.app.state.secret_key)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, username: Annotated[Text, Form()] = "", password: Annotated[Text, Form()] = "",
                next: Annotated[Text, Form()] = "", csrf: Annotated[Text, Form()] = ""):
    """Sign in; a post without the form's token (another site's, or a form older than the browser's cookie) is
    refused before any password is checked or counted, with the form again to log in from."""
    username, password, target = username[:64], password[:256], safe_next(next)
    lang, nonce = anonymous(request).lang, _nonce(request)
    try:
        check_csrf(_form_context(request, nonce or ""), csrf if nonce else "")  # no cookie: refused
    except Forbidden:
        return _login_page(request, 403, next=target or "", username=username, error=t("login.csrf", lang))
    try:
        done = await run_in_threadpool(_login, request, username, password)
    except (AuthError, TooManyAttempts) as exc:
        locked = isinstance(exc, TooManyAttempts)
        return _login_page(request, 429 if locked else 401, next=target or "", username=username,
                           error=exc.detail if locked else t("login.failed", lang))
    home = home_for(done.principal.role)
    if target and not (done.principal.is_officer and target.startswith(SUPERVISOR_HOME)):
        home = target
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(SESSION_COOKIE, done.token, max_age=done.expires_in, httponly=True, samesite="lax",
                        secure=secure_cookies(request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")  # the next login form gets a new one
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: Annotated[Text, Form()] = ""):
    """Revoke the session's token (so a copy of the cookie stops working too) and drop the cookie."""
    ctx = optional_context(request)
    if ctx.principal is not None:
        check_csrf(ctx, csrf)
        service.logout(session, ctx.principal)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
