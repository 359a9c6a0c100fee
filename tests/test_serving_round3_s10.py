"""Review of serving/ (session 10, third round): each defect the reviewers left open, as the test that showed it
(the fixes: see git log). Store behaviour on SQLite and on the local PostgreSQL (``store``); console-only checks
on a copy of one SQLite store (``api``)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from console_forms import login_token, post_login
from serving.api import create_app
from serving.console import console_router
from serving.console.routes import dashboard
from serving.i18n import t
from serving.security import issue_token
from serving.services.login import PURGE_AFTER
from serving.store import AuditLog, Case, LoginThrottle, RevokedToken, User, utcnow
from test_api import PASSWORD as API_PASSWORD
from test_api import template_db  # noqa: F401 - the fixture is used by ``api``
from test_review_serving_s9 import api, console  # noqa: F401 - the fixture is used by the tests
from test_security import store  # noqa: F401 - the fixture is used by the tests
from test_store import empty_store_url  # noqa: F401 - the fixture is used by ``store``


def _page(store, username: str) -> TestClient:
    """A console client of ``store``'s service, signed in as ``username``."""
    client = TestClient(store.app)
    client.cookies.set("ww_session", store.h(username)["Authorization"].removeprefix("Bearer "))
    return client


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def _export(page: TestClient, table: str) -> list[dict]:
    r = page.get("/dashboard", params={"format": "csv", "table": table})
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


# -- 1. the hit rate counts each lead's current verdict once -----------------------------------------------


def test_the_hit_rate_counts_each_leads_current_verdict_once(store):
    """A lead found in violation, reopened by a supervisor and then found clean counted twice: its superseded
    violation and its current verdict (2 of 3 instead of 1 of 2). The verdicts recorded stay the officer's work."""
    first, second = store.leads("德城区", 2)
    off, sup = store.h("off_dc"), store.h("sup")
    for lead in (first, second):
        r = store.client.post(f"/api/v1/leads/{lead}/verdicts", headers=off,
                              json={"outcome": "violation", "violation_type": "private_well"})
        assert r.status_code == 201, r.text
    r = store.client.post(f"/api/v1/leads/{first}/reopen", headers=sup, json={"reason": "照片不能证明违法取水"})
    assert r.status_code == 200, r.text
    r = store.client.post(f"/api/v1/leads/{first}/verdicts", headers=off, json={"outcome": "no_violation"})
    assert r.status_code == 201, r.text

    with store.sessions() as s:
        section = dashboard.verdicts_section(s, "zh")
    assert (section["verdict_total"], section["hits"], section["visited"], section["hit_rate"]) == (3, 1, 2, 0.5)
    page = _page(store, "sup")
    html = page.get("/dashboard").text
    assert re.search(r'data-tile="hit_rate">50%<', html), re.search(r'data-tile="hit_rate">[^<]*', html)
    assert '<span class="muted small">1/2</span>' in html and 'data-tile="verdicts">3<' in html
    columns = [t("dash.verdicts"), t("dash.violations"), t("dash.hit_rate")]
    officer = {r[t("queue.officer")]: r for r in _export(page, "officers")}["off_dc"]
    assert [officer[c] for c in columns] == ["3", "1", "0.5"]
    (run,) = _export(page, "runs")
    assert [run[c] for c in columns] == ["3", "1", "0.5"]
    assert 'data-tile="violations">1<' in _page(store, "off_dc").get("/queue").text  # the queue's tile: the same


# -- 2. revoked tokens that expired anyway are deleted --------------------------------------------------------


def test_revoked_tokens_that_expired_anyway_are_deleted_on_logout_and_login(store):
    """Every logout added a row to revoked_tokens and none ever went. A logout and a login now delete the rows of
    tokens expired (``PURGE_AFTER`` ago, for servers whose clocks differ); a revoked token that has not expired
    keeps its row and stays refused."""
    with store.sessions() as s:
        user = s.scalars(select(User).where(User.username == "sup")).one()
        uid, version = user.id, user.token_version
    secret = store.settings.auth.secret_key.get_secret_value()
    expired, claims = issue_token("sup", uid, version, secret, -60)  # its row may go: it is refused as expired
    now = utcnow()

    def revoke(jti: str, expires_at) -> None:
        with store.sessions() as s, s.begin():
            s.add(RevokedToken(jti=jti, user_id=uid, expires_at=expires_at, revoked_at=expires_at - timedelta(hours=1)))

    def rows() -> set[str]:
        with store.sessions() as s:
            return set(s.scalars(select(RevokedToken.jti)))

    revoke(claims.jti, claims.expires_at)
    revoke("expired-a-day-ago", now - timedelta(days=1))
    revoke("expired-just-now", now - PURGE_AFTER / 2)  # another server's clock may still take it
    revoke("expires-in-a-minute", now + timedelta(minutes=1))
    live = store.h("sup")
    assert store.client.post("/api/v1/auth/logout", headers=live).status_code == 204
    kept = {"expired-just-now", "expires-in-a-minute"}
    assert len(rows()) == 3 and kept < rows()  # the logged-out token's own row, and the two not yet expired
    for headers in (live, {"Authorization": f"Bearer {expired}"}):
        assert store.client.get("/api/v1/leads", headers=headers).status_code == 401
    revoke("expired-an-hour-ago", now - timedelta(hours=1))
    assert store.login("sup").status_code == 200  # a login clears them too
    assert "expired-an-hour-ago" not in rows() and len(rows()) == 3
    assert store.client.get("/api/v1/leads", headers=live).status_code == 401


# -- 3. login CSRF -------------------------------------------------------------------------------------------


def test_the_login_form_carries_a_token_like_every_console_form(api):
    """The console's forms carry a token bound to the session (and its cookie is SameSite=Lax); the login form
    carried none, so another site could post it and sign the user in under the attacker's account (what they
    then record would be the attacker's). Its token is bound to a random cookie of the login page's own."""
    app = create_app(api.settings, api.sessions, routers=[console_router()], demo_users=False)
    browser = TestClient(app)
    page = browser.get("/login")
    cookie = page.headers["set-cookie"]
    assert "ww_login=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "path=/login" in cookie.lower()
    token = login_token(browser)
    assert token == _csrf(page.text)  # the browser's cookie is kept: two tabs' forms both work
    attacker = TestClient(app)
    forged = [
        ("no token (another site's form)", browser, {}),
        ("a wrong token", browser, {"csrf": "0" * 32}),
        ("the attacker's own token", browser, {"csrf": login_token(attacker)}),
        ("a token without its cookie", TestClient(app), {"csrf": token}),
    ]
    for why, client, extra in forged:
        r = client.post("/login", data={"username": "sup", "password": API_PASSWORD, **extra}, follow_redirects=False)
        assert r.status_code == 403, why
        assert "ww_session" not in r.headers.get("set-cookie", ""), why
        assert "登录页面已失效" in r.text and 'name="csrf"' in r.text, why  # the form again, with a token
    with api.sessions() as s:  # refused before any password was checked or counted
        assert s.scalar(select(func.count()).where(AuditLog.action.in_(("login", "login_failed")))) == 0
        assert s.scalar(select(func.count()).select_from(LoginThrottle)) == 0
    english = TestClient(app)
    english.get("/login?lang=en")
    r = english.post("/login", data={"username": "sup", "password": API_PASSWORD})
    assert r.status_code == 403 and "did not come from this site" in r.text
    retry = _csrf(r.text)  # the refusal's form works
    r = english.post("/login", data={"username": "sup", "password": API_PASSWORD, "csrf": retry},
                     follow_redirects=False)
    assert r.status_code == 303 and "ww_session=" in r.headers["set-cookie"]
    r = post_login(browser, "sup", API_PASSWORD, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    assert 'ww_login=""' in r.headers["set-cookie"]  # spent: the next login form makes a new one


# -- 4. an officer moves only the cases nobody or they hold ----------------------------------------------------


def test_an_officer_moves_only_cases_nobody_or_they_hold_a_supervisor_any(store):
    """Any officer of the district could close or dismiss a case a colleague had in progress. Now only its holder
    (or, for a case nobody holds, any officer of the district) and supervisors; on the API and the console, and
    every move that happens is audited with whom the case was held by."""
    url = "/api/v1/cases/C-expired-1/status"
    off, off2, sup = store.h("off_dc"), store.h("off_dc2"), store.h("sup")
    r = store.client.post(url, headers=off, json={"status": "in_progress"})  # nobody held it
    assert r.status_code == 200 and r.json()["assignee"] == "off_dc"
    for body in ({"status": "closed"}, {"status": "dismissed", "note": "已整改"}):
        r = store.client.post(url, headers=off2, json=body)
        assert r.status_code == 403 and "off_dc" in r.json()["detail"], r.text
    colleague, holder = _page(store, "off_dc2"), _page(store, "off_dc")
    html = colleague.get("/cases?kind=expired_permit_in_use").text
    row = html.split('data-case-id="C-expired-1"')[1].split("</tr>")[0]
    assert "data-move=" not in row and 'data-held-by="off_dc"' in row and "off_dc 办理" in row
    assert 'data-move="closed"' in holder.get("/cases?kind=expired_permit_in_use").text
    r = colleague.post("/cases/C-expired-1/status", data={"csrf": _csrf(html), "status": "closed"},
                       follow_redirects=False)
    assert r.status_code == 403 and "off_dc" in r.text
    with store.sessions() as s:
        case = s.get(Case, "C-expired-1")
        assert (case.status, case.assignee) == ("in_progress", "off_dc")
    assert store.client.post(url, headers=off, json={"status": "closed"}).status_code == 200  # its holder
    assert store.client.post(url, headers=sup, json={"status": "open", "note": "证据需补充"}).status_code == 200
    assert store.client.post(url, headers=off2, json={"status": "in_progress"}).status_code == 403  # still off_dc's
    assert store.client.post(url, headers=sup, json={"status": "dismissed", "note": "许可证已续期"}).status_code == 200
    with store.sessions() as s:
        log = s.scalars(select(AuditLog).where(AuditLog.action == "case_status").order_by(AuditLog.id)).all()
    assert [(a.actor, a.detail["from"], a.detail["to"], a.detail["assignee"]) for a in log] == [
        ("off_dc", "open", "in_progress", None), ("off_dc", "in_progress", "closed", "off_dc"),
        ("sup", "closed", "open", "off_dc"), ("sup", "open", "dismissed", "off_dc")]
    assert log[0].detail["assignee_to"] == "off_dc"


def test_two_officers_starting_one_case_at_once_leave_it_with_one_of_them(store, report_metric):
    """The case row is locked while it moves: of two officers of the district starting the same open case at
    once (10 posts each, over a real server), one holds it and every post of the other is refused; one audit row
    records the start."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from test_security import served

    url = "/api/v1/cases/C-expired-1/status"
    officers = ["off_dc", "off_dc2"]
    heads = {who: store.h(who) for who in officers}
    barrier = threading.Barrier(20)
    with served(store.app) as base, httpx.Client(base_url=base, timeout=60) as client:
        def start(i: int) -> tuple[str, int]:
            who = officers[i % 2]
            barrier.wait()
            return who, client.post(url, headers=heads[who], json={"status": "in_progress"}).status_code

        with ThreadPoolExecutor(20) as pool:
            done = list(pool.map(start, range(20)))
    with store.sessions() as s:
        holder = s.get(Case, "C-expired-1").assignee
        starts = s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "case_status"))
    report_metric(f"20 concurrent starts of one case by two officers ({store.engine.dialect.name}): held by "
                  f"{holder}, {sum(c == 200 for _, c in done)} x 200, {sum(c == 403 for _, c in done)} x 403, "
                  f"{starts} audit row(s)")
    assert holder in officers and starts == 1
    assert [code for who, code in done if who == holder] == [200] * 10
    assert [code for who, code in done if who != holder] == [403] * 10


# -- 5. the console says when an export will be cut -----------------------------------------------------------


def test_the_console_says_where_the_export_link_is_that_the_export_will_be_cut(api, monkeypatch):
    """A list longer than an export holds was cut, said only in the file's ``X-Export-Truncated`` header, which
    a browser's download never shows. The page with the link says it: the first N of M rows."""
    from serving.console import export

    with console(api, "sup") as page:
        html = page.get("/queue?status=open").text
        total = int(re.search(r'<p class="muted count">共 (\d+) 条线索</p>', html)[1])
        assert "data-export-cut" not in html  # under the limit: nothing to say
        monkeypatch.setattr(export, "MAX_ROWS", 5)
        html = page.get("/queue?status=open").text
        notice = re.search(r'<p class="notice small export-cut" data-export-cut="5">([^<]+)</p>', html)
        assert notice and notice[1] == t("list.export_cut", "zh", n=5, total=f"{total:,}"), notice
        assert f"{total:,}" in notice[1] and total > 5
        english = page.get("/queue?status=open&lang=en").text
        assert f"The export holds the first 5 of {total:,} rows" in english
        r = page.get("/queue", params={"status": "open", "format": "csv"})
        assert r.headers["X-Export-Truncated"] == "5"  # kept for API users
        assert len(list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))) == 1 + 5
        for path in ("/alerts", "/cases?kind=expired_permit_in_use", "/outbox"):
            assert "data-export-cut" not in page.get(path).text, path  # two alerts, one case, few messages
        monkeypatch.setattr(export, "MAX_ROWS", 1)
        assert 'data-export-cut="1"' in page.get("/alerts").text
        officers = page.get("/dashboard?lang=zh").text.split(t("dash.workload"))[1].split("</section>")[0]
        assert 'data-export-cut="1"' in officers  # the dashboard's tables too
