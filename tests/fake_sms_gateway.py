"""A fake SMS gateway for the tests: a real HTTP server on a free loopback port that speaks the protocol of
``serving.sms.senders`` and misbehaves at random, as a city gateway on a bad day does.

Faults, drawn per request with a seeded generator: 503 before accepting, 500 *after* accepting (the client
cannot tell it went through), a dropped connection, 429 with Retry-After, and answers slower than the
client's timeout, before or after accepting. It remembers every key it accepted (the idempotency that a
real gateway gives) and counts, per key, the requests, the faults it injected and the texts it delivered
to a handset, so that a test can check "nothing sent twice, nothing lost" from the gateway's side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("fail_before", "fail_after", "drop", "throttle", "slow_before", "slow_after")


@dataclass
class GatewayLog:
    posts: Counter = field(default_factory=Counter)  # requests per key
    faults: Counter = field(default_factory=Counter)  # faults injected per key
    fault_kinds: Counter = field(default_factory=Counter)  # faults injected per kind
    delivered: Counter = field(default_factory=Counter)  # texts that reached a handset, per key
    accepted: dict = field(default_factory=dict)  # key -> the accepted request body
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeGateway:
    """``with FakeGateway(fault_rate=0.3, seed=1) as gw: gw.url ...``"""

    def __init__(self, fault_rate: float = 0.0, seed: int = 0, slow_seconds: float = 0.6, app_id: str = "bureau",
                 secret: str = "gateway-secret", faults: tuple[str, ...] = FAULTS, reject_to: str | None = None):
        self.fault_rate, self.slow_seconds, self.app_id, self.secret = fault_rate, slow_seconds, app_id, secret
        self.faults, self.reject_to = faults, reject_to
        self.rng = random.Random(seed)
        self.log = GatewayLog()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeGateway":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _draw(self) -> str | None:
        with self.log.lock:
            return self.rng.choice(self.faults) if self.rng.random() < self.fault_rate else None

    def _handler(self):
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def do_GET(self):
                key = self.path.rsplit("/", 1)[-1]
                with gw.log.lock:
                    body = gw.log.accepted.get(key)
                if body is None:
                    return self._answer(404, {"error": "unknown message"})
                status = "undeliverable" if gw.reject_to and body.get("to") == gw.reject_to else "delivered"
                return self._answer(200, {"id": f"gw-{key}", "status": status})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key") or ""
                ts = self.headers.get("X-Timestamp") or ""
                payload = f"{ts}\n{key}\n{hashlib.sha256(raw).hexdigest()}".encode()
                expected = hmac.new(gw.secret.encode(), payload, hashlib.sha256).hexdigest()
                if self.headers.get("X-App-Id") != gw.app_id or not hmac.compare_digest(
                        self.headers.get("X-Signature") or "", expected):
                    with gw.log.lock:
                        gw.log.bad_signatures += 1
                    return self._answer(401, {"error": "bad signature"})
                body = json.loads(raw)
                if body.get("message_id") != key or not body.get("text") or not body.get("sign_name"):
                    return self._answer(422, {"error": "message_id, text and sign_name are required"})
                fault = gw._draw()
                with gw.log.lock:
                    gw.log.posts[key] += 1
                    if fault:
                        gw.log.faults[key] += 1
                        gw.log.fault_kinds[fault] += 1
                if fault == "fail_before":
                    return self._answer(503, {"error": "upstream busy"})
                if fault == "throttle":
                    return self._answer(429, {"error": "slow down"}, {"Retry-After": "0"})
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                if fault == "slow_before":
                    time.sleep(gw.slow_seconds)
                    return self._answer(503, {"error": "too slow"})
                with gw.log.lock:  # accept: a key reaches a handset once, however often it is posted
                    first = key not in gw.log.accepted
                    if first:
                        gw.log.accepted[key] = body
                        gw.log.delivered[key] += 1
                if fault == "fail_after":
                    return self._answer(500, {"error": "internal error"})
                if fault == "slow_after":
                    time.sleep(gw.slow_seconds)
                if not first:
                    return self._answer(409, {"id": f"gw-{key}", "error": "duplicate key"})
                return self._answer(202, {"id": f"gw-{key}", "status": "accepted"})

        return Handler
