"""The service's edge, before routing and before any credential is looked at: URLs carrying NUL bytes or
text that is not UTF-8 are refused (400), and every answer carries the security headers (a content
security policy that allows only this service's own scripts, styles and frames, no framing, no sniffing).

Request bodies are limited by FastAPI's ``max_body_size`` (set in ``create_app``), which answers 413 from
the Content-Length alone, before the body is read; NUL bytes and malformed text inside bodies are refused
by the request models (``schemas.Text``).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"same-origin")]
# the API docs (serving.api.docs) load only this service's own files too; ReDoc's search runs in a worker it
# makes from its own (self-served) bundle as a blob: that one page may start such a worker
REDOC_CSP = CSP + "; worker-src 'self' blob:"
_NUL = re.compile(rb"%00|\x00")


def _bad_text(raw: bytes) -> bool:
    """NUL bytes, encoded or not, or percent-escapes that do not decode to UTF-8."""
    if _NUL.search(raw):
        return True
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class EdgeGuard:
    """Pure ASGI middleware: refuses bad URLs, adds the security headers to every response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
        if _bad_text(raw_path) or _bad_text(scope.get("query_string", b"")) or "\x00" in scope.get("path", ""):
            await _refuse(send)
            return
        policy = (REDOC_CSP if scope.get("path", "") == "/redoc" else CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS, (b"content-security-policy", policy)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send) -> None:
    body = json.dumps({"detail": "请求地址含有空字符或无效编码 (the URL holds a NUL byte or text that is not UTF-8)"},
                      ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS,
               (b"content-security-policy", CSP.encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
