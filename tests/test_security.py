"""Each probe of issue #10's "Why" list, as a test, on SQLite and on the local PostgreSQL.

Tried as an integrator and an attacker would: tokens of deactivated, deleted or logged-out users, keys
from the source, guessed passwords, 20 concurrent verdicts on one lead, officers taking colleagues'
leads, re-publishing over the field's work, oversized bodies and NUL bytes. (Publishing a whole pipeline
run: ``test_publish_pipeline.py``; generated inputs on both databases: ``test_schemathesis.py``.)
"""

from __future__ import annotations

import shutil
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from console_forms import post_login
from serving.api import create_app
from serving.console import console_router
from serving.labels import verdict_labels
from serving.publish import publish_run
from serving.services import login as login_service
from serving.services import users
from serving.security import hash_password
from serving.settings import AuthSettings, ServingSettings
from serving.store import AuditLog, Lead, LeadEvent, User, Verdict, make_engine, session_factory
from test_api import SECRET, bearer
from test_store import empty_store_url, make_run  # noqa: F401 - the fixture is used by ``store``
from waterwatch.settings import Settings

PASSWORD = "a-long-test-password"
STAFF = {"sup": ("supervisor", None), "ana": ("analyst", None), "adm": ("admin", None),
         "off_dc": ("officer", "德城区"), "off_dc2": ("officer", "德城区"), "off_yc": ("officer", "禹城市")}


def make_settings(url: str, home, **auth) -> Settings:
    """A test service's settings: the cheapest argon2id (``test-only``: logins are many here) unless ``auth`` says."""
    s = Settings(home=home, database_url=url,
                 auth=AuthSettings(**{"secret_key": SECRET, "password_hash_cost": "test-only", **auth}),
                 serving=ServingSettings(run_check_seconds=0.0))
    s.model.officer_capacity_k = 20
    return s


class Store:
    """A published store (SQLite or PostgreSQL) with staff accounts (``staff``: these only), hashed at the
    settings' cost, and a service over it. ``ready``: the store holds them already (a copy of ``sqlite_store``)."""

    def __init__(self, url: str, tmp, staff=tuple(STAFF), ready: bool = False, **auth):
        self.url, self.tmp = url, tmp
        self.settings = make_settings(url, tmp, **auth)
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        if not ready:
            publish_run(make_run(tmp / "run1"), self.sessions, self.settings)
            with self.sessions() as s, s.begin():
                for name in staff:
                    role, district = STAFF[name]
                    users.create_user(s, name, PASSWORD, role, district, hash_cost=self.settings.auth.password_hash_cost)
        self.app = create_app(self.settings, self.sessions, routers=[console_router()], demo_users=False)
        self.client = TestClient(self.app)
        self.client.__enter__()

    def h(self, user: str) -> dict:
        return bearer(self.sessions, user)

    def leads(self, district: str, n: int = 1) -> list[int]:
        with self.sessions() as s:
            return list(s.scalars(select(Lead.id).where(Lead.district == district, Lead.in_queue.is_(True))
                                  .order_by(Lead.rank).limit(n)))

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.client.post("/api/v1/auth/token", data={"username": username, "password": password})

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.engine.dispose()


@pytest.fixture
def store(empty_store_url, tmp_path, request):  # noqa: F811 - pytest's fixture injection
    """On SQLite a copy of ``sqlite_store`` (conftest.py); on PostgreSQL migrated, published and staffed here."""
    from serving.store import upgrade_database

    copied = empty_store_url.startswith("sqlite:///")
    if copied:
        shutil.copyfile(request.getfixturevalue("sqlite_store"), empty_store_url.removeprefix("sqlite:///"))
    else:
        upgrade_database(empty_store_url)
    st = Store(empty_store_url, tmp_path, ready=copied)
    yield st
    st.close()


@contextmanager
def served(app):
    """The app behind a real uvicorn on a free port (requests run concurrently in its thread pool)."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- tokens are checked against the store -------------------------------------------------------------


def test_a_deactivated_or_deleted_users_token_stops_at_once(store):
    token = store.login("off_dc").json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    lead = store.leads("德城区")[0]
    assert store.client.get("/api/v1/leads", headers=h).status_code == 200
    with store.sessions() as s, s.begin():
        users.set_active(s, "off_dc", False)
    r = store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=h, json={"outcome": "no_violation"})
    assert r.status_code == 401
    with store.sessions() as s, s.begin():
        users.set_active(s, "off_dc", True)  # reactivation does not revive tokens issued before
    assert store.client.get("/api/v1/leads", headers=h).status_code == 401
    sup = store.h("sup")
    assert store.client.get("/api/v1/leads", headers=sup).status_code == 200
    with store.sessions() as s, s.begin():
        s.execute(delete(User).where(User.username == "sup"))  # a bulk statement, as an admin script would
    assert store.client.get("/api/v1/leads", headers=sup).status_code == 401
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Verdict)) == 0


def test_role_and_district_come_from_the_store_not_the_token(store):
    h = store.h("off_dc")
    assert {x["district"] for x in store.client.get("/api/v1/leads", headers=h).json()["items"]} == {"德城区"}
    with store.sessions() as s, s.begin():
        s.scalars(select(User).where(User.username == "off_dc")).one().district = "禹城市"
    assert {x["district"] for x in store.client.get("/api/v1/leads", headers=h).json()["items"]} == {"禹城市"}


def test_a_change_made_outside_the_service_counts_from_the_next_request(store):
    """Nothing about a user is kept between requests: plain SQL on another connection (no ORM session event
    the service could hear) demotes an admin and deactivates a key's user before the very next request."""
    h = store.h("adm")
    with store.sessions() as s, s.begin():
        key = users.create_api_key(s, "ana", "probe")
    assert store.client.post("/api/v1/admin/reload-model", headers=h).status_code == 200
    assert store.client.get("/api/v1/model", headers={"X-API-Key": key}).status_code == 200
    other = make_engine(store.url)
    try:
        with other.begin() as c:
            c.execute(update(User).where(User.username == "adm").values(role="analyst"))
            c.execute(update(User).where(User.username == "ana").values(active=False))
    finally:
        other.dispose()
    assert store.client.post("/api/v1/admin/reload-model", headers=h).status_code == 403
    assert store.client.get("/api/v1/model", headers={"X-API-Key": key}).status_code == 401


def test_logout_revokes_the_token_and_the_console_cookie(store):
    token = store.login("sup").json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert store.client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert store.client.get("/api/v1/model", headers=h).status_code == 401
    console = TestClient(store.app)
    assert post_login(console, "sup", PASSWORD, follow_redirects=False).status_code == 303
    cookie = console.cookies.get("ww_session")
    page = console.get("/dashboard").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert console.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    copy = TestClient(store.app)
    copy.cookies.set("ww_session", cookie)  # a copy of the cookie taken before the logout
    assert copy.get("/dashboard", follow_redirects=False).status_code == 303
    with store.sessions() as s:
        assert s.scalar(select(func.count()).where(AuditLog.action == "logout")) == 2


def test_no_signing_key_comes_from_the_source(store, tmp_path):
    old_source_key = "dev-only-secret-never-use-in-production"
    forged = jwt.encode({"sub": "adm", "uid": 3, "ver": 0, "jti": "x", "role": "admin",
                         "exp": datetime.now(timezone.utc) + timedelta(hours=1)}, old_source_key, algorithm="HS256")
    assert store.client.post("/api/v1/admin/reload-model", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    # without a configured key, each install creates its own random key under its home folder
    homes = [tmp_path / "a", tmp_path / "b"]
    apps = [create_app(Settings(home=h, database_url=f"sqlite:///{h}.db"), demo_users=False) for h in homes]
    keys = [(h / "secret_key").read_text() for h in homes]
    assert keys[0] != keys[1] and len(keys[0]) >= 48 and keys[0] == apps[0].state.secret_key
    assert oct((homes[0] / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_a_token_for_a_user_who_does_not_exist_is_refused(store):
    token = jwt.encode({"sub": "ghost", "uid": 999, "ver": 0, "jti": "x",
                        "exp": datetime.now(timezone.utc) + timedelta(hours=1)}, SECRET, algorithm="HS256")
    r = store.client.post("/api/v1/admin/reload-model", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_production_refuses_to_start_while_demo_logins_work(store):
    from serving.api.main import DemoLoginsInProduction

    with store.sessions() as s, s.begin():
        users.ensure_demo_users(s, production=False, districts=["德城区"], hash_cost="test-only")
    prod = make_settings(store.url, store.tmp, password_hash_cost="standard")
    prod.production = True
    with pytest.raises(DemoLoginsInProduction, match="supervisor"):
        with TestClient(create_app(prod, store.sessions)):
            pass
    with store.sessions() as s, s.begin():
        for name in users.demo_logins(s):
            users.set_active(s, name, False)
    with TestClient(create_app(prod, store.sessions)) as client:
        assert client.get("/health").status_code == 200


def test_production_refuses_the_test_suites_cheap_password_hashes(tmp_path):
    """``password_hash_cost="test-only"`` stays a test setting: production neither starts with it nor hashes a
    password with it (both refuse before the store is read), and the standard cost is argon2id's recommended."""
    prod = make_settings(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    prod.production = True
    assert prod.auth.password_hash_cost == "test-only" and AuthSettings().password_hash_cost == "standard"
    with pytest.raises(ValueError, match="password_hash_cost"):
        create_app(prod, demo_users=False)
    with pytest.raises(ValueError, match="password_hash_cost"):
        users.set_password(None, "sup", PASSWORD, production=True, hash_cost="test-only")
    assert hash_password(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not hash_password(PASSWORD, "test-only").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


# -- logins: throttling, equal work, audit ----------------------------------------------------------------


def test_guessing_locks_the_account_with_growing_waits(store, monkeypatch):
    """The default limits (5 failures, then 30 s, doubling), on a clock the test moves: no lockout waited out."""
    now = datetime.now(timezone.utc)
    monkeypatch.setattr(login_service, "utcnow", lambda: now)
    answers = [store.login("sup", f"wrong-{i}").status_code for i in range(10)]
    assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}
    r = store.login("sup")  # the right password while locked is refused too
    assert r.status_code == 429 and r.headers["retry-after"] == "30"
    now += timedelta(seconds=29)
    r = store.login("sup")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    now += timedelta(seconds=2)
    assert store.login("sup", "wrong-again").status_code == 401  # the sixth failure: now 60 s
    r = store.login("sup")
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    now += timedelta(seconds=59)
    assert store.login("sup").status_code == 429
    now += timedelta(seconds=2)
    assert store.login("sup").status_code == 200
    with store.sessions() as s:
        actions = [a for a, in s.execute(select(AuditLog.action).where(AuditLog.object_type == "login"))]
    assert actions.count("login_failed") == 6 and actions.count("login") == 1 and "login_locked" in actions


def test_unknown_and_known_users_cost_the_same_work(empty_store_url, tmp_path, report_metric):  # noqa: F811
    """At the standard (production) cost: the password check is then most of a login's work, so skipping it
    for an unknown name would show (before the dummy check: 48 ms against 292 ms)."""
    from serving.store import upgrade_database

    upgrade_database(empty_store_url)
    st = Store(empty_store_url, tmp_path, staff=("sup",), password_hash_cost="standard",
               login_max_failures=1000, login_address_max_failures=1000)
    try:
        def timed(username: str) -> float:
            t0 = time.perf_counter()
            assert st.login(username, "not-the-password").status_code == 401
            return time.perf_counter() - t0

        timed("sup"), timed("nobody")  # warm up
        pairs = [(timed("sup"), timed(f"nobody{i}")) for i in range(10)]  # interleaved: load hits both alike
        known, unknown = (statistics.median(x) for x in zip(*pairs))
        report_metric(f"login timing: wrong password {known * 1000:.0f} ms, unknown user {unknown * 1000:.0f} ms "
                      f"(median of 10, {st.engine.dialect.name})")
        assert 0.5 < unknown / known < 2.0
    finally:
        st.close()


def test_analysts_only_read(store):
    h = store.h("ana")
    lead = store.leads("德城区")[0]
    writes = [("post", f"/api/v1/leads/{lead}/assign", {"officer": "off_dc"}),
              ("post", f"/api/v1/leads/{lead}/start", None),
              ("post", f"/api/v1/leads/{lead}/verdicts", {"outcome": "no_violation"}),
              ("post", f"/api/v1/leads/{lead}/verdict/amend", {"outcome": "no_violation", "reason": "typo"}),
              ("post", f"/api/v1/leads/{lead}/reopen", {"reason": "again"}),
              ("post", "/api/v1/outbox/M1/sent", None), ("post", "/api/v1/outbox/M1/failed", {"error": "x"}),
              ("post", "/api/v1/admin/reload-model", None)]
    for method, path, body in writes:
        r = getattr(store.client, method)(path, headers=h, **({"json": body} if body else {}))
        assert r.status_code == 403, (path, r.status_code)
    for path in ("/api/v1/leads", "/api/v1/alerts", "/api/v1/outbox", "/api/v1/water-rights", "/api/v1/model",
                 f"/api/v1/leads/{lead}", "/api/v1/scores/913714000000000000"):
        assert store.client.get(path, headers=h).status_code == 200, path


# -- verdicts --------------------------------------------------------------------------------------------


def test_twenty_concurrent_verdicts_store_exactly_one(store, report_metric):
    lead = store.leads("德城区")[0]
    headers = [store.h("sup"), store.h("adm"), store.h("off_dc")]
    outcomes = ["violation", "no_violation"]  # conclusive ones (unreachable visits close nothing: test_lifecycle)
    barrier = threading.Barrier(20)
    with served(store.app) as base, httpx.Client(base_url=base, timeout=60) as client:
        def post(i: int) -> int:
            body = {"outcome": outcomes[i % 2], **({"violation_type": "private_well"} if i % 2 == 0 else {})}
            barrier.wait()
            return client.post(f"/api/v1/leads/{lead}/verdicts", headers=headers[i % 3], json=body).status_code

        with ThreadPoolExecutor(20) as pool:
            codes = sorted(pool.map(post, range(20)))
    report_metric(f"20 concurrent verdicts on one lead ({store.engine.dialect.name}): "
                  f"{codes.count(201)} x 201, {codes.count(409)} x 409")
    assert codes == [201] + [409] * 19
    with store.sessions() as s:
        assert s.scalar(select(func.count()).where(Verdict.lead_id == lead)) == 1
        assert len(verdict_labels(s)) == 1
        assert s.scalar(select(func.count()).where(LeadEvent.lead_id == lead, LeadEvent.event == "verdict")) == 1


def test_a_closed_lead_accepts_no_more_verdicts(store):
    lead = store.leads("德城区")[0]
    first = store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=store.h("off_dc"),
                              json={"outcome": "no_violation"})
    assert first.status_code == 201
    r = store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=store.h("sup"),
                          json={"outcome": "violation", "violation_type": "private_well"})
    assert r.status_code == 409 and "amend" in r.json()["detail"]


def test_an_officer_cannot_take_a_colleagues_lead(store):
    lead = store.leads("德城区")[0]
    assert store.client.post(f"/api/v1/leads/{lead}/assign", headers=store.h("off_dc"),
                             json={"officer": "off_dc"}).status_code == 200
    assert store.client.post(f"/api/v1/leads/{lead}/start", headers=store.h("off_dc")).status_code == 200
    r = store.client.post(f"/api/v1/leads/{lead}/assign", headers=store.h("off_dc2"), json={"officer": "off_dc2"})
    assert r.status_code == 403
    r = store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=store.h("off_dc2"), json={"outcome": "no_violation"})
    assert r.status_code == 403
    r = store.client.post(f"/api/v1/leads/{lead}/assign", headers=store.h("sup"), json={"officer": "off_dc2"})
    assert r.status_code == 200 and r.json()["assigned_officer"] == "off_dc2"


def test_corrections_only_by_a_supervisor_with_a_reason(store):
    lead = store.leads("德城区")[0]
    visited = (date.today() - timedelta(days=2)).isoformat()
    store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=store.h("off_dc"),
                      json={"outcome": "no_violation", "visited_on": visited})
    amend = {"outcome": "violation", "violation_type": "meter_tampering", "reason": "复核发现计量表被改装"}
    assert store.client.post(f"/api/v1/leads/{lead}/verdict/amend", headers=store.h("off_dc"),
                             json=amend).status_code == 403
    assert store.client.post(f"/api/v1/leads/{lead}/verdict/amend", headers=store.h("sup"),
                             json={**amend, "reason": ""}).status_code == 422
    r = store.client.post(f"/api/v1/leads/{lead}/verdict/amend", headers=store.h("sup"), json=amend)
    assert r.status_code == 200 and r.json()["outcome"] == "violation" and r.json()["amended_at"]
    r = store.client.post(f"/api/v1/leads/{lead}/reopen", headers=store.h("sup"), json={"reason": "需要再次核查"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["assigned_officer"]) == ("assigned", "off_dc")
    again = store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=store.h("off_dc"),
                              json={"outcome": "unreachable"})
    assert again.status_code == 201 and again.json()["round"] == 2
    with store.sessions() as s:
        logged = {a.action: a.detail for a in s.scalars(select(AuditLog).where(AuditLog.object_id == str(lead)))}
        labels = verdict_labels(s)
    assert logged["verdict_amend"]["reason"] == "复核发现计量表被改装"
    assert logged["verdict_amend"]["before"]["outcome"] == "no_violation"
    assert logged["verdict_amend"]["after"]["violation_type"] == "meter_tampering"
    assert logged["reopen"]["reason"] == "需要再次核查"
    assert labels["outcome"].tolist() == ["unreachable"]  # the superseded verdict is no longer a label
    detail = store.client.get(f"/api/v1/leads/{lead}", headers=store.h("sup")).json()
    assert [v["superseded"] for v in detail["verdicts"]] == [True, False]
    assert [e["event"] for e in detail["history"]] == ["queued", "verdict", "amended", "reopened", "verdict"]


# -- re-publishing ----------------------------------------------------------------------------------------


def test_closed_leads_take_no_queue_slots_in_the_next_run(store):
    queue = store.leads("德城区", n=20)
    with store.sessions() as s, s.begin():
        for lead in s.scalars(select(Lead).where(Lead.id.in_(queue))):
            lead.status, lead.in_queue = "closed", False
            s.add(Verdict(lead_id=lead.id, uscc=lead.uscc, officer="off_dc", outcome="no_violation",
                          visited_on=date(2026, 7, 3), queue_probability=lead.queue_probability))
    publish_run(make_run(store.tmp / "run2", version="4", as_of="2026-08-01"), store.sessions, store.settings)
    items = store.client.get("/api/v1/leads", headers=store.h("off_dc"), params={"page_size": 100}).json()["items"]
    assert len(items) == 20 and {x["status"] for x in items} == {"new"} and not set(queue) & {x["id"] for x in items}


def test_a_publish_never_overwrites_verdicts_recorded_meanwhile(store):
    leads = store.leads("德城区", n=10) + store.leads("禹城市", n=10)
    sup = store.h("sup")
    runs = [make_run(store.tmp / f"run{i}", version=str(4 + i), shift=i, as_of=f"2026-{8 + i:02d}-01")
            for i in range(3)]
    with served(store.app) as base, httpx.Client(base_url=base, timeout=120) as client:
        def post(lead: int) -> int:
            return client.post(f"/api/v1/leads/{lead}/verdicts", headers=sup, json={"outcome": "no_violation"}).status_code

        def publish_all() -> None:
            for run in runs:
                publish_run(run, store.sessions, store.settings)

        with ThreadPoolExecutor(8) as pool:
            published = pool.submit(publish_all)
            codes = list(pool.map(post, leads))
            published.result()
    assert codes == [201] * len(leads)
    with store.sessions() as s:
        rows = s.scalars(select(Lead).where(Lead.id.in_(leads))).all()
        assert {(x.status, x.in_queue) for x in rows} == {("closed", False)}
        events = s.execute(select(LeadEvent.lead_id).where(LeadEvent.lead_id.in_(leads), LeadEvent.event == "verdict"))
        assert sorted(lid for lid, in events) == sorted(leads)


def test_the_service_follows_a_publish_without_a_reload(store):
    store.settings.serving.run_check_seconds = 0.3
    app = create_app(store.settings, store.sessions, demo_users=False)
    with TestClient(app) as client:
        h = store.h("sup")
        assert client.get("/api/v1/model", headers=h).json()["version"] == "3"
        publish_run(make_run(store.tmp / "run2", version="4", as_of="2026-08-01"), store.sessions, store.settings)
        time.sleep(0.4)
        assert client.get("/api/v1/model", headers=h).json()["version"] == "4"
        assert client.get("/health").json()["model_version"] == "4"


# -- input -------------------------------------------------------------------------------------------------


def test_body_limit_applies_before_parsing_and_before_authentication(store):
    big = b"x" * (2 << 20)
    for path in ("/api/v1/leads/1/verdicts", "/api/v1/auth/token", "/login"):
        r = store.client.post(path, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413, path  # not 401: no credential was even looked at
    # batch scoring has its own, larger limit
    codes = [f"91371400{i:010d}" for i in range(300)]
    body = {"usccs": (codes * 400)[:9_000]}
    r = store.client.post("/api/v1/scores/batch", headers=store.h("sup"), json=body)
    assert r.status_code == 200
    huge = b'{"usccs": ["' + b"9" * (20 << 20) + b'"]}'
    assert store.client.post("/api/v1/scores/batch", content=huge,
                             headers={"content-type": "application/json"}).status_code == 413
    # a declared length over the limit is refused before the body is sent
    with served(store.app) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /api/v1/leads/1/verdicts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 104857600\r\n\r\n{")
            assert sock.recv(200).startswith(b"HTTP/1.1 413")


def test_nul_bytes_and_malformed_text_are_4xx_on_every_backend(store):
    sup, lead = store.h("sup"), store.leads("德城区")[0]
    probes = [
        store.client.post("/api/v1/auth/token", data={"username": "sup\x00", "password": PASSWORD}),
        store.client.post("/api/v1/auth/token", data={"username": "sup", "password": "x\x00y"}),
        store.client.get("/api/v1/leads?district=%00", headers=sup),
        store.client.get("/api/v1/leads?district=%FF%FE", headers=sup),
        store.client.get("/api/v1/alerts?kind=a%00b", headers=sup),
        store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=sup,
                          content=b'{"outcome": "no_violation", "note": "a\\u0000b"}'),
        store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=sup,
                          content=b'{"outcome": "no_violation", "note": "\\ud800"}'),
        store.client.post(f"/api/v1/leads/{lead}/assign", headers=sup, content=b'{"officer": "\\ud800x"}'),
        store.client.post("/api/v1/outbox/M1/failed", headers=sup, content=b'{"error": "\\u0000"}'),
        store.client.post("/login", data={"username": "sup\x00", "password": "x"}),
        store.client.get("/queue?q=%00"),
        store.client.get("/static/%00console.css"),
    ]
    assert all(400 <= r.status_code < 500 for r in probes), [r.status_code for r in probes]
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Verdict)) == 0


def test_console_pages_carry_security_headers(store):
    console = TestClient(store.app)
    for r in (console.get("/login"), console.post("/login", data={"username": "sup", "password": PASSWORD}),
              console.get("/queue"), console.get("/static/console.css")):
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
