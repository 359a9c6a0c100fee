"""Same-origin check of the console's forms: a POST whose ``Origin`` (or, without one, ``Referer``) names another
origin than the service's is refused (403) before its form is read.

The CSRF token of each form is bound to a cookie (the session, or the login page's ``ww_login`` nonce), which stops
another *site*. It does not stop a host on a sibling subdomain (``evil.example.gov.cn`` beside
``waterwatch.example.gov.cn``): that is the same site, so it can plant cookies for the parent domain (a nonce it
fetched from our login page, with the token that goes with it) and its posts carry our SameSite=Lax cookies. What no
page can do is make a browser send our origin in ``Origin``.

The service's own origin is the one the request was sent to: its scheme and its ``Host`` header (a browser writes
the host it is talking to; a page cannot choose it). A reverse proxy that rewrites the Host or ends TLS without
passing the scheme on makes the public address differ from it: ``serving.trusted_origins`` lists such addresses.

A request with neither header is let through, still needing its form's token: every browser the console supports
sends ``Origin`` with a form's POST (the service's ``Referrer-Policy: same-origin`` turns a cross-origin one into
``Origin: null``, which is refused, never into no header), so a CSRF, which needs the victim's browser, always
carries one. A request without it is a script or a test client (httpx, curl) acting for itself, which the token
and its cookie already bind; refusing it would protect no user. The API's bearer-token and API-key calls carry no
cookie a page could ride and are not console routes: this check does not touch them.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from fastapi import Request

from serving.deps import SESSION_COOKIE, session_user
from serving.errors import Forbidden
from serving.settings import DEFAULT_PORTS, normalise_origin

LOG = logging.getLogger(__name__)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATH = "/login"  # the one form posted without a session


class OriginRefused(Forbidden):
    """A console form sent from a page of another origin."""


def own_origin(request: Request) -> str:
    """The origin the request was sent to: its scheme and Host (Starlette's URL, built from both)."""
    url = request.url
    host = url.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = url.port
    return f"{url.scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS.get(url.scheme) else "")


def sent_origin(request: Request) -> str | None:
    """The origin the browser says the request comes from: ``Origin``, else ``Referer``'s scheme and host; None when
    neither header is there. A value that is no http(s) origin (``null``: a sandboxed page, a ``data:`` URL, a
    cross-origin post under ``no-referrer``) is returned as written, so that it matches nothing."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return None
        parts = urlsplit(referer.strip())
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else referer
    try:
        return normalise_origin(origin)
    except ValueError:
        return origin.strip()[:200] or "(empty)"


def trusted_origins(request: Request) -> list[str]:
    serving = getattr(request.app.state.settings, "serving", None)
    return list(getattr(serving, "trusted_origins", None) or [])


def foreign_origin(request: Request) -> str | None:
    """The origin a state-changing request was sent from when it is not this service's (None: same origin, a trusted
    one, a safe method, or no header at all)."""
    if request.method not in UNSAFE_METHODS:
        return None
    sent = sent_origin(request)
    if sent is None or sent == own_origin(request) or sent in trusted_origins(request):
        return None
    return sent


async def refuse_foreign_origin(request: Request) -> None:
    """OriginRefused when a console form comes from another origin. A form that needs a session and comes without a
    valid one goes to the login form first, as it always has (NotAuthenticated): it can change nothing, and the
    login form's own post is checked here in turn."""
    sent = foreign_origin(request)
    if sent is None:
        return
    if request.url.path != LOGIN_PATH:
        await session_user(request, request.cookies.get(SESSION_COOKIE))
    own = own_origin(request)
    LOG.warning("console %s %s refused: sent from %s, not %s or a trusted origin", request.method, request.url.path,
                sent, own)
    raise OriginRefused(
        f"请求来自 {sent}，不是本服务的地址 {own}，已拒绝：请在本服务的页面上提交。如本服务位于反向代理之后，请把代理的"
        f"对外地址加入 serving.trusted_origins（WATERWATCH_SERVING__TRUSTED_ORIGINS） (refused: the form was sent from "
        f"{sent}, not from this service's {own}; submit it from this service's own pages. Behind a reverse proxy, "
        f"add the proxy's public address to serving.trusted_origins, WATERWATCH_SERVING__TRUSTED_ORIGINS)")
