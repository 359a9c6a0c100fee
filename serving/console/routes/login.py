"""Signing in and out of the console, the landing redirect and the console's own static files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from serving import auth
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
from serving.deps import SESSION_COOKIE
from serving.i18n import t

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
def login_form(request: Request, next: str | None = None, expired: str | None = None):
    ctx = anonymous(request)
    error = t("login.expired", ctx.lang) if expired else None
    return render(ctx, "login.html", next=safe_next(next) or "", error=error, username="")


def _authenticate(request: Request, username: str, password: str) -> auth.Principal:
    with request.app.state.sessions() as session:
        return auth.authenticate(session, username, password)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = ""):
    username, password, target = username[:64], password[:256], safe_next(next)
    try:
        principal = await run_in_threadpool(_authenticate, request, username, password)
    except auth.AuthError:
        ctx = anonymous(request)
        return render(ctx, "login.html", status_code=401, next=target or "", username=username,
                      error=t("login.failed", ctx.lang))
    s = request.app.state.settings
    token = auth.issue_token(principal, s.secret_key, s.token_minutes)
    home = home_for(principal.role)
    if target and not (principal.is_officer and target.startswith(SUPERVISOR_HOME)):
        home = target
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=s.token_minutes * 60, httponly=True, samesite="lax",
                        secure=secure_cookies(request), path="/")
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = ""):
    ctx = optional_context(request)
    if ctx.principal is not None:
        check_csrf(ctx, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
