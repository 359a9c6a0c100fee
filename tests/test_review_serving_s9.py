"""Review of serving/ (session 9): each defect found, as the test that showed it (the fixes: see git log)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fastapi.testclient import TestClient

from console_forms import post_login
from serving.api import create_app
from serving.console import console_router
from serving.security import issue_token
from serving.services import users
from serving.store import Lead, Verdict
from test_api import Api, template_db  # noqa: F401 - the fixture is used by ``api``

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def api(tmp_path, template_db):  # noqa: F811 - pytest's fixture injection
    a = Api(tmp_path, template_db)
    yield a
    a.client.__exit__(None, None, None)
    a.engine.dispose()


@contextmanager
def console(api, username: str, raise_server_exceptions: bool = True):
    """A console client of ``api``'s store, signed in as ``username`` (the session cookie holds a bearer token)."""
    app = create_app(api.settings, api.sessions, routers=[console_router()], demo_users=False)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        client.cookies.set("ww_session", api.h(username)["Authorization"].removeprefix("Bearer "))
        yield client


@contextmanager
def server_clock_a_day_behind_beijing():
    """The process's local clock (``date.today()``) on the day before Beijing's, as on a server kept on UTC
    early in a Beijing morning: local time is Beijing's minus (hour + 1) hours, always the previous day."""
    hour = datetime.now(BEIJING).hour
    before = os.environ.get("TZ")
    os.environ["TZ"] = f"XXX{hour - 7:+d}"  # POSIX: "XXX+5" is UTC-5; local = UTC + (7 - hour) h
    time.tzset()
    try:
        assert date.today() == datetime.now(BEIJING).date() - timedelta(days=1)
        yield datetime.now(BEIJING).date()
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_a_visit_dated_today_in_beijing_is_accepted_whatever_the_servers_zone(api):
    """An officer records at 07:00 Beijing time the visit made that morning; a server on UTC is still on the
    previous day. The bureau's day counts: the visit is today's, not 'in the future', and a verdict without a
    date is dated on the bureau's day."""
    dc, yc = api.lead_in("德城区"), api.lead_in("禹城市")
    with server_clock_a_day_behind_beijing() as today:
        r = api.client.post(f"/api/v1/leads/{dc}/verdicts", headers=api.h("off_dc"),
                            json={"outcome": "no_violation", "visited_on": today.isoformat()})
        assert r.status_code == 201, r.text
        r = api.client.post(f"/api/v1/leads/{yc}/verdicts", headers=api.h("off_yc"), json={"outcome": "no_violation"})
        assert r.status_code == 201 and r.json()["visited_on"] == today.isoformat()
        tomorrow = (today + timedelta(days=1)).isoformat()
        other = api.client.get("/api/v1/leads", headers=api.h("off_dc")).json()["items"][0]["id"]
        r = api.client.post(f"/api/v1/leads/{other}/verdicts", headers=api.h("off_dc"),
                            json={"outcome": "no_violation", "visited_on": tomorrow})
        assert r.status_code == 422
        with console(api, "off_dc") as page:  # the form's date: Beijing's today, and no later
            html = page.get(f"/leads/{other}").text
        assert f'name="visited_on" value="{today.isoformat()}" max="{today.isoformat()}"' in html


def test_my_leads_lists_only_leads_the_caller_may_still_see(api):
    """An officer moved to another district keeps, until a supervisor reassigns them, the leads assigned in the
    old one; those are another district's now: not listed as theirs (reading one gives 403 already)."""
    lead = api.lead_in("德城区")
    assert api.client.post(f"/api/v1/leads/{lead}/assign", headers=api.h("sup"),
                           json={"officer": "off_dc"}).status_code == 200
    assert api.client.get("/api/v1/me/leads", headers=api.h("off_dc")).json()["total"] == 1
    with api.sessions() as s, s.begin():
        users.set_city(s, "off_dc", None, "禹城市", actor="test")
    h = api.h("off_dc")
    assert api.client.get(f"/api/v1/leads/{lead}", headers=h).status_code == 403
    mine = api.client.get("/api/v1/me/leads", headers=h).json()
    assert mine["total"] == 0 and mine["items"] == []


def test_malformed_console_input_is_refused_not_a_server_error(api):
    """A CSRF token with non-ASCII text (hmac.compare_digest raises TypeError on it) and ids of Unicode digits
    that int() cannot read ('²' is a digit to str.isdigit) or beyond the id column were 500s; they are a 403 and
    404s."""
    lead = api.lead_in("德城区")
    with console(api, "off_dc", raise_server_exceptions=False) as page:  # a 500 is what is looked for
        assert page.get(f"/leads/{lead}").status_code == 200
        assert page.post(f"/leads/{lead}/assign", data={"csrf": "中文"}).status_code == 403
        assert page.post("/logout", data={"csrf": "中文"}).status_code == 403
        assert page.get("/leads/²").status_code == 404
        assert page.get(f"/leads/{lead}/evidence/²").status_code == 404
        assert page.get(f"/leads/{lead}/evidence/{10 ** 20}").status_code == 404  # beyond SQLite's integer
        assert page.get("/queue", params={"recorded": "²"}).status_code == 200


def test_a_form_sent_after_the_session_expired_comes_back_to_its_page_after_login(api):
    """An officer's session runs out while the verdict form is open; sending it leads to the login form, and
    after logging in back to the lead's page, not to the form's POST address (a GET there was a 405 in JSON)."""
    from urllib.parse import parse_qs, urlsplit

    from test_api import PASSWORD

    lead = api.lead_in("德城区")
    with api.sessions() as s:
        from serving.store import User

        user = s.scalars(select(User).where(User.username == "off_dc")).one()
    expired, _ = issue_token(user.username, user.id, user.token_version, api.settings.auth.secret_key
                             .get_secret_value(), -1)
    with console(api, "off_dc") as page:
        page.cookies.set("ww_session", expired)
        r = page.post(f"/leads/{lead}/verdict", data={"csrf": "x", "outcome": "no_violation"},
                      headers={"Referer": f"http://testserver/leads/{lead}?assigned=1"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?")
        target = parse_qs(urlsplit(r.headers["location"]).query)["next"][0]
        assert target == f"/leads/{lead}?assigned=1"
        r = post_login(page, "off_dc", PASSWORD, next=target, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == target
        assert page.get(target).status_code == 200
        # without a Referer of this site (or from another one): the login leads home, never to the POST address
        page.cookies.clear()
        page.cookies.set("ww_session", expired)
        for headers in ({}, {"Referer": f"https://evil.example/leads/{lead}"}):
            r = page.post(f"/leads/{lead}/verdict", data={"csrf": "x"}, headers=headers, follow_redirects=False)
            assert r.status_code == 303 and "next=" not in r.headers["location"]


def test_why_the_model_did_not_load_stays_with_the_admins(api):
    """A run whose model file cannot be read: the reason names the server's files (the exception's text with the
    artifact's absolute path). Officers, analysts and other systems learn that the model is not loaded; only an
    admin, who runs the service, reads why."""
    import json

    from serving.publish import publish_run
    from test_store import make_run

    run = make_run(api.tmp / "run-broken", version="7", as_of="2026-08-01")
    info = json.loads((run / "model.json").read_text(encoding="utf-8"))
    hidden = api.tmp / "nowhere" / "secret-folder" / "champion.joblib"
    (run / "model.json").write_text(json.dumps({**info, "artifact": str(hidden)}), encoding="utf-8")
    publish_run(run, api.sessions, api.settings)
    for user in ("off_dc", "ana", "sup"):
        body = api.client.get("/api/v1/model", headers=api.h(user)).json()
        assert body["version"] == "7" and body["champion_loaded"] is False
        assert body["champion_error"] and "secret-folder" not in body["champion_error"]
    r = api.client.post("/api/v1/scores/predict", headers=api.h("ana"),
                        json={"rows": [{"id": "a", "features": {"balance_ratio_12m": 1.0}}]})
    assert r.status_code == 503 and "secret-folder" not in r.text
    assert "secret-folder" in api.client.get("/api/v1/model", headers=api.h("adm")).json()["champion_error"]
