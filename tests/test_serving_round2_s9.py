"""Review of serving/ (session 9, second round): each defect the security review left, as the test that showed
it (the fixes: see git log). Concurrency and database behaviour on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import csv
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time as clock, timedelta, timezone

import httpx
import pandas as pd
import pytest
from sqlalchemy import event, func, select, update

from serving.console.render import csrf_token
from serving.publish import publish_run
from serving.store import Assignment, AuditLog, Case, Evidence, Lead, LeadEvent, RevokedToken, User, Verdict
from test_api import SECRET, template_db  # noqa: F401 - the fixture is used by ``api``
from test_review_serving_s9 import api, console  # noqa: F401 - the fixture is used by the tests
from test_security import served, store  # noqa: F401 - the fixture is used by the tests
from test_store import empty_store_url, make_run  # noqa: F401 - the fixture is used by ``store``

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 100


def _slowed(monkeypatch, module, name: str, seconds: float = 0.3) -> None:
    """``module.name`` takes ``seconds`` longer: widens the window in which concurrent requests overlap."""
    real = getattr(module, name)

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)


def _parallel(n: int, call) -> list:
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# -- 1. concurrent logouts with one token ------------------------------------------------------------------


def test_concurrent_logouts_of_one_token_revoke_it_once_and_never_fail(store, monkeypatch):
    """Two (here eight) logouts with the same token at once: each found the token not yet revoked and inserted
    it; the second insert broke the primary key: a 500. Revoking is idempotent: one row, one audit entry."""
    from serving.services import login

    _slowed(monkeypatch, login, "audit")
    headers = store.h("off_dc")
    with served(store.app) as base, httpx.Client(base_url=base, timeout=60) as client:
        codes = _parallel(8, lambda i: client.post("/api/v1/auth/logout", headers=headers).status_code)
        assert set(codes) <= {204, 401} and 204 in codes, codes  # 401: came after the revocation committed
        assert client.get("/api/v1/leads", headers=headers).status_code == 401
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RevokedToken)) == 1
        assert s.scalar(select(func.count()).where(AuditLog.action == "logout")) == 1


# -- 2. an officer with no district ----------------------------------------------------------------------


def test_an_officer_without_a_district_sees_nothing_and_may_not_act(api):
    """An officer whose district was never set (or was cleared) got the whole city as scope: every district's
    leads, cases and alerts. Fail closed: a 403 that says why, on every list and every action."""
    lead = api.lead_in("禹城市")
    with api.sessions() as s, s.begin():
        s.execute(update(User).where(User.username == "off_dc").values(district=None))
    h = api.h("off_dc")
    r = api.client.get("/api/v1/leads", headers=h)
    assert r.status_code == 403 and "辖区" in r.json()["detail"] and "district" in r.json()["detail"]
    for path in ("/api/v1/me/leads", f"/api/v1/leads/{lead}", "/api/v1/cases", "/api/v1/alerts"):
        assert api.client.get(path, headers=h).status_code == 403, path
    assert api.client.post(f"/api/v1/leads/{lead}/assign", headers=h, json={"officer": "off_dc"}).status_code == 403
    r = api.client.post("/api/v1/cases/C-expired-1/status", headers=h, json={"status": "in_progress"})
    assert r.status_code == 403
    with console(api, "off_dc") as page:
        r = page.get("/queue")
        assert r.status_code == 403 and "辖区" in r.text
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Assignment)) == 0
        assert s.get(Case, "C-expired-1").status == "open"


# -- 3. dismissing a case needs a reason -------------------------------------------------------------------


def test_dismissing_a_case_needs_a_reason_kept_in_its_audit(api):
    url = "/api/v1/cases/C-tax-1/status"
    for body in ({"status": "dismissed"}, {"status": "dismissed", "note": "  "}):
        r = api.client.post(url, headers=api.h("sup"), json=body)
        assert r.status_code == 422, r.text
        assert "理由" in r.json()["detail"] and "reason" in r.json()["detail"]
    r = api.client.post(url, headers=api.h("sup"), json={"status": "dismissed", "note": "企业已补缴税款"})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    closed = api.client.post("/api/v1/cases/C-expired-1/status", headers=api.h("off_dc"), json={"status": "closed"})
    assert closed.status_code == 200  # closing keeps its optional note
    with api.sessions() as s:
        log = s.scalars(select(AuditLog).where(AuditLog.action == "case_status").order_by(AuditLog.id)).all()
    assert [(x.object_id, x.detail["to"], x.detail["note"]) for x in log] == [
        ("C-tax-1", "dismissed", "企业已补缴税款"), ("C-expired-1", "closed", None)]


def test_the_console_asks_for_the_reason_of_a_dismissal(api):
    with console(api, "off_dc") as page:
        html = page.get("/cases?kind=expired_permit_in_use").text
        assert 'name="note"' in html
        csrf = html.split('name="csrf" value="')[1].split('"')[0]
        back = "/cases?kind=expired_permit_in_use"
        r = page.post("/cases/C-expired-1/status", data={"csrf": csrf, "status": "dismissed", "note": " ",
                                                         "back": back}, follow_redirects=False)
        assert r.status_code == 303
        shown = page.get(r.headers["location"])
        assert "撤销案件须填写理由" in shown.text and 'role="alert"' in shown.text
        with api.sessions() as s:
            assert s.get(Case, "C-expired-1").status == "open"
        r = page.post("/cases/C-expired-1/status", data={"csrf": csrf, "status": "dismissed", "note": "许可证已续期",
                                                         "back": back}, follow_redirects=False)
        assert r.status_code == 303 and "done=dismissed" in r.headers["location"]
    with api.sessions() as s:
        assert s.get(Case, "C-expired-1").status == "dismissed"
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "case_status")).one()
        assert entry.detail["note"] == "许可证已续期" and entry.actor == "off_dc"


# -- 4. an entity that moved district ----------------------------------------------------------------------


def test_an_open_lead_follows_its_entity_to_its_new_district(store):
    """A re-published run puts an entity in another district: its open lead stayed in the old district's queue
    (officers there kept it, those of the new one never saw it). It moves; an officer of the old district who
    held it is unassigned (event and audit entry); its assignments and visits stay its history. A closed lead
    stays where it was closed."""
    sup = store.h("sup")
    held, fresh, visited, closed = store.leads("德城区", 4)
    assert store.client.post(f"/api/v1/leads/{held}/assign", headers=sup, json={"officer": "off_dc"}).status_code == 200
    assert store.client.post(f"/api/v1/leads/{visited}/assign", headers=sup,
                             json={"officer": "off_dc2"}).status_code == 200
    assert store.client.post(f"/api/v1/leads/{visited}/start", headers=store.h("off_dc2")).status_code == 200
    r = store.client.post(f"/api/v1/leads/{visited}/verdicts", headers=store.h("off_dc2"),
                          json={"outcome": "unreachable"})
    assert r.status_code == 201, r.text
    assert store.client.post(f"/api/v1/leads/{closed}/verdicts", headers=sup,
                             json={"outcome": "no_violation"}).status_code == 201
    with store.sessions() as s:
        codes = {lid: s.get(Lead, lid).uscc for lid in (held, fresh, visited, closed)}
    run2 = make_run(store.tmp / "run2")
    leads = pd.read_csv(run2 / "leads.csv", dtype={"uscc": str})
    leads.loc[leads["uscc"].isin(codes.values()), "district"] = "禹城市"
    leads.to_csv(run2 / "leads.csv", index=False)
    publish_run(run2, store.sessions, store.settings)
    with store.sessions() as s:
        after = {lid: s.get(Lead, lid) for lid in codes}
        events = {lid: [e.event for e in s.scalars(select(LeadEvent).where(LeadEvent.lead_id == lid)
                                                     .order_by(LeadEvent.id))] for lid in codes}
        unassigned = {a.object_id: a for a in s.scalars(select(AuditLog).where(AuditLog.action == "unassign"))}
        assert s.scalar(select(func.count()).select_from(Assignment)) == 2  # the history of who held them stays
        assert [v.outcome for v in s.scalars(select(Verdict).where(Verdict.lead_id == visited))] == ["unreachable"]
    for lid in (held, fresh, visited):
        assert after[lid].district == "禹城市" and after[lid].status == "new" and after[lid].assigned_officer is None
        assert "moved" in events[lid]
    assert after[closed].district == "德城区" and after[closed].status == "closed"
    assert events[held][-3:] == ["moved", "unassigned", "queued"] and "unassigned" not in events[fresh]
    assert {k: (a.actor, a.detail["officer"]) for k, a in unassigned.items()} == {
        str(held): ("system", "off_dc"), str(visited): ("system", "off_dc2")}
    assert unassigned[str(held)].detail["from"] == "德城区" and unassigned[str(held)].detail["to"] == "禹城市"
    # the officers' queues follow
    assert store.client.get("/api/v1/me/leads", headers=store.h("off_dc")).json()["total"] == 0
    assert store.client.get(f"/api/v1/leads/{held}", headers=store.h("off_dc")).status_code == 403
    assert store.client.get(f"/api/v1/leads/{held}", headers=store.h("off_yc")).status_code == 200
    queue = store.client.get("/api/v1/leads", headers=store.h("off_yc"), params={"page_size": 100}).json()["items"]
    assert held in {x["id"] for x in queue}
    # publishing the same run again changes nothing
    publish_run(run2, store.sessions, store.settings)
    with store.sessions() as s:
        assert [e.event for e in s.scalars(select(LeadEvent).where(LeadEvent.lead_id == held)
                                           .order_by(LeadEvent.id))] == events[held]


# -- 5. exports fetch no more than they write --------------------------------------------------------------


def test_exports_fetch_at_most_the_rows_they_write_and_say_when_cut(api, monkeypatch):
    from serving.console import export

    monkeypatch.setattr(export, "MAX_ROWS", 5)
    statements: list[str] = []
    listen = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(api.engine, "before_cursor_execute", listen)
    try:
        with console(api, "sup") as page:
            r = page.get("/queue", params={"format": "csv"})
            monkeypatch.setattr(export, "MAX_ROWS", 1)  # the run has two alerts
            cut = page.get("/alerts", params={"format": "csv"})
            monkeypatch.setattr(export, "MAX_ROWS", 2)
            whole = page.get("/alerts", params={"format": "csv"})
    finally:
        event.remove(api.engine, "before_cursor_execute", listen)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert r.status_code == 200 and len(rows) == 1 + 5
    assert r.headers["X-Export-Truncated"] == "5"
    for table, column in (("leads", "leads.reasons"), ("alerts", "alerts.message")):
        fetched = [s for s in statements if f"FROM {table}" in s and column in s and "count(" not in s]
        assert fetched and all("LIMIT" in s for s in fetched), fetched
    assert len(list(csv.reader(io.StringIO(cut.content.decode("utf-8-sig"))))) == 1 + 1
    assert cut.headers["X-Export-Truncated"] == "1"
    assert len(list(csv.reader(io.StringIO(whole.content.decode("utf-8-sig"))))) == 1 + 2
    assert "X-Export-Truncated" not in whole.headers


# -- 6. the dashboard's "last 30 days" on the bureau's day --------------------------------------------------


def test_the_dashboards_last_30_days_are_the_bureaus(api, monkeypatch):
    """At 06:00 Beijing time the UTC date is still yesterday's: the window started a day early, counting a
    visit 31 Beijing days old."""
    from serving import settings as serving_settings
    from serving.console.routes import dashboard

    today = datetime.now(timezone.utc).date()
    now = datetime.combine(today - timedelta(days=1), clock(22, 0), tzinfo=timezone.utc)  # 06:00 Beijing, `today`
    lead = api.lead_in("德城区")
    old = (today - timedelta(days=31)).isoformat()  # 31 days before Beijing's day: outside its last 30
    r = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=api.h("off_dc"),
                        json={"outcome": "no_violation", "visited_on": old})
    assert r.status_code == 201, r.text

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return now if tz is None else now.astimezone(tz)

    monkeypatch.setattr(serving_settings, "datetime", Frozen)
    monkeypatch.setattr(dashboard, "utcnow", lambda: now)
    with console(api, "sup") as page:
        r = page.get("/dashboard", params={"format": "csv", "table": "officers"})
    header, *rows = csv.reader(io.StringIO(r.content.decode("utf-8-sig")))
    officer = {row[0]: dict(zip(header, row)) for row in rows}["off_dc"]
    assert officer["近30天结论"] == "0" and officer["已登记结论"] == "1", officer


# -- 7. the evidence limit under concurrent uploads ---------------------------------------------------------


def test_concurrent_uploads_never_exceed_the_per_lead_limit(store, monkeypatch):
    """Uploads arriving together each counted the lead's files before any of them inserted its own: on SQLite
    the lead ended one (or more) over its limit. The count and the insert are one locked step."""
    from serving import evidence

    store.settings.evidence.max_per_lead = 3
    lead = store.leads("德城区")[0]
    token = store.h("off_dc")["Authorization"].removeprefix("Bearer ")
    csrf = csrf_token(token, SECRET)
    _slowed(monkeypatch, evidence, "clean_name")
    with served(store.app) as base, httpx.Client(base_url=base, timeout=60, cookies={"ww_session": token}) as client:
        def upload(i: int) -> int:
            return client.post(f"/leads/{lead}/evidence", data={"csrf": csrf, "note": f"照片{i}"},
                               files={"file": (f"{i}.jpg", JPEG, "image/jpeg")}, follow_redirects=False).status_code

        assert [upload(i) for i in range(2)] == [303, 303]
        codes = _parallel(6, lambda i: upload(10 + i))
    assert sorted(codes) == [303] + [409] * 5, codes
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Evidence).where(Evidence.lead_id == lead)) == 3
    assert len(list((store.tmp / "evidence" / str(lead)).iterdir())) == 3
