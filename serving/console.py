"""The web console: officers work their district's queue, supervisors watch the city.

Server-rendered HTML (Jinja2) with charts drawn here as inline SVG, so that a laptop or tablet with
no internet shows everything from this service alone. The session is an HttpOnly cookie holding the
same signed token the API issues; verdicts go through the API's own verdict endpoint, so the console
and other systems record them (and their audit lines) the same way. Officers never see which of
their leads were drawn for exploration: like the API, the console shows them neither the model's
score nor its rank, and orders their queue by the shuffled queue position.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from features.profile_series import change_point
from features.profiles import SHIFT_MIN_SEGMENT, SHIFT_SCORE, SHIFT_WINDOW
from serving import auth
from serving.i18n import DEFAULT_LANG, STRINGS, code_label, metric_label, normalise_lang, t, translator
from serving.store import (
    LEAD_STATUSES,
    OUTCOMES,
    VIOLATION_TYPES,
    Account,
    Alert,
    Entity,
    Lead,
    OutboxMessage,
    Permit,
    Series,
    User,
    Verdict,
    WaterRight,
)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SESSION_COOKIE = "ww_session"
LANG_COOKIE = "ww_lang"
PAGE_SIZE = 50
OFFICER_HOME, SUPERVISOR_HOME = "/queue", "/dashboard"
DASHBOARD_ROLES = ("supervisor", "analyst", "admin")
VERDICT_ROLES = ("officer", "supervisor", "admin")
ASSIGN_ROLES = ("officer", "supervisor", "admin")
MAX_ID = 2**31 - 1
REASON_SEPARATOR = "；"

# colours: volumes, alert levels, lead statuses (also used by the CSS legend swatches)
SERIES_COLOURS = {"supply_m3": "#2b6cb0", "abstraction_m3": "#2f855a", "discharge_m3": "#c05621"}
QUOTA_COLOUR, SINCE_COLOUR = "#c53030", "#6b46c1"
LEVEL_COLOURS = {"red": "#e53e3e", "orange": "#ed8936", "yellow": "#ecc94b", "warning": "#d69e2e",
                 "notice": "#4299e1", "reminder_90": "#90cdf4", "reminder_60": "#3182ce"}
LEVEL_ORDER = ("red", "orange", "yellow", "warning", "reminder_60", "reminder_90", "notice")
STATUS_COLOURS = {"new": "#718096", "assigned": "#4299e1", "in_progress": "#ed8936", "closed": "#38a169"}


def _level_rank(level: str) -> int:
    """Most severe first; unknown levels last."""
    return LEVEL_ORDER.index(level) if level in LEVEL_ORDER else len(LEVEL_ORDER)


class ConsoleError(Exception):
    """A page that cannot be shown to this user: rendered as an HTML error page with its status."""

    def __init__(self, status_code: int, detail: str | None = None):
        super().__init__(detail or str(status_code))
        self.status_code, self.detail = status_code, detail


class LoginRequired(Exception):
    def __init__(self, expired: bool = False):
        super().__init__("login required")
        self.expired = expired


# -- small helpers ---------------------------------------------------------------------------------


def _reasons(text_: str | None) -> list[str]:
    return [r for r in (text_ or "").split(REASON_SEPARATOR) if r.strip()]


def csrf_token(session_token: str, secret_key: str) -> str:
    """Form token bound to the session: a cross-site page cannot read it, so it cannot post for the user."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()[:32]


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def home_for(role: str) -> str:
    return OFFICER_HOME if role == "officer" else SUPERVISOR_HOME


def _fmt_num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _nice_step(span: float, ticks: int = 4) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


# -- inline SVG charts -----------------------------------------------------------------------------


def _polyline(points: list[tuple[float, float] | None]) -> str:
    """SVG path data; a None breaks the line (a month with no data is a gap, not a zero)."""
    out, pen = [], False
    for p in points:
        if p is None:
            pen = False
            continue
        out.append(f"{'L' if pen else 'M'}{p[0]:.1f},{p[1]:.1f}")
        pen = True
    return " ".join(out)


def monthly_chart_svg(
    months: list[str], lines: list[tuple[str, str, list[float | None], str]], quota: list[float | None] | None,
    since: str | None, labels: dict[str, str], width: int = 760, height: int = 300,
) -> Markup:
    """Monthly volumes as lines, the permit quota as a dashed step line and the shift month as a marker.

    ``lines``: (css key, label, values, colour). ``labels``: 'unit', 'quota', 'since' texts.
    """
    left, right, top, bottom = 70, 16, 24, 44
    n = len(months)
    values = [v for _, _, vals, _ in lines for v in vals if v is not None]
    values += [v for v in (quota or []) if v is not None]
    vmax = max(values) if values else 1.0
    step = _nice_step(vmax * 1.05 if vmax > 0 else 1.0)
    ymax = step * max(1, math.ceil(vmax * 1.05 / step)) if vmax > 0 else step * 4
    pw, ph = width - left - right, height - top - bottom

    def x(i: float) -> float:
        return left + (pw * (i + 0.5) / n if n else 0)

    def y(v: float) -> float:
        return top + ph - ph * v / ymax

    parts = [f'<svg class="chart" data-chart="monthly" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(labels.get("title", ""))}" preserveAspectRatio="xMidYMid meet">']
    tick = 0.0
    while tick <= ymax + 1e-9:
        yy = y(tick)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt_num(tick)}</text>')
        tick += step
    parts.append(f'<text class="axis unit" x="{left - 6}" y="{top - 10}" text-anchor="end">{escape(labels.get("unit", ""))}</text>')
    every = max(1, math.ceil(n / 12))
    for i, m in enumerate(months):
        if (n - 1 - i) % every == 0:  # anchored at the latest month, which is always labelled
            parts.append(f'<text class="axis" x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle">{escape(m)}</text>')
    parts.append(f'<line class="baseline" x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    if since and since in months:
        i = months.index(since)
        xs = x(i) - (pw / n / 2 if n else 0)
        parts.append(f'<g class="since"><line x1="{xs:.1f}" x2="{xs:.1f}" y1="{top}" y2="{top + ph}" stroke="{SINCE_COLOUR}" '
                     f'stroke-dasharray="4 3" stroke-width="2"/><text x="{xs + 4:.1f}" y="{top + 12}" fill="{SINCE_COLOUR}">'
                     f'{escape(labels.get("since", ""))} {escape(since)}</text></g>')
    if quota and any(v is not None for v in quota):
        pts: list[tuple[float, float] | None] = []
        half = pw / n / 2 if n else 0
        for i, v in enumerate(quota):
            if v is None:
                pts.append(None)
            else:
                pts += [(x(i) - half, y(v)), (x(i) + half, y(v))]
        parts.append(f'<path class="series quota" d="{_polyline(pts)}" fill="none" stroke="{QUOTA_COLOUR}" '
                     f'stroke-width="2" stroke-dasharray="7 4"><title>{escape(labels.get("quota", ""))}</title></path>')
    for key, label, vals, colour in lines:
        pts = [None if v is None else (x(i), y(v)) for i, v in enumerate(vals)]
        if not any(p is not None for p in pts):
            continue
        parts.append(f'<path class="series {key}" d="{_polyline(pts)}" fill="none" stroke="{colour}" stroke-width="2.2" '
                     f'stroke-linejoin="round"/>')
        dots = "".join(
            f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="2.6"><title>{escape(label)} {escape(months[i])}: '
            f'{_fmt_num(vals[i])}</title></circle>' for i, p in enumerate(pts) if p is not None)
        parts.append(f'<g class="dots {key}" fill="{colour}">{dots}</g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars_svg(rows: list[tuple[str, list[tuple[str, float, str]]]], chart: str, width: int = 560) -> Markup:
    """Horizontal stacked bars: rows of (label, [(segment label, value, colour)]), the total at the end."""
    left, right, bar, gap = 120, 56, 20, 8
    height = max(1, len(rows)) * (bar + gap) + gap
    total_max = max((sum(v for _, v, _ in segs) for _, segs in rows), default=0) or 1
    pw = width - left - right
    parts = [f'<svg class="chart bars" data-chart="{escape(chart)}" viewBox="0 0 {width} {height}" role="img" '
             f'preserveAspectRatio="xMidYMid meet">']
    for r, (label, segs) in enumerate(rows):
        yy = gap + r * (bar + gap)
        parts.append(f'<text class="axis" x="{left - 8}" y="{yy + bar * 0.72:.1f}" text-anchor="end">{escape(label)}</text>')
        xx = float(left)
        for seg_label, value, colour in segs:
            if value <= 0:
                continue
            w = pw * value / total_max
            parts.append(f'<rect x="{xx:.1f}" y="{yy}" width="{max(w, 1):.1f}" height="{bar}" fill="{colour}">'
                         f'<title>{escape(label)} · {escape(seg_label)}: {_fmt_num(value)}</title></rect>')
            xx += w
        total = sum(v for _, v, _ in segs)
        parts.append(f'<text class="total" x="{xx + 6:.1f}" y="{yy + bar * 0.72:.1f}">{_fmt_num(total)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hit_rate_svg(months: list[str], counts: list[int], rates: list[float | None], labels: dict[str, str],
                 width: int = 560, height: int = 220) -> Markup:
    """Verdicts per month as bars (left axis) and the hit rate as a line (right axis, 0-100 %)."""
    left, right, top, bottom = 44, 44, 16, 36
    n = max(1, len(months))
    pw, ph = width - left - right, height - top - bottom
    cmax = max(counts, default=0) or 1
    step = max(1, math.ceil(_nice_step(cmax, 2)))  # counts are whole verdicts
    cmax = step * math.ceil(cmax / step)
    slot = pw / n
    bar_w = min(slot * 0.7, 48.0)
    parts = [f'<svg class="chart" data-chart="hit-rate" viewBox="0 0 {width} {height}" role="img" '
             f'preserveAspectRatio="xMidYMid meet">']
    for frac in (0, 0.5, 1):
        yy = top + ph - ph * frac
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        parts.append(f'<text class="axis" x="{width - right + 6}" y="{yy + 4:.1f}">{frac:.0%}</text>')
        if float(cmax * frac).is_integer():
            parts.append(f'<text class="axis" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt_num(cmax * frac)}</text>')
    every = max(1, math.ceil(n / 8))
    pts: list[tuple[float, float] | None] = []
    for i, (m, c, r) in enumerate(zip(months, counts, rates)):
        bh = ph * c / cmax
        cx = left + slot * i + slot / 2
        parts.append(f'<rect class="bar" x="{cx - bar_w / 2:.1f}" y="{top + ph - bh:.1f}" '
                     f'width="{bar_w:.1f}" height="{bh:.1f}" fill="#90cdf4"><title>{escape(m)} · '
                     f'{escape(labels.get("verdicts", ""))}: {c}</title></rect>')
        pts.append(None if r is None else (cx, top + ph - ph * r))
        if (n - 1 - i) % every == 0:
            parts.append(f'<text class="axis" x="{cx:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(m)}</text>')
    if any(p is not None for p in pts):
        parts.append(f'<path class="series hit-rate" d="{_polyline(pts)}" fill="none" stroke="#c53030" stroke-width="2.2"/>')
        parts.append("".join(
            f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="3" fill="#c53030"><title>{escape(months[i])} · '
            f'{escape(labels.get("hit_rate", ""))}: {rates[i]:.0%}</title></circle>'
            for i, p in enumerate(pts) if p is not None))
    parts.append("</svg>")
    return Markup("".join(parts))


# -- lead page data ----------------------------------------------------------------------------------


def monthly_quota(months: list[str], permits: list[Permit]) -> list[float | None]:
    """Annual quota / 12 of the permits valid in each month, pro rata of the days each was valid
    (a renewal that starts mid-month does not count twice); None where no permit was valid."""
    if not months or not permits:
        return [None] * len(months)
    starts = np.array([np.datetime64(f"{m}-01", "D") for m in months])
    ends = (starts.astype("datetime64[M]") + np.timedelta64(1, "M")).astype("datetime64[D]")  # exclusive
    days = (ends - starts).astype(float)
    total = np.zeros(len(months))
    covered = np.zeros(len(months), dtype=bool)
    for p in permits:  # an entity holds a handful of permits
        if p.annual_quota_m3 is None or (p.status or "").lower() in ("revoked", "cancelled"):
            continue
        lo = np.datetime64(p.valid_from, "D") if p.valid_from else np.datetime64("1900-01-01")
        hi = (np.datetime64(p.valid_to, "D") if p.valid_to else np.datetime64("2999-12-30")) + np.timedelta64(1, "D")
        overlap = (np.minimum(ends, hi) - np.maximum(starts, lo)).astype(float).clip(0)
        total += p.annual_quota_m3 / 12.0 * overlap / days
        covered |= overlap > 0
    return [round(float(v), 1) if c else None for v, c in zip(total, covered)]


def shift_since(series: dict[str, Any]) -> str | None:
    """Month a significant level shift began, as of the last month of the series.

    Taken from the stored series when the publish kept a ``*_shift_since`` column; otherwise found
    with the profiles' own change-point test (same window, segment and score) on the balance ratio
    and the three volumes, keeping the strongest dated shift.
    """
    months = series.get("month") or []
    for key in ("balance_shift_since", "supply_shift_since", "abstraction_shift_since", "discharge_shift_since"):
        vals = [v for v in (series.get(key) or []) if v]
        if vals:
            return str(vals[-1])[:7]
    if len(months) < 2 * SHIFT_MIN_SEGMENT:
        return None

    def arr(key: str) -> np.ndarray:
        vals = series.get(key) or [None] * len(months)
        return np.array([np.nan if v is None else float(v) for v in vals], dtype=float)

    supply, abstraction, discharge = arr("supply_m3"), arr("abstraction_m3"), arr("discharge_m3")
    inflow = np.nan_to_num(supply) + np.nan_to_num(abstraction)
    with np.errstate(divide="ignore", invalid="ignore"):
        balance = np.where(inflow > 0, discharge / inflow, np.nan)
    best_score, best_k = -np.inf, None
    for x, relative in ((balance, False), (supply, True), (abstraction, True), (discharge, True)):
        if np.sum(~np.isnan(x)) < 2 * SHIFT_MIN_SEGMENT:
            continue
        _, score, since = change_point(x[None, :], SHIFT_WINDOW, SHIFT_MIN_SEGMENT, relative=relative,
                                       sd_floor=1.0 if relative else 0.01)
        s, k = score[0, -1], since[0, -1]
        if np.isfinite(s) and s >= SHIFT_SCORE and s > best_score and not np.isnan(k):
            best_score, best_k = s, int(k)
    return None if best_k is None else months[best_k]


# -- the router --------------------------------------------------------------------------------------


@dataclass
class PageContext:
    request: Request
    lang: str
    principal: auth.Principal | None
    session_token: str | None


def console_router(settings) -> APIRouter:
    """The console's pages; mount with ``create_app(settings, routers=[console_router(settings)])``."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt_num
    env.filters["pct"] = lambda v: "—" if v is None else f"{v:.0%}"
    env.globals["STRINGS"] = STRINGS
    env.globals["LEVEL_COLOURS"] = LEVEL_COLOURS
    env.globals["STATUS_COLOURS"] = STATUS_COLOURS
    env.globals["SERIES_COLOURS"] = SERIES_COLOURS
    env.globals["QUOTA_COLOUR"] = QUOTA_COLOUR
    env.globals["SINCE_COLOUR"] = SINCE_COLOUR
    env.globals["bureau"] = getattr(getattr(settings, "rules", None), "bureau_name", "") or ""
    secure_cookie = bool(getattr(settings, "production", False))
    r = APIRouter(include_in_schema=False)

    # -- plumbing ---------------------------------------------------------------------------------

    def lang_of(request: Request) -> str:
        return (normalise_lang(request.query_params.get("lang")) or normalise_lang(request.cookies.get(LANG_COOKIE))
                or DEFAULT_LANG)

    def principal_of(request: Request) -> tuple[auth.Principal | None, str | None, bool]:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None, None, False
        try:
            return auth.principal_from_token(token, request.app.state.settings.secret_key), token, False
        except auth.AuthError as exc:
            return None, None, "expired" in str(exc)

    def context(request: Request) -> PageContext:
        principal, token, expired = principal_of(request)
        if principal is None:
            raise LoginRequired(expired)
        return PageContext(request, lang_of(request), principal, token)

    def page_url(request: Request, path: str | None = None, **params) -> str:
        query = {k: v for k, v in request.query_params.items() if k not in ("lang", "recorded")}
        query.update({k: v for k, v in params.items()})
        query = {k: v for k, v in query.items() if v not in (None, "")}
        base = path if path is not None else request.url.path
        return base + ("?" + urlencode(query) if query else "")

    def render(ctx: PageContext, template: str, status_code: int = 200, **values) -> HTMLResponse:
        lang = ctx.lang
        request = ctx.request
        other = "en" if lang == "zh" else "zh"
        switch_query = {k: v for k, v in request.query_params.items() if k != "lang"}
        switch_query["lang"] = other
        html = env.get_template(template).render(
            t=translator(lang), lang=lang, request=request, user=ctx.principal,
            csrf=csrf_token(ctx.session_token, request.app.state.settings.secret_key) if ctx.session_token else "",
            lang_switch_url=request.url.path + "?" + urlencode(switch_query),
            url=lambda path=None, **p: page_url(request, path, **p),
            code=lambda prefix, v: code_label(prefix, v, lang),
            home=home_for(ctx.principal.role) if ctx.principal else "/login",
            **values,
        )
        response = HTMLResponse(html, status_code=status_code)
        if normalise_lang(request.query_params.get("lang")):
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", secure=secure_cookie)
        return response

    def error_page(request: Request, status_code: int, detail: str | None = None) -> HTMLResponse:
        principal, token, _ = principal_of(request)
        ctx = PageContext(request, lang_of(request), principal, token)
        return render(ctx, "error.html", status_code=status_code, err=status_code, detail=detail)

    def to_login(request: Request, expired: bool = False) -> RedirectResponse:
        params = {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
        if expired:
            params["expired"] = "1"
        return RedirectResponse("/login?" + urlencode(params), status_code=303)

    def guarded(handler):
        """Turns LoginRequired / ConsoleError / HTTPException into a redirect or an HTML error page."""

        @functools.wraps(handler)
        def run(request: Request, *args, **kwargs):
            try:
                return handler(request, *args, **kwargs)
            except LoginRequired as exc:
                return to_login(request, exc.expired)
            except ConsoleError as exc:
                return error_page(request, exc.status_code, exc.detail)
            except HTTPException as exc:
                if exc.status_code == 401:
                    return to_login(request)
                return error_page(request, exc.status_code, str(exc.detail))

        return run

    def sessions(request: Request) -> Session:
        return request.app.state.sessions()

    def require_role(ctx: PageContext, roles: tuple[str, ...]) -> None:
        if ctx.principal.role not in roles:
            raise ConsoleError(403)

    def check_csrf(ctx: PageContext, sent: str | None) -> None:
        expected = csrf_token(ctx.session_token or "", ctx.request.app.state.settings.secret_key)
        if not sent or not hmac.compare_digest(sent, expected):
            raise ConsoleError(403, "CSRF")

    def live_run_id(request: Request) -> str | None:
        return request.app.state.model.info.run_id

    def load_lead(session: Session, lead_id: int, principal: auth.Principal) -> Lead:
        lead = session.get(Lead, lead_id)
        if lead is None:
            raise ConsoleError(404)
        if principal.is_officer and lead.district != principal.district:
            raise ConsoleError(403)
        return lead

    # -- static files and login ---------------------------------------------------------------------

    @r.get("/static/{name}")
    def static(name: str):
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            raise HTTPException(404)
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    @r.get("/", response_class=HTMLResponse)
    def root(request: Request):
        principal, _, _ = principal_of(request)
        return RedirectResponse(home_for(principal.role) if principal else "/login", status_code=303)

    @r.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None, expired: str | None = None):
        ctx = PageContext(request, lang_of(request), None, None)
        error = t("login.expired", ctx.lang) if expired else None
        return render(ctx, "login.html", next=_safe_next(next) or "", error=error, username="")

    @r.post("/login", response_class=HTMLResponse)
    async def login(request: Request):
        form = await request.form()
        username = str(form.get("username") or "")[:64]
        password = str(form.get("password") or "")[:256]
        target = _safe_next(str(form.get("next") or ""))
        ctx = PageContext(request, lang_of(request), None, None)

        def check() -> auth.Principal:
            with sessions(request) as session:
                return auth.authenticate(session, username, password)

        try:
            principal = await run_in_threadpool(check)
        except auth.AuthError:
            return render(ctx, "login.html", status_code=401, next=target or "", username=username,
                          error=t("login.failed", ctx.lang))
        s = request.app.state.settings
        token = auth.issue_token(principal, s.secret_key, s.token_minutes)
        home = home_for(principal.role)
        if target and not (principal.is_officer and target.startswith(SUPERVISOR_HOME)):
            home = target
        response = RedirectResponse(home, status_code=303)
        response.set_cookie(SESSION_COOKIE, token, max_age=s.token_minutes * 60, httponly=True, samesite="lax",
                            secure=secure_cookie, path="/")
        return response

    @r.post("/logout")
    async def logout(request: Request):
        principal, token, _ = principal_of(request)
        if principal is not None:
            form = await request.form()
            ctx = PageContext(request, lang_of(request), principal, token)
            try:
                check_csrf(ctx, str(form.get("csrf") or ""))
            except ConsoleError as exc:
                return error_page(request, exc.status_code, exc.detail)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- officer queue ----------------------------------------------------------------------------

    @r.get("/queue", response_class=HTMLResponse)
    @guarded
    def queue(request: Request):
        ctx = context(request)
        p = ctx.principal
        qp = request.query_params
        status_ = qp.get("status") or ""
        kind = (qp.get("kind") or "").strip()[:32]
        text_ = (qp.get("q") or "").strip()[:64]
        district = (qp.get("district") or "").strip()[:64] or None
        try:
            page = max(1, min(100_000, int(qp.get("page") or 1)))
        except ValueError:
            page = 1
        if p.is_officer:
            if district is not None and district != p.district:
                raise ConsoleError(403)
            district = p.district
        run_id = live_run_id(request)
        with sessions(request) as session:
            q = select(Lead)
            if status_ in LEAD_STATUSES:
                q = q.where(Lead.status == status_)
                if status_ == "new":
                    q = q.where(Lead.in_queue.is_(True))
            elif status_ == "open":
                q = q.where(Lead.in_queue.is_(True), Lead.status != "closed")
            else:  # the queue plus the work already done on it
                status_ = ""
                q = q.where(or_(Lead.in_queue.is_(True), Lead.status != "new"))
            if district is not None:
                q = q.where(Lead.district == district)
            if kind:
                q = q.where(Lead.uscc.in_(select(Alert.uscc).where(Alert.kind == kind, Alert.run_id == run_id)))
            if text_:
                q = q.where(or_(Lead.reasons.contains(text_, autoescape=True), Lead.name.contains(text_, autoescape=True),
                                Lead.uscc.contains(text_, autoescape=True)))
            total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
            closed_last = (Lead.status == "closed")
            order = ((closed_last, Lead.queue_position.is_(None), Lead.queue_position, Lead.id) if p.is_officer
                     else (closed_last, Lead.rank.is_(None), Lead.rank, Lead.id))
            rows = session.scalars(q.order_by(*order).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
            usccs = [x.uscc for x in rows]
            levels: dict[str, list[tuple[str, str]]] = {}
            if usccs and run_id:
                for a_uscc, a_kind, a_level in session.execute(
                        select(Alert.uscc, Alert.kind, Alert.level).where(Alert.run_id == run_id, Alert.uscc.in_(usccs))
                        .distinct()):
                    levels.setdefault(a_uscc, []).append((a_kind, a_level or "notice"))
            for chips in levels.values():
                chips.sort(key=lambda c: _level_rank(c[1]))
            # the district's totals, for the tiles at the top
            scope = select(Lead.status, func.count()).where(or_(Lead.in_queue.is_(True), Lead.status != "new"))
            vscope = select(func.count()).select_from(Verdict).join(Lead, Lead.id == Verdict.lead_id).where(
                Verdict.outcome == "violation")
            if district is not None:
                scope = scope.where(Lead.district == district)
                vscope = vscope.where(Lead.district == district)
            by_status = dict(session.execute(scope.group_by(Lead.status)).all())
            violations = session.scalar(vscope) or 0
            kinds = sorted(k for k in session.scalars(select(Alert.kind).where(Alert.run_id == run_id).distinct()) if k)
            districts = [] if p.is_officer else sorted(
                d for d in session.scalars(select(Lead.district).distinct()) if d)
        items = [{
            "id": x.id, "uscc": x.uscc, "name": x.name, "district": x.district, "status": x.status,
            "position": x.queue_position, "officer": x.assigned_officer,
            "top_reason": (_reasons(x.reasons) or [""])[0], "alerts": levels.get(x.uscc, []),
            "risk": None if p.is_officer else x.risk_score, "rank": None if p.is_officer else x.rank,
        } for x in rows]
        recorded = qp.get("recorded")
        return render(
            ctx, "queue.html", items=items, total=total, page=page, pages=max(1, math.ceil(total / PAGE_SIZE)),
            status=status_, kind=kind, q=text_, district=district, kinds=kinds, districts=districts,
            statuses=LEAD_STATUSES, recorded=int(recorded) if (recorded or "").isdigit() else None,
            tiles={"open": sum(v for k, v in by_status.items() if k != "closed"), "closed": by_status.get("closed", 0),
                   "violations": violations},
        )

    # -- lead page -----------------------------------------------------------------------------------

    def lead_page(ctx: PageContext, lead_id: int, status_code: int = 200, form_error: str | None = None,
                  form_values: dict | None = None, assigned: bool = False) -> HTMLResponse:
        request, p = ctx.request, ctx.principal
        lang = ctx.lang
        run_id = live_run_id(request)
        with sessions(request) as session:
            lead = load_lead(session, lead_id, p)
            entity = session.get(Entity, lead.uscc)
            permits = session.scalars(select(Permit).where(Permit.uscc == lead.uscc).order_by(Permit.permit_id)).all()
            accounts = session.scalars(select(Account).where(Account.uscc == lead.uscc)
                                       .order_by(Account.source, Account.account_id)).all()
            series_row = session.get(Series, lead.uscc)
            alerts = session.scalars(select(Alert).where(Alert.uscc == lead.uscc, Alert.run_id == run_id)
                                     .order_by(Alert.kind, Alert.alert_id)).all()
            verdicts = session.scalars(select(Verdict).where(Verdict.lead_id == lead.id).order_by(Verdict.id.desc())).all()
            officers = [] if p.is_officer else list(session.scalars(
                select(User.username).where(User.role == "officer", User.district == lead.district,
                                            User.active.is_(True)).order_by(User.username)))
        chart, since = None, None
        s = (series_row.series if series_row is not None else None) or {}
        months = list(s.get("month") or [])
        if months:
            since = shift_since(s)
            lines = [(key.removesuffix("_m3"), t(f"chart.{key.removesuffix('_m3')}", lang), list(s.get(key) or []), colour)
                     for key, colour in SERIES_COLOURS.items()]
            lines = [(k, lab, (v + [None] * len(months))[:len(months)], c) for k, lab, v, c in lines]
            chart = monthly_chart_svg(
                months, lines, monthly_quota(months, permits), since,
                {"unit": t("chart.unit", lang), "quota": t("chart.quota", lang), "since": t("chart.since", lang),
                 "title": t("lead.chart", lang)})
        may_record = (p.role in VERDICT_ROLES and lead.status != "closed"
                      and not (p.is_officer and lead.assigned_officer not in (None, p.username)))
        may_assign = p.role in ASSIGN_ROLES and lead.status != "closed" and (
            not p.is_officer or lead.assigned_officer is None)
        return render(
            ctx, "lead.html", status_code=status_code, lead=lead, entity=entity, permits=permits, accounts=accounts,
            chart=chart, since=since, reasons=_reasons(lead.reasons), alerts=alerts, verdicts=verdicts,
            may_record=may_record, may_assign=may_assign, officers=officers, assigned=assigned, outcomes=OUTCOMES,
            violation_types=VIOLATION_TYPES, form_error=form_error,
            form=form_values or {}, today=date.today().isoformat(), today_date=date.today(), show_score=not p.is_officer,
        )

    @r.get("/leads/{lead_id}", response_class=HTMLResponse)
    @guarded
    def lead(request: Request, lead_id: str):
        return lead_page(context(request), _lead_id(lead_id), assigned=request.query_params.get("assigned") == "1")

    @r.post("/leads/{lead_id}/verdict", response_class=HTMLResponse)
    async def verdict(request: Request, lead_id: str):
        form = await request.form()
        return await run_in_threadpool(save_verdict, request, lead_id, {k: str(v) for k, v in form.items()})

    @r.post("/leads/{lead_id}/assign", response_class=HTMLResponse)
    async def assign(request: Request, lead_id: str):
        form = await request.form()
        return await run_in_threadpool(assign_lead, request, lead_id, {k: str(v) for k, v in form.items()})

    @guarded
    def assign_lead(request: Request, lead_id: str, form: dict[str, str]):
        from serving.api import AssignIn, assign_lead  # the API's own request model and write: one code path

        ctx = context(request)
        check_csrf(ctx, form.get("csrf"))
        require_role(ctx, ASSIGN_ROLES)
        lid = _lead_id(lead_id)
        officer = ctx.principal.username if ctx.principal.is_officer else (form.get("officer") or "").strip()
        try:
            body = AssignIn(officer=officer)
        except ValidationError:
            raise ConsoleError(422, t("lead.assign_choose", ctx.lang)) from None
        with sessions(request) as session:
            assign_lead(session, lid, body, ctx.principal)
        return RedirectResponse(f"/leads/{lid}?assigned=1", status_code=303)

    @guarded
    def save_verdict(request: Request, lead_id: str, form: dict[str, str]):
        from serving.api import VerdictIn, record_verdict  # the API's own request model and write: one code path

        ctx = context(request)
        check_csrf(ctx, form.get("csrf"))
        require_role(ctx, VERDICT_ROLES)
        lead_id = _lead_id(lead_id)
        values = {"outcome": form.get("outcome") or None, "violation_type": form.get("violation_type") or None,
                  "note": (form.get("note") or "").strip() or None, "visited_on": form.get("visited_on") or None}
        if values["outcome"] != "violation":
            values["violation_type"] = None
        try:
            body = VerdictIn(**values)
        except ValidationError as exc:
            return lead_page(ctx, lead_id, status_code=422, form_values=values,
                             form_error=_verdict_error(exc, ctx.lang))
        with sessions(request) as session:
            record_verdict(session, lead_id, body, ctx.principal)
        return RedirectResponse(f"/queue?recorded={lead_id}", status_code=303)

    # -- supervisor dashboard --------------------------------------------------------------------------

    @r.get("/dashboard", response_class=HTMLResponse)
    @guarded
    def dashboard(request: Request):
        ctx = context(request)
        require_role(ctx, DASHBOARD_ROLES)
        lang = ctx.lang
        info = request.app.state.model.info
        run_id = info.run_id
        with sessions(request) as session:
            worked = or_(Lead.in_queue.is_(True), Lead.status != "new")
            by_ds = session.execute(select(Lead.district, Lead.status, func.count()).where(worked)
                                    .group_by(Lead.district, Lead.status)).all()
            in_queue = session.scalar(select(func.count()).select_from(Lead).where(Lead.in_queue.is_(True))) or 0
            work = session.execute(select(Lead.assigned_officer, Lead.status, func.count())
                                   .where(Lead.assigned_officer.is_not(None))
                                   .group_by(Lead.assigned_officer, Lead.status)).all()
            v_by_officer = session.execute(select(Verdict.officer, Verdict.outcome, func.count())
                                           .group_by(Verdict.officer, Verdict.outcome)).all()
            v_rows = session.execute(select(Verdict.visited_on, Verdict.outcome)).all()
            alerts = session.execute(select(Alert.kind, Alert.level, func.count()).where(Alert.run_id == run_id)
                                     .group_by(Alert.kind, Alert.level)).all()
            outbox_counts = dict(session.execute(select(OutboxMessage.status, func.count())
                                                 .group_by(OutboxMessage.status)).all())
            outbox_recent = session.scalars(select(OutboxMessage).order_by(
                (OutboxMessage.status != "failed"), OutboxMessage.created_at.desc(), OutboxMessage.message_id)
                .limit(10)).all()
            rights = session.scalars(select(WaterRight).where(WaterRight.run_id == run_id)
                                     .order_by(WaterRight.volume_m3.desc(), WaterRight.id).limit(12)).all()
            rights_total = session.scalar(select(func.count()).select_from(WaterRight)
                                          .where(WaterRight.run_id == run_id)) or 0
            names = dict(session.execute(select(Entity.uscc, Entity.name).where(Entity.uscc.in_(
                {w.seller_uscc for w in rights} | {w.buyer_uscc for w in rights}))).all()) if rights else {}

        # leads by district and status
        table: dict[str, dict[str, int]] = {}
        for d, st, n in by_ds:
            table.setdefault(d or "—", {})[st] = n
        district_rows = [(d, [(t(f"status.{st}", lang), table[d].get(st, 0), STATUS_COLOURS[st]) for st in LEAD_STATUSES])
                         for d in sorted(table)]
        # officer workload
        load: dict[str, dict[str, int]] = {}
        for officer, st, n in work:
            load.setdefault(officer, {"open": 0, "closed": 0, "violations": 0, "verdicts": 0})
            load[officer]["closed" if st == "closed" else "open"] += n
        for officer, outcome, n in v_by_officer:
            row = load.setdefault(officer, {"open": 0, "closed": 0, "violations": 0, "verdicts": 0})
            row["verdicts"] += n
            if outcome == "violation":
                row["violations"] += n
        workload_rows = [(o, [(t("dash.open_assigned", lang), v["open"], "#4299e1"),
                              (t("dash.closed", lang), v["closed"], "#38a169")]) for o, v in sorted(load.items())]
        # verdicts and hit rate by month (vectorised over all verdicts)
        months, counts, rates = [], [], []
        verdict_total, hits, visited = len(v_rows), 0, 0
        if v_rows:
            import pandas as pd

            vf = pd.DataFrame(v_rows, columns=["visited_on", "outcome"])
            vf["month"] = pd.to_datetime(vf["visited_on"]).dt.strftime("%Y-%m")
            vf["hit"] = (vf["outcome"] == "violation").astype(int)
            vf["decided"] = vf["outcome"].isin(["violation", "no_violation"]).astype(int)
            g = vf.groupby("month").agg(n=("outcome", "size"), hits=("hit", "sum"), decided=("decided", "sum"))
            months = g.index.tolist()
            counts = g["n"].astype(int).tolist()
            rates = [None if d == 0 else h / d for h, d in zip(g["hits"], g["decided"])]
            hits, visited = int(vf["hit"].sum()), int(vf["decided"].sum())
        hit_rate = hits / visited if visited else None
        # alerts by kind and level
        akinds: dict[str, dict[str, int]] = {}
        for kind, level, n in alerts:
            akinds.setdefault(kind, {})[level or "notice"] = n
        alert_rows = [(t(f"kind.{k}", lang), [(t(f"level.{lv}", lang), v.get(lv, 0), LEVEL_COLOURS.get(lv, "#a0aec0"))
                                              for lv in sorted(v, key=_level_rank)])
                      for k, v in sorted(akinds.items())]
        levels_seen = sorted({lv for v in akinds.values() for lv in v},
                             key=_level_rank)
        order = {"model": 0, "naive": 1, "random": 2}
        keys = sorted((k for k, v in (info.backtest or {}).items() if isinstance(v, (int, float, str))),
                      key=lambda k: (k.split(".")[0], order.get((k.split(".") + ["", ""])[1], 9), k))
        backtest = [(k, metric_label(k, lang), info.backtest[k]) for k in keys]
        return render(
            ctx, "dashboard.html", info=info,
            tiles={"in_queue": in_queue, "verdicts": verdict_total, "hit_rate": hit_rate, "hits": hits, "visited": visited,
                   "alerts": sum(n for _, _, n in alerts), "outbox": outbox_counts},
            district_chart=stacked_bars_svg(district_rows, "districts") if district_rows else None,
            district_table=[(d, table[d]) for d in sorted(table)], statuses=LEAD_STATUSES,
            workload_chart=stacked_bars_svg(workload_rows, "workload") if workload_rows else None,
            workload=sorted(load.items()),
            hit_chart=hit_rate_svg(months, counts, rates, {"verdicts": t("chart.verdicts", lang),
                                                           "hit_rate": t("chart.hit_rate", lang)}) if months else None,
            alert_chart=stacked_bars_svg(alert_rows, "alerts") if alert_rows else None, levels_seen=levels_seen,
            outbox_recent=outbox_recent, rights=rights, rights_total=rights_total, names=names, backtest=backtest,
        )

    return r


def _lead_id(text_: str | int) -> int:
    """A lead id from the path; anything else is a 404 page, not a validation error in JSON."""
    value = str(text_)
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise ConsoleError(404)
    return int(value)


def _verdict_error(exc: ValidationError, lang: str) -> str:
    """One line a person can act on, from the API model's validation errors."""
    messages = []
    for err in exc.errors():
        msg = str(err.get("msg", ""))
        if "violation_type is required" in msg:
            messages.append(t("lead.need_type", lang))
        elif "only goes with" in msg:
            messages.append(t("lead.type_only_violation", lang))
        elif "future" in msg:
            messages.append(t("lead.future_date", lang))
        else:
            field = ".".join(str(x) for x in err.get("loc", ()))
            messages.append(f"{t('lead.' + field, lang) if field else ''} {msg}".strip())
    return t("lead.invalid", lang, msg="；".join(messages))


