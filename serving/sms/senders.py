"""Senders: how one outbox message leaves the platform.

``FileSender`` (the embedded default) appends each message as one JSON line to a file under the home folder;
``HttpGatewaySender`` posts it to the city's SMS gateway. Both are idempotent on the message's key: a message
handed over twice (a retry after a timeout, a second ``waterwatch send`` racing the first) reaches the
recipient once, because the file sender skips keys it already wrote and the gateway protocol carries the key
as ``Idempotency-Key``.

The gateway protocol (what a city's gateway, or its adapter, implements):

``POST <gateway_url>/messages`` with a JSON body ``{"message_id", "to", "uscc", "sign_name", "text"}`` and the headers ``Idempotency-Key: <message_id>``, ``X-App-Id``, ``X-Timestamp`` and
``X-Signature`` = hex HMAC-SHA256 of ``"<timestamp>\\n<message_id>\\n<sha256 of the body>"`` with the
shared secret. The text is sent without its 【signature】: the gateway adds ``sign_name`` (its registered
signature, e.g. 聊城市水利局) and splits long texts into segments. Answers: 2xx ``{"id", "status"}`` with status ``accepted`` or ``delivered``;
409 the key was already accepted (the same message, not sent again); 400/401/403/404/413/422 refused for
good; 408/425/429/5xx, a timeout or a dropped connection: try again later with the same key.

``GET <gateway_url>/messages/<message_id>`` answers ``{"id", "status"}`` (``accepted``, ``delivered`` or
``undeliverable``), 404 when the gateway never accepted that key.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

SIGNATURE_PREFIX = re.compile(r"^\s*【[^】]{1,30}】")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

Outcome = Literal["accepted", "delivered", "retry", "rejected"]
Delivery = Literal["accepted", "delivered", "undeliverable", "unknown"]


@dataclass(frozen=True)
class SmsMessage:
    """One message to send; ``key`` is its idempotency key (the outbox message id, plus the resend round)."""

    key: str
    recipient: str
    uscc: str | None
    text: str
    signature: str | None = None  # signs this message instead of the sender's (a province city's own bureau)


@dataclass(frozen=True)
class SendResult:
    """What a sender learnt: ``accepted``/``delivered`` (done), ``retry`` (try again later with the same key),
    ``rejected`` (the gateway refused it for good)."""

    outcome: Outcome
    gateway_id: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        return self.outcome in ("accepted", "delivered")


class Sender(Protocol):
    name: str

    def send(self, message: SmsMessage) -> SendResult: ...

    def delivery(self, key: str) -> Delivery: ...


def body_text(text: str) -> str:
    """The message without a leading 【signature】 (the configured one is added by the sender or gateway)."""
    return SIGNATURE_PREFIX.sub("", text or "", count=1).strip()


def own_signature(text: str) -> str | None:
    """The signature a message's text starts with (【德州市水利局】…: 德州市水利局), None when it has none."""
    found = SIGNATURE_PREFIX.match(text or "")
    return found.group(0).strip()[1:-1] if found else None


def signed_text(text: str, signature: str) -> str:
    """The text as the recipient reads it: 【signature】 and the body, whatever signature the run wrote."""
    return f"【{signature}】{body_text(text)}" if signature else (text or "")


@dataclass
class FileSender:
    """Appends each message as one JSON line to ``path`` (no network: the embedded default). Idempotent: a key
    already in the file is not written again."""

    path: Path
    signature: str
    name: str = "file"
    _keys: set[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _known(self) -> set[str]:
        if self._keys is None:
            self._keys = set()
            if self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        self._keys.add(json.loads(line)["message_id"])
                    except (ValueError, KeyError, TypeError):
                        continue
        return self._keys

    def send(self, message: SmsMessage) -> SendResult:
        with self._lock:
            keys = self._known()
            if message.key not in keys:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                record = {"message_id": message.key, "to": message.recipient, "uscc": message.uscc,
                          "text": signed_text(message.text, message.signature or self.signature),
                          "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                keys.add(message.key)
        return SendResult("delivered", gateway_id=message.key)

    def delivery(self, key: str) -> Delivery:
        with self._lock:
            return "delivered" if key in self._known() else "unknown"


def request_signature(secret: str, timestamp: str, key: str, body: bytes) -> str:
    payload = f"{timestamp}\n{key}\n{hashlib.sha256(body).hexdigest()}".encode("utf-8")
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


@dataclass
class HttpGatewaySender:
    """Posts each message to the SMS gateway (see the module's protocol). Never raises for a network or
    gateway failure: it answers ``retry`` or ``rejected`` with the reason."""

    url: str
    signature: str
    app_id: str = ""
    secret: str = ""
    timeout: float = 5.0
    name: str = "http"

    def _headers(self, key: str, body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key, "X-Timestamp": ts,
                   "Accept": "application/json"}
        if self.app_id:
            headers["X-App-Id"] = self.app_id
        if self.secret:
            headers["X-Signature"] = request_signature(self.secret, ts, key, body)
        return headers

    def _call(self, method: str, path: str, key: str, body: bytes | None) -> tuple[int, dict, dict]:
        req = urllib.request.Request(self.url.rstrip("/") + path, data=body, method=method,
                                     headers=self._headers(key, body or b""))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - configured URL
                return resp.status, _json(resp.read()), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read()), dict(exc.headers or {})

    def send(self, message: SmsMessage) -> SendResult:
        text = body_text(message.text)
        payload = {"message_id": message.key, "to": message.recipient, "uscc": message.uscc,
                   "sign_name": message.signature or self.signature, "text": text}
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            status, answer, headers = self._call("POST", "/messages", message.key, body)
        except (TimeoutError, socket.timeout) as exc:
            return SendResult("retry", error=f"timeout after {self.timeout:g} s ({type(exc).__name__})")
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as exc:
            return SendResult("retry", error=f"connection: {getattr(exc, 'reason', exc)}")
        gateway_id = str(answer.get("id")) if answer.get("id") is not None else None
        if 200 <= status < 300:
            return SendResult("delivered" if answer.get("status") == "delivered" else "accepted", gateway_id)
        if status == 409:  # the gateway already holds this key: the earlier attempt went through
            return SendResult("accepted", gateway_id, error=None)
        detail = str(answer.get("error") or answer.get("detail") or "")[:300]
        if status in RETRY_STATUSES:
            return SendResult("retry", error=f"HTTP {status} {detail}".strip(), retry_after=_retry_after(headers))
        return SendResult("rejected", gateway_id, error=f"HTTP {status} {detail}".strip())

    def delivery(self, key: str) -> Delivery:
        try:
            status, answer, _ = self._call("GET", "/messages/" + urllib.parse.quote(key, safe=""), key, None)
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            return "unknown"
        if status == 200 and answer.get("status") in ("accepted", "delivered", "undeliverable"):
            return answer["status"]
        return "unknown"


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw.decode("utf-8") or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(headers: dict) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def make_sender(sms, home: Path, signature: str) -> Sender:
    """The sender ``sms`` (``SmsSettings``) configures, signing with ``signature``."""
    if sms.sender == "http":
        if not sms.gateway_url:
            raise ValueError("sms.sender is http but no gateway URL is set: set WATERWATCH_SMS__GATEWAY_URL")
        secret = sms.gateway_secret.get_secret_value() if sms.gateway_secret is not None else ""
        return HttpGatewaySender(sms.gateway_url, signature, sms.gateway_app_id or "", secret, sms.timeout_seconds)
    return FileSender(Path(sms.file_path) if sms.file_path else Path(home) / "sms" / "sent.jsonl", signature)
