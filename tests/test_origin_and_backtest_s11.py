"""Session 11: the console's forms refuse a post sent from another origin (login CSRF from a sibling subdomain, which
can plant the login form's cookie), and the backtest page has a Chinese edition beside the English one.

The console runs on ``test_console``'s published run (demo users, the standard password cost); the backtest pages
on ``test_console_polish_s9``'s three cut-offs."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from console_forms import login_token
from serving.services.users import DEMO_PASSWORD
from test_console import build_app, csrf_of, lead_ids, officer_of

SERVICE = "https://waterwatch.example.gov.cn"  # where the tests' browsers reach the service
SIBLING = "https://evil.example.gov.cn"  # same site (example.gov.cn), another origin


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from fastapi.testclient import TestClient

    app, sessions, facts = build_app(tmp_path_factory.mktemp("origin"))
    with TestClient(app):  # start-up creates the demo users
        pass
    return {"app": app, "sessions": sessions, "facts": facts, "TestClient": TestClient}


def browser(env, base_url: str = SERVICE):
    return env["TestClient"](env["app"], base_url=base_url)


def send_login(client, username: str, headers: dict | None = None, token: str | None = None):
    """Post the login form as a page would: its token (the one the client's cookie goes with, unless given)."""
    data = {"username": username, "password": DEMO_PASSWORD, "csrf": token or login_token(client)}
    return client.post("/login", data=data, headers=headers or {}, follow_redirects=False)


def throttle_rows(env) -> int:
    from serving.store import LoginThrottle

    with env["sessions"]() as s:
        return s.scalar(select(func.count()).select_from(LoginThrottle))


def refused(r) -> bool:
    """A 403 page saying, in Chinese and English, that the form came from another origin; no session given."""
    text = html.unescape(r.text)
    return (r.status_code == 403 and "ww_session" not in r.headers.get("set-cookie", "")
            and "不是本服务的地址" in text and "not from this service's" in text
            and ("不是从本系统的页面提交的" in text or "not sent from this service's own pages" in text))


# -- 1. the Origin check --------------------------------------------------------------------------------------


def test_a_login_from_a_foreign_origin_is_refused_before_any_password_check(env):
    client = browser(env)
    before = throttle_rows(env)
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/login.html"}):  # no Origin: the Referer's origin counts
        r = send_login(client, "supervisor", headers)
        assert refused(r), (headers, r.status_code, r.text[:300])
        assert "https://evil.example" in r.text or headers == {"Origin": "null"}
    assert throttle_rows(env) == before  # refused before the form was read: no attempt counted
    r = client.post("/login", data={"username": "supervisor", "password": DEMO_PASSWORD, "csrf": login_token(client)},
                    headers={"Origin": "https://evil.example", "Cookie": "ww_lang=en"}, follow_redirects=False)
    assert r.status_code == 403 and "This form was not sent from this service's own pages" in html.unescape(r.text)


def test_a_login_from_the_services_own_origin_is_accepted(env):
    client = browser(env)
    for headers in ({"Origin": SERVICE}, {"Origin": SERVICE + ":443"}, {"Referer": SERVICE + "/login?next=%2Fqueue"},
                    {}):  # neither header: a script or test client, still bound by the form's token and cookie
        r = send_login(client, "supervisor", headers)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard", (headers, r.status_code)
        assert "ww_session=" in r.headers["set-cookie"]
    # the same host by another scheme or port is another origin
    for origin in ("http://waterwatch.example.gov.cn", SERVICE + ":8443"):
        assert refused(send_login(client, "supervisor", {"Origin": origin})), origin
    plain = browser(env, "http://127.0.0.1:8000")  # as `waterwatch serve` prints it
    assert send_login(plain, "supervisor", {"Origin": "http://127.0.0.1:8000"}).status_code == 303
    assert refused(send_login(plain, "supervisor", {"Origin": "http://localhost:8000"}))


def test_a_sibling_subdomain_cannot_log_the_user_in_under_its_account(env):
    """The attack the token alone does not stop: the sibling fetches our login form (a nonce cookie and its token),
    plants the nonce for the parent domain in the victim's browser and posts the token with its own account."""
    attacker = browser(env)
    token = login_token(attacker)
    nonce = attacker.cookies.get("ww_login")
    victim = browser(env)
    victim.cookies.set("ww_login", nonce, domain=".example.gov.cn", path="/login")
    r = send_login(victim, "officer1", {"Origin": SIBLING}, token=token)
    assert refused(r) and SIBLING in r.text
    r = send_login(victim, "officer1", {"Referer": SIBLING + "/trap.html"}, token=token)
    assert refused(r)
    assert victim.get("/queue", follow_redirects=False).status_code == 303  # still signed out
    # what the check stops: without it the planted pair passes the token check (a request with neither header)
    assert send_login(victim, "officer1", token=token).status_code == 303


def test_a_configured_trusted_origin_is_accepted(env, monkeypatch):
    """A reverse proxy serving https://ww.example.gov.cn that passes requests to 127.0.0.1:8000 without its Host."""
    from waterwatch.settings import Settings

    proxied = browser(env, "http://127.0.0.1:8000")
    public = "https://ww.example.gov.cn"
    assert refused(send_login(proxied, "supervisor", {"Origin": public}))
    settings = Settings(home=env["app"].state.settings.home, _env_file=None,
                        serving={"trusted_origins": ["HTTPS://WW.example.gov.cn:443/"]})
    assert settings.serving.trusted_origins == [public]  # written as a browser writes an Origin
    monkeypatch.setattr(env["app"].state.settings.serving, "trusted_origins", settings.serving.trusted_origins)
    r = send_login(proxied, "supervisor", {"Origin": public})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    assert refused(send_login(proxied, "supervisor", {"Origin": SIBLING}))  # only the origins listed
    for bad in ("https://*.example.gov.cn", "https://ww.example.gov.cn/console", "ftp://ww.example.gov.cn", "ww"):
        with pytest.raises(ValueError):
            Settings(home=env["app"].state.settings.home, serving={"trusted_origins": [bad]})


def test_every_console_form_checks_the_origin_and_the_api_does_not(env):
    from serving.store import Verdict

    district = "德城区"
    lead = lead_ids(env["sessions"], district)[0]
    client = browser(env)
    assert send_login(client, officer_of(district), {"Origin": SERVICE}).status_code == 303
    token = csrf_of(client.get(f"/leads/{lead}").text)
    data = {"csrf": token, "outcome": "no_violation", "note": "foreign"}
    r = client.post(f"/leads/{lead}/verdict", data=data, headers={"Origin": SIBLING}, follow_redirects=False)
    assert refused(r)
    with env["sessions"]() as s:
        assert s.scalar(select(func.count()).select_from(Verdict).where(Verdict.lead_id == lead)) == 0
    r = client.post("/logout", data={"csrf": token}, headers={"Origin": SIBLING}, follow_redirects=False)
    assert refused(r) and client.get("/queue").status_code == 200  # still signed in
    # a form sent with no valid session goes to the login form first, as before: it changes nothing
    anon = browser(env)
    r = anon.post(f"/leads/{lead}/verdict", data=data, headers={"Origin": SIBLING}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = client.post(f"/leads/{lead}/verdict", data=data, headers={"Origin": SERVICE}, follow_redirects=False)
    assert r.status_code == 303
    # the API's token calls are not console forms: another system's origin is no concern of theirs
    r = anon.post("/api/v1/auth/token", data={"username": "supervisor", "password": DEMO_PASSWORD},
                  headers={"Origin": SIBLING})
    assert r.status_code == 200
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}", "Origin": SIBLING}
    assert anon.get("/api/v1/leads", headers=bearer).status_code == 200

