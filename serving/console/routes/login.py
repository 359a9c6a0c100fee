"""Signing in and out of the console, the landing redirect and the console's own static files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from serving.console.render import (
    SUPERVISOR_HOME,
    anonymous,
    check_csrf,
    home_for,
    optional_context,
    page_router,
    render,
    secure_cookies,
)
from serving.deps import SESSION_COOKIE, SessionDep
from serving.errors import TooManyAttempts
from serving.i18n import t
from serving.schemas import Text
from serving.security import AuthError
from serving.services import login as service
from serving.services.login import Login

STATIC = Path(__file__).resolve().parents[2] / "static"

router = page_router()


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


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Text | None = None, expired: Text | None = None):
    ctx = anonymous(request)
    error = t("login.expired", ctx.lang) if expired else None
    return render(ctx, "login.html", next=safe_next(next) or "", error=error, username="")


def _login(request: Request, username: str, password: str) -> Login:
    with request.app.state.sessions() as session:
        return service.login(session, username, password, request.client.host if request.client else None,
                             request.app.state.settings.auth, request.app.state.secret_key)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, username: Annotated[Text, Form()] = "", password: Annotated[Text, Form()] = "",
                next: Annotated[Text, Form()] = ""):
    username, password, target = username[:64], password[:256], safe_next(next)
    try:
        done = await run_in_threadpool(_login, request, username, password)
    except (AuthError, TooManyAttempts) as exc:
        ctx = anonymous(request)
        locked = isinstance(exc, TooManyAttempts)
        return render(ctx, "login.html", status_code=429 if locked else 401, next=target or "", username=username,
                      error=exc.detail if locked else t("login.failed", ctx.lang))
    home = home_for(done.principal.role)
    if target and not (done.principal.is_officer and target.startswith(SUPERVISOR_HOME)):
        home = target
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(SESSION_COOKIE, done.token, max_age=done.expires_in, httponly=True, samesite="lax",
                        secure=secure_cookies(request), path="/")
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
