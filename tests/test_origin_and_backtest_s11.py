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


# -- 2. the backtest page in Chinese ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backtest():
    """``test_console_polish_s9``'s three cut-offs (only the first measurable), with charts."""
    import pandas as pd

    from test_backtest import _synthetic_cutoffs
    from training.backtest import run_backtest
    from training.backtest_report import charts

    cuts = _synthetic_cutoffs(n=300)
    result = run_backtest(cuts, lambda cut: cut.X["signal"].to_numpy(), 20)
    result.importance = pd.Series({"signal": 0.75, "naive_ratio": 0.25})
    return cuts, result, charts(result, cuts)


def _is_number(cell: str) -> bool:
    return re.fullmatch(r"-?[\d,]+(\.\d+)?", cell) is not None


def test_the_chinese_backtest_page_has_chinese_labels_and_the_numbers_of_the_english(backtest):
    from test_console_polish_s9 import tables_of
    from training.backtest_report import report_html

    _, result, pngs = backtest
    facts = {"as_of": "2026-01-01", "tuning": "none requested"}
    en = report_html(result, pngs, "WaterWatch backtest 2026-01", facts)
    zh = report_html(result, pngs, "WaterWatch 回测报告 backtest 2026-01", facts, lang="zh")
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    for words in ("各回测截点的均值与标准差", "Mean and std over cut-offs", "各回测截点", "前20条查实率（均值）",
                  "前20条名单的审计（各截点合并）", "风险分数分布", "特征重要性", "数据截止日", "未能衡量",
                  "稳定性（按核查结论，前20条查实率的均值减标准差）", "分别查实 10, 5, 8 起"):
        assert words in zh, words
    assert 'href="backtest.html"' in zh and 'href="backtest.zh.html"' in en  # each edition links the other
    assert re.findall(r"data:image/png;base64,[^']+", zh) == re.findall(r"data:image/png;base64,[^']+", en)
    en_tables, zh_tables = tables_of(en), tables_of(zh)
    assert len(en_tables) == len(zh_tables) == 3  # mean and std, per cut-off, audit
    numbers = 0
    for en_rows, zh_rows in zip(en_tables, zh_tables):
        assert zh_rows[1] == en_rows[0]  # the column names, under a row of their Chinese names
        assert all(re.search(r"[\u4e00-\u9fff]", name) for name in zh_rows[0][:3]), zh_rows[0]
        assert len(zh_rows) == len(en_rows) + 1
        for en_row, zh_row in zip(en_rows[1:], zh_rows[2:]):
            for en_cell, zh_cell in zip(en_row, zh_row, strict=True):
                if _is_number(en_cell) or en_cell == "—":
                    assert zh_cell == en_cell
                    numbers += _is_number(en_cell)
                elif en_cell == "not measured":
                    assert zh_cell == "未能衡量"
                else:  # a code in words, the code beside it (核查结论 inspected), or a name as it is
                    assert zh_cell == en_cell or zh_cell.endswith(" " + en_cell), (en_cell, zh_cell)
    assert numbers > 100
    assert "核查结论 inspected" in zh and "模型 model" in zh and "简单规则 naive" in zh
    with pytest.raises(ValueError):
        report_html(result, pngs, "x", lang="fr")


def test_training_writes_both_editions_and_the_run_report_links_the_chinese_one(backtest, tmp_path):
    import pandas as pd

    from serving.report import backtest_section
    from training.train import _write_report

    cuts, result, _ = backtest
    labels = pd.DataFrame({"y": [1, 0]}, index=["a", "b"])
    art, report = _write_report(tmp_path / "ws", result, cuts, None, labels, {"as_of": "2026-01-01"},
                                pd.Timestamp("2026-01-01"))
    for folder in (art, report.parent):
        assert 'lang="en"' in (folder / "backtest.html").read_text(encoding="utf-8")
        zh = (folder / "backtest.zh.html").read_text(encoding="utf-8")
        assert "WaterWatch 回测报告 backtest 2026-01" in zh and "各回测截点" in zh
    assert report.name == "backtest.html"
    _, body = backtest_section(result, "workspace/models/backtest.zh.html")
    assert "详细回测报告（中英对照）" in body and 'href="workspace/models/backtest.zh.html"' in body
