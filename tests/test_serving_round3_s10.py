"""Review of serving/ (session 10, third round): each defect the reviewers left open, as the test that showed it
(the fixes: see git log). Store behaviour on SQLite and on the local PostgreSQL (``store``); console-only checks
on a copy of one SQLite store (``api``)."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient

from serving.console.routes import dashboard
from serving.i18n import t
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

