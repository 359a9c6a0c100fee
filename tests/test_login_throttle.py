"""Login throttling on SQLite and on the local PostgreSQL: parallel guesses get no more password checks than
the limit (and no 500), counts are exact, and failures older than the window start the count afresh, so an
office behind one address is never locked by typos spread over weeks."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from serving.api import create_app
from serving.settings import AuthSettings
from serving.services import login as login_service
from serving.services import users
from serving.store import LoginThrottle, make_engine, session_factory, upgrade_database, utcnow
from test_security import PASSWORD, make_settings, served
from test_store import empty_store_url  # noqa: F401 - the fixture is used by ``service``

USER_WINDOW = AuthSettings().login_failure_window_seconds / 60  # minutes: a day
ADDRESS_WINDOW = AuthSettings().login_address_failure_window_seconds / 60  # 15


class Service:
    """An empty store with two users and the API over it (no published run: logins need none), the passwords
    hashed at the test settings' cheap cost (the throttle, not argon2, is under test here)."""

    def __init__(self, url: str, tmp, **auth):
        upgrade_database(url)
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        settings = make_settings(url, tmp, **auth)
        with self.sessions() as s, s.begin():
            for name, role, district in (("sup", "supervisor", None), ("off", "officer", "德城区")):
                users.create_user(s, name, PASSWORD, role, district, hash_cost=settings.auth.password_hash_cost)
        self.app = create_app(settings, self.sessions, demo_users=False)
        self.client = TestClient(self.app)

    def login(self, username: str, password: str = PASSWORD) -> int:
        return self.client.post("/api/v1/auth/token", data={"username": username, "password": password}).status_code

    def row(self, key: str) -> LoginThrottle | None:
        with self.sessions() as s:
            return s.get(LoginThrottle, key)

    def age(self, key: str, minutes: float, locked_minutes_ago: float | None = None) -> None:
        """Make ``key``'s last failure (and, if given, the end of its lockout) that many minutes old."""
        values = {"updated_at": utcnow() - timedelta(minutes=minutes)}
        if locked_minutes_ago is not None:
            values["locked_until"] = utcnow() - timedelta(minutes=locked_minutes_ago)
        with self.sessions() as s, s.begin():
            s.execute(update(LoginThrottle).where(LoginThrottle.key == key).values(**values))


@pytest.fixture
def service(empty_store_url, tmp_path, request):  # noqa: F811 - pytest's fixture injection
    auth = getattr(request, "param", {})
    svc = Service(empty_store_url, tmp_path, **{"login_max_failures": 3, "login_address_max_failures": 5,
                                                "lockout_seconds": 60, **auth})
    yield svc
    svc.engine.dispose()


@pytest.fixture
def checks(monkeypatch):
    """Counts the password checks the service makes."""
    done = Counter()
    lock = threading.Lock()
    verify = login_service.verify_password

    def counted(*args):
        with lock:
            done["checks"] += 1
        return verify(*args)

    monkeypatch.setattr(login_service, "verify_password", counted)
    return done


def _parallel(app, n: int, body) -> Counter:
    barrier = threading.Barrier(n)
    with served(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        def post(i: int) -> int:
            barrier.wait()
            return client.post("/api/v1/auth/token", data=body(i)).status_code

        with ThreadPoolExecutor(n) as pool:
            return Counter(pool.map(post, range(n)))


# -- parallel guesses: at the standard argon2id cost, whose slow check is the window a race would use ------------


@pytest.mark.parametrize("service", [{"login_max_failures": 5, "login_address_max_failures": 1000,
                                      "password_hash_cost": "standard"}], indirect=True)
def test_thirty_parallel_guesses_check_five_passwords(service, checks, report_metric):
    codes = _parallel(service.app, 30, lambda i: {"username": "sup", "password": f"wrong-{i}"})
    report_metric(f"30 parallel wrong passwords, limit 5 ({service.engine.dialect.name}): {dict(codes)}, "
                  f"{checks['checks']} password checks")
    assert codes == {401: 5, 429: 25} and checks["checks"] == 5
    user, address = service.row("user:sup"), service.row("addr:127.0.0.1")
    assert user.failures == 5 and user.locked_until > utcnow() and address.failures == 5
    assert service.login("sup") == 429  # the right password too, while locked


@pytest.mark.parametrize("service", [{"password_hash_cost": "standard"}], indirect=True)
def test_parallel_guesses_on_many_names_stop_at_the_address_limit(service, checks):
    codes = _parallel(service.app, 20, lambda i: {"username": f"nobody{i}", "password": "x"})
    assert codes == {401: 5, 429: 15} and checks["checks"] == 5
    assert service.row("addr:127.0.0.1").failures == 5
    with service.sessions() as s:  # an attempt refused by the address counts on no username either
        counted = list(s.scalars(select(LoginThrottle.failures).where(LoginThrottle.key.like("user:%"))))
    assert counted == [1] * 5


# -- the window ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", [{"login_address_max_failures": 100}], indirect=True)
def test_a_usernames_failures_expire_after_the_window(service):
    assert [service.login("sup", "wrong") for _ in range(2)] == [401, 401]
    service.age("user:sup", minutes=USER_WINDOW - 1)  # within the window: still counted
    assert service.login("sup", "wrong") == 401 and service.row("user:sup").locked_until is not None
    service.age("user:sup", minutes=USER_WINDOW + 1, locked_minutes_ago=1)  # lockout ended a minute ago
    assert service.login("sup", "wrong") == 401
    assert service.row("user:sup").failures == 4  # counted on from the lockout's end: doubled
    service.age("user:sup", minutes=USER_WINDOW + 60, locked_minutes_ago=USER_WINDOW + 1)
    assert service.login("sup", "wrong") == 401 and service.row("user:sup").failures == 1  # afresh
    assert service.login("sup") == 200 and service.row("user:sup") is None


def test_an_offices_typos_over_weeks_never_lock_its_address(service):
    for i in range(12):  # an office behind one proxy: a typo now and then, logins between them
        assert service.login(f"typo-{i}", "x") == 401
        assert service.login("off") == 200 and service.row("addr:testclient").failures == 1  # not counted
        service.age("addr:testclient", minutes=ADDRESS_WINDOW + 1)
        assert service.login("sup") == 200  # a success keeps no old typo alive
    assert service.login("someone", "x") == 401 and service.row("addr:testclient").failures == 1


def test_a_burst_locks_the_address_and_old_lockouts_pass(service):
    with service.sessions() as s, s.begin():  # the state the reviewer found: 49 old failures, locked long ago
        s.add(LoginThrottle(key="addr:testclient", failures=49, locked_until=utcnow() - timedelta(days=29),
                            updated_at=utcnow() - timedelta(days=30)))
    assert service.login("sup") == 200 and service.login("someone", "x") == 401
    assert service.row("addr:testclient").failures == 1
    assert [service.login(f"guess-{i}", "x") for i in range(5)] == [401] * 4 + [429]  # the fifth in the window
    assert service.login("off") == 429
