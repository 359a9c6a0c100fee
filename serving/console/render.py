"""What every console page shares: the templates, the page context of a signed-in user, CSRF tokens,
and ``ConsoleRoute``, which turns a refusal into an HTML page (or a redirect to the login form).

A page is a route on a router made with ``page_router()`` that takes a ``PageDep`` (or
``page_for(*roles)``) and returns ``render(ctx, "its.html", ...)``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from serving.console import charts, export
from serving.console.alert_text import alert_text
from serving.console.origin import UNSAFE_METHODS, OriginRefused, refuse_foreign_origin
from serving.deps import SESSION_COOKIE, cookie_scheme, identify_token, session_user
from serving.errors import DomainError, Forbidden, NotAuthenticated, http_status
from serving.i18n import DEFAULT_LANG, STRINGS, code_label, data_period, local_time, normalise_lang, translator
from serving.identity import Principal
from serving.settings import DISPLAY_TIMEZONE

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
LANG_COOKIE = "ww_lang"
OFFICER_HOME, SUPERVISOR_HOME = "/queue", "/dashboard"

templates = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)
templates.filters["num"] = charts.fmt_num
templates.filters["pct"] = lambda v: "—" if v is None else f"{v:.0%}"
templates.filters["filesize"] = lambda n: f"{n} B" if n < 1024 else (f"{n / 1024:.0f} KB" if n < 1024 ** 2
                                                                     else f"{n / 1024 ** 2:.1f} MB")
templates.globals.update(STRINGS=STRINGS, LEVEL_COLOURS=charts.LEVEL_COLOURS, STATUS_COLOURS=charts.STATUS_COLOURS,
                         AGE_COLOURS=charts.AGE_COLOURS,
                         SERIES_COLOURS=charts.SERIES_COLOURS, QUOTA_COLOUR=charts.QUOTA_COLOUR,
                         SINCE_COLOUR=charts.SINCE_COLOUR)


@dataclass
class PageContext:
    request: Request
    lang: str
    principal: Principal | None
    session_token: str | None


def home_for(role: str) -> str:
    return OFFICER_HOME if role == "officer" else SUPERVISOR_HOME


def lang_of(request: Request) -> str:
    return (normalise_lang(request.query_params.get("lang")) or normalise_lang(request.cookies.get(LANG_COOKIE))
            or DEFAULT_LANG)


def csrf_token(session_token: str, secret_key: str) -> str:
    """Form token bound to the session: a cross-site page cannot read it, so it cannot post for the user."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()[:32]


def secure_cookies(request: Request) -> bool:
    return bool(getattr(request.app.state.settings, "production", False))


def anonymous(request: Request) -> PageContext:
    return PageContext(request, lang_of(request), None, None)


def optional_context(request: Request) -> PageContext:
    """The page context of whoever is signed in, or an anonymous one (for error pages)."""
    token = request.cookies.get(SESSION_COOKIE)
    try:
        return PageContext(request, lang_of(request), identify_token(request, token), token) if token else \
            anonymous(request)
    except NotAuthenticated:
        return anonymous(request)


async def page_context(request: Request, principal: Annotated[Principal, Depends(session_user)],
                       token: Annotated[str | None, Depends(cookie_scheme)]) -> PageContext:
    return PageContext(request, lang_of(request), principal, token)


PageDep = Annotated[PageContext, Depends(page_context)]


def page_for(*roles: str):
    """A dependency: the page context if the signed-in user's role is one of ``roles``, else a 403 page."""

    async def check(ctx: PageDep) -> PageContext:
        if ctx.principal.role not in roles:
            raise Forbidden()
        return ctx

    return Depends(check)


def check_csrf(ctx: PageContext, sent: str | None) -> None:
    expected = csrf_token(ctx.session_token or "", ctx.request.app.state.secret_key)
    # as bytes: compare_digest raises TypeError on str with non-ASCII characters (a 500, not a refusal)
    if not sent or not hmac.compare_digest(sent.encode("utf-8"), expected.encode("ascii")):
        raise Forbidden("CSRF")


def page_url(request: Request, path: str | None = None, **params) -> str:
    """This page (or ``path``) with the current filters, changed by ``params`` (None or '' drops one)."""
    query = {k: v for k, v in request.query_params.items() if k not in ("lang", "recorded")}
    query.update(params)
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return (path if path is not None else request.url.path) + ("?" + urlencode(query) if query else "")


def display_zone(request: Request) -> str:
    """The zone the console shows times in (``serving.display_timezone``)."""
    serving = getattr(request.app.state.settings, "serving", None)
    return getattr(serving, "display_timezone", None) or DISPLAY_TIMEZONE


def render(ctx: PageContext, template: str, status_code: int = 200, **values) -> HTMLResponse:
    request, lang = ctx.request, ctx.lang
    switch_query = {k: v for k, v in request.query_params.items() if k != "lang"}
    switch_query["lang"] = "en" if lang == "zh" else "zh"
    settings = request.app.state.settings
    html = templates.get_template(template).render(
        t=translator(lang), lang=lang, request=request, user=ctx.principal,
        csrf=csrf_token(ctx.session_token, request.app.state.secret_key) if ctx.session_token else "",
        lang_switch_url=request.url.path + "?" + urlencode(switch_query),
        url=lambda path=None, **p: page_url(request, path, **p),
        code=lambda prefix, v: code_label(prefix, v, lang),
        alert_text=lambda a: alert_text(a, lang),
        period=lambda as_of: data_period(as_of, lang),
        local_time=lambda at: local_time(at, display_zone(request)),
        home=home_for(ctx.principal.role) if ctx.principal else "/login",
        bureau=getattr(getattr(settings, "rules", None), "bureau_name", "") or "",
        export_limit=export.MAX_ROWS,  # the rows an export holds: a page says when its list has more
        **values,
    )
    response = HTMLResponse(html, status_code=status_code)
    if normalise_lang(request.query_params.get("lang")):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", secure=secure_cookies(request))
    return response


def error_page(request: Request, status_code: int, detail: str | None = None, body: str | None = None) -> HTMLResponse:
    """The error page; ``body`` (a ``t`` key) says what happened in place of the status's usual words."""
    return render(optional_context(request), "error.html", status_code=status_code, err=status_code, detail=detail,
                  body=body)


def _page_of(request: Request) -> str | None:
    """The page to come back to after logging in: this one for a GET; for a form sent (POST), the page it was
    sent from (the Referer, when it is of this site: a GET of the form's address is a 405), else none."""
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer") or "")
    if referer.netloc != request.url.netloc or not referer.path.startswith("/") or referer.path.startswith("//"):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def to_login(request: Request, expired: bool = False) -> RedirectResponse:
    target = _page_of(request)
    params = {"next": target} if target else {}
    if expired:
        params["expired"] = "1"
    return RedirectResponse("/login?" + urlencode(params), status_code=303)


class ConsoleRoute(APIRoute):
    """A console route: refusals become pages, whether the page or one of its dependencies raised them
    (no credential: back to the login form; a domain error or an invalid form: an HTML page with its status).
    A form sent from another origin is refused before it is read (``origin``)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def run(request: Request):
            try:
                if request.method in UNSAFE_METHODS:
                    await refuse_foreign_origin(request)
                return await handler(request)
            except OriginRefused as exc:
                return error_page(request, 403, exc.detail, body="error.origin.body")
            except NotAuthenticated as exc:
                return to_login(request, exc.expired)
            except DomainError as exc:
                return error_page(request, http_status(exc), exc.detail or None)
            except HTTPException as exc:
                if exc.status_code == 401:
                    return to_login(request)
                return error_page(request, exc.status_code, str(exc.detail))
            except RequestValidationError:
                return error_page(request, 422)

        return run


def page_router() -> APIRouter:
    """A router for console pages (kept out of the API's OpenAPI schema)."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)
