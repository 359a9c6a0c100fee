"""Assigning a case (session 11): a supervisor gives a case of their scope to whoever may work it, checked against
the store, or releases it; an officer hands back a case they hold and gives none to others; closed and dismissed
cases are refused; every change is one audit row naming the old and the new holder; the holder moves the case and
the former holder no longer does; the console's form, with its CSRF token. On SQLite and on the local PostgreSQL
(``store``: test_security's published store with its staff: ``sup``, ``adm``, ``ana``, officers ``off_dc`` and
``off_dc2`` of 德城区, ``off_yc`` of 禹城市; case ``C-expired-1`` lies in 德城区, ``C-tax-1`` in 陵城区)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.i18n import t
from serving.services import users
from serving.store import AuditLog, Case, User
from test_security import served, store  # noqa: F401 - the fixture is used by the tests
from test_store import empty_store_url  # noqa: F401 - the fixture is used by ``store``

CASE = "C-expired-1"
ASSIGNEE = f"/api/v1/cases/{CASE}/assignee"
STATUS = f"/api/v1/cases/{CASE}/status"


def _put(store, who: str, assignee: str | None, case: str = CASE, **extra) -> httpx.Response:
    return store.client.put(f"/api/v1/cases/{case}/assignee", headers=store.h(who),
                            json={"assignee": assignee, **extra})


def _move(store, who: str, status: str, note: str | None = None) -> httpx.Response:
    return store.client.post(STATUS, headers=store.h(who), json={"status": status, "note": note})


def _held(store, case: str = CASE) -> tuple[str, str | None]:
    with store.sessions() as s:
        c = s.get(Case, case)
        return c.status, c.assignee


def _assignments(store) -> list[tuple]:
    """(actor, old holder, new holder, status, note) of every ``case_assign`` audit row, oldest first."""
    with store.sessions() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == "case_assign").order_by(AuditLog.id)).all()
        return [(a.actor, a.detail["assignee"], a.detail["assignee_to"], a.detail["status"], a.detail["note"])
                for a in rows]


def _page(store, username: str) -> TestClient:
    """A console client of ``store``'s service, signed in as ``username``."""
    client = TestClient(store.app)
    client.cookies.set("ww_session", store.h(username)["Authorization"].removeprefix("Bearer "))
    return client


def _row(html: str, case: str = CASE) -> str:
    return html.split(f'data-case-id="{case}"')[1].split("</tr>")[0]


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def test_a_supervisor_assigns_and_reassigns_and_the_holder_moves_the_case(store):
    """The supervisor gives the open case to one officer, then to another: the new holder starts and closes it,
    the former holder may no longer move it. Each change is one audit row; giving it to its holder logs nothing."""
    r = _put(store, "sup", "off_dc", note="请核查计量")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["assignee"]) == ("open", "off_dc")
    assert _put(store, "sup", "off_dc").status_code == 200  # already theirs: no change, no row
    r = _put(store, "sup", "off_dc2")
    assert r.status_code == 200 and r.json()["assignee"] == "off_dc2", r.text
    r = _move(store, "off_dc", "in_progress")
    assert r.status_code == 403 and "off_dc2" in r.json()["detail"], r.text
    assert _move(store, "off_dc2", "in_progress").status_code == 200
    assert _held(store) == ("in_progress", "off_dc2")
    r = _put(store, "adm", "off_dc", note="off_dc2 休假")  # an admin supervises too; the status stays
    assert r.status_code == 200 and r.json()["status"] == "in_progress", r.text
    assert _move(store, "off_dc2", "closed").status_code == 403
    assert _move(store, "off_dc", "closed").status_code == 200
    assert _held(store) == ("closed", "off_dc")
    assert _assignments(store) == [("sup", None, "off_dc", "open", "请核查计量"), ("sup", "off_dc", "off_dc2", "open", None),
                                   ("adm", "off_dc2", "off_dc", "in_progress", "off_dc2 休假")]


def test_a_supervisor_who_started_a_case_gives_it_away_and_starting_keeps_the_holder(store):
    """A case a supervisor started was theirs for good; now they give it to an officer, or release it. A
    supervisor starting a case already given to an officer leaves it with the officer (it used to take it)."""
    assert _move(store, "sup", "in_progress").status_code == 200
    assert _held(store) == ("in_progress", "sup")
    assert _move(store, "off_dc", "closed").status_code == 403
    r = _put(store, "sup", None)
    assert r.status_code == 200 and r.json()["assignee"] is None, r.text
    assert _held(store) == ("in_progress", None)
    assert _put(store, "sup", "off_dc").status_code == 200
    assert _move(store, "off_dc", "closed").status_code == 200
    assert _move(store, "sup", "open", note="证据需补充").status_code == 200
    assert _put(store, "sup", "off_dc2").status_code == 200
    assert _move(store, "sup", "in_progress").status_code == 200
    assert _held(store) == ("in_progress", "off_dc2")  # started by the supervisor, still the officer's
    assert [(old, new) for _, old, new, _, _ in _assignments(store)] == [
        ("sup", None), (None, "off_dc"), ("off_dc", "off_dc2")]


def test_whom_a_case_is_given_is_checked_against_the_store(store):
    """Only an active user whose role works cases and whose own scope holds the case: not an officer of another
    district, a user who does not exist, a deactivated officer, an analyst, an officer with no district on
    record, an officer of another city; a user bound to another city is answered as one who does not exist.
    The requests' limits hold at the edge. Nothing of it changes the case or writes a row."""
    with store.sessions() as s, s.begin():
        users.set_active(s, "off_dc2", False)
        s.add(User(username="off_nodist", role="officer", district=None))
        s.add(User(username="off_lc", role="officer", district="德城区", city="聊城市"))
    for who, why in (("off_yc", "禹城市"), ("nobody", "nobody"), ("off_dc2", "off_dc2"), ("ana", "ana"),
                     ("off_nodist", "off_nodist"), ("off_lc", "聊城市")):
        r = _put(store, "sup", who)
        assert r.status_code == 422 and why in r.json()["detail"], (who, r.text)
    for body in ({"assignee": "x" * 65}, {"assignee": ""}, {"note": "no assignee given"},
                 {"assignee": "off_dc", "note": "x" * 1001}, {"assignee": "off_dc", "extra": 1},
                 {"assignee": "off\x00dc"}):
        r = store.client.put(ASSIGNEE, headers=store.h("sup"), json=body)
        assert r.status_code == 422, (body, r.text)
    assert _put(store, "sup", "off_dc", case="no-such-case").status_code == 404
    assert store.client.put(ASSIGNEE, json={"assignee": "off_dc"}).status_code == 401
    assert _put(store, "ana", "off_dc").status_code == 403  # an analyst works no case
    assert _held(store) == ("open", None) and _assignments(store) == []
    assert _put(store, "sup", "sup").status_code == 200  # a supervisor works every case of their scope
    with store.sessions() as s, s.begin():  # a supervisor bound to a city sees no other city's case nor user
        s.scalars(select(User).where(User.username == "adm")).one().city = "聊城市"
    assert _put(store, "adm", "off_dc").status_code == 403
    assert _held(store) == ("open", "sup")


def test_an_officer_hands_back_a_case_they_hold_and_gives_none_to_others(store):
    assert _move(store, "off_dc", "in_progress").status_code == 200
    for who, to in (("off_dc", "off_dc2"), ("off_dc2", None), ("off_dc2", "off_dc2")):
        r = _put(store, who, to)
        assert r.status_code == 403, (who, to, r.text)
    assert _put(store, "off_yc", None).status_code == 403  # another district's case
    r = _put(store, "off_dc", None, note="需执法支队协助")
    assert r.status_code == 200 and (r.json()["status"], r.json()["assignee"]) == ("in_progress", None), r.text
    assert _put(store, "off_dc2", "off_dc").status_code == 403  # nobody's now, still not theirs to give
    assert _put(store, "off_dc2", "off_dc2").status_code == 200  # an officer takes a case nobody holds
    assert _move(store, "off_dc", "closed").status_code == 403 and _move(store, "off_dc2", "closed").status_code == 200
    assert _assignments(store) == [("off_dc", "off_dc", None, "in_progress", "需执法支队协助"),
                                   ("off_dc2", None, "off_dc2", "in_progress", None)]


def test_closed_and_dismissed_cases_are_not_assigned(store):
    assert _put(store, "sup", "off_dc").status_code == 200
    assert _move(store, "off_dc", "closed").status_code == 200
    for who, to in (("sup", "off_dc2"), ("sup", None), ("off_dc", None)):
        r = _put(store, who, to)
        assert r.status_code == 409, (who, to, r.text)
    assert _move(store, "sup", "open", note="补充证据").status_code == 200
    assert _put(store, "sup", "off_dc2").status_code == 200  # reopened: assignable again
    assert _move(store, "sup", "dismissed", note="许可证已续期").status_code == 200
    r = _put(store, "sup", "off_dc")
    assert r.status_code == 409 and "dismissed" in r.json()["detail"], r.text
    assert _held(store) == ("dismissed", "off_dc2") and len(_assignments(store)) == 2


def test_the_console_assigns_with_the_officers_of_the_cases_district(store):
    url = "/cases?kind=expired_permit_in_use"
    sup = _page(store, "sup")
    html = sup.get(url).text
    row = _row(html)
    form = row.split('action="/cases/C-expired-1/assignee"')[1].split("</form>")[0]
    assert t("cases.assign_to") in form and 'name="csrf"' in form
    assert '<option value="off_dc">' in form and '<option value="off_dc2">' in form and "off_yc" not in form
    assert "data-release" not in form  # nobody holds it: nothing to release
    r = sup.post(f"/cases/{CASE}/assignee", data={"assignee": "off_dc"}, follow_redirects=False)
    assert r.status_code == 403 and _held(store) == ("open", None)  # no token: refused
    r = sup.post(f"/cases/{CASE}/assignee", data={"assignee": "off_dc", "csrf": "0" * 32}, follow_redirects=False)
    assert r.status_code == 403 and _held(store) == ("open", None)
    r = sup.post(f"/cases/{CASE}/assignee", data={"assignee": "off_dc", "csrf": _csrf(html), "back": url},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{url}&assigned=1", r.headers
    page = sup.get(r.headers["location"]).text
    assert t("cases.assigned_ok") in page and 'data-assignee="off_dc"' in _row(page)
    assert '<option value="off_dc" selected>' in _row(page) and "data-release" in _row(page)
    assert t("cases.assign_to", "en") in sup.get(f"{url}&lang=en").text
    tax = _row(sup.get("/cases?kind=tax_verification").text, "C-tax-1")  # 陵城区: no officer of it
    assert "data-no-officers" in tax and "<select" not in tax.split("case-assign")[1]

    colleague, holder = _page(store, "off_dc2"), _page(store, "off_dc")
    other = colleague.get(url).text
    assert "/assignee" not in _row(other)  # no form: officers give cases to nobody
    r = colleague.post(f"/cases/{CASE}/assignee", data={"assignee": "off_dc2", "csrf": _csrf(other)},
                       follow_redirects=False)
    assert r.status_code == 403 and "off_dc" in r.text and _held(store) == ("open", "off_dc")
    mine = holder.get(url).text
    hand_back = _row(mine).split('action="/cases/C-expired-1/assignee"')[1].split("</form>")[0]
    assert t("cases.hand_back") in hand_back and "<select" not in hand_back
    r = holder.post(f"/cases/{CASE}/assignee", data={"release": "1", "csrf": _csrf(mine)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("assigned=0")
    assert t("cases.released_ok") in holder.get(r.headers["location"]).text
    assert _held(store) == ("open", None)
    assert _assignments(store) == [("sup", None, "off_dc", "open", None), ("off_dc", "off_dc", None, "open", None)]


def test_two_supervisors_assigning_at_once_and_a_move_beside_an_assignment_serialise(store, report_metric):
    """The case row is locked while it is assigned or moved: two supervisors giving one case to two officers at
    once (three rounds) both succeed one after the other (two audit rows, the second's old holder the first's new
    one, the case with the second's); the holder closing it while a supervisor gives it away ends either closed by
    the holder (the assignment 409) or given away first (the close 403), never both."""
    heads = {who: store.h(who) for who in ("sup", "adm", "off_dc")}
    with served(store.app) as base, httpx.Client(base_url=base, timeout=60) as client:
        def together(*calls):
            barrier = threading.Barrier(len(calls))

            def call(args):
                who, method, path, body = args
                barrier.wait()
                return client.request(method, path, headers=heads[who], json=body).status_code

            with ThreadPoolExecutor(len(calls)) as pool:
                return list(pool.map(call, calls))

        holders = []
        for _ in range(3):  # a race: three rounds, each from a case nobody holds
            assert client.put(ASSIGNEE, headers=heads["sup"], json={"assignee": None}).status_code == 200
            before = len(_assignments(store))
            codes = together(("sup", "PUT", ASSIGNEE, {"assignee": "off_dc"}),
                             ("adm", "PUT", ASSIGNEE, {"assignee": "off_dc2"}))
            assert codes == [200, 200]
            rows = _assignments(store)[before:]
            assert len(rows) == 2 and rows[0][1] is None and rows[1][1] == rows[0][2], rows
            assert {rows[0][2], rows[1][2]} == {"off_dc", "off_dc2"} and _held(store) == ("open", rows[1][2])
            holders.append(rows[1][2])
        assert client.put(ASSIGNEE, headers=heads["sup"], json={"assignee": "off_dc"}).status_code == 200
        codes = together(("off_dc", "POST", STATUS, {"status": "closed"}),
                         ("sup", "PUT", ASSIGNEE, {"assignee": "off_dc2"}))
    status, holder = _held(store)
    report_metric(f"two supervisors assigning one case at once, 3 rounds ({store.engine.dialect.name}): both 200, "
                  f"held by the later: {holders}; a close beside an assignment: {codes} -> {status}, {holder}")
    assert codes in ([200, 409], [403, 200]), codes
    assert (status, holder) == (("closed", "off_dc") if codes == [200, 409] else ("open", "off_dc2"))


def test_a_supervisor_bound_to_a_city_gives_its_cases_to_its_officers_only(store):
    """In a store a province's cities share, a supervisor of one city gives its case to an officer of that city's
    district; an officer of the same-named district of a city run (or of another city) is answered as a user
    who does not exist, and the console lists only the city's officers."""
    with store.sessions() as s, s.begin():
        s.get(Case, CASE).city = "聊城市"
        for name, city in (("sup", "聊城市"), ("off_dc", "聊城市")):
            s.scalars(select(User).where(User.username == name)).one().city = city
    nobody = _put(store, "sup", "nobody").json()["detail"]
    r = _put(store, "sup", "off_dc2")  # 德城区 of no city: exists, but not for this caller
    assert r.status_code == 422 and r.json()["detail"] == nobody.replace("nobody", "off_dc2"), r.text
    assert _put(store, "adm", "off_dc2").status_code == 422  # a province role: refused on the scope
    row = _row(_page(store, "sup").get("/cases?kind=expired_permit_in_use").text)
    assert '<option value="off_dc">' in row and "off_dc2" not in row
    assert _put(store, "sup", "off_dc").status_code == 200 and _held(store) == ("open", "off_dc")
