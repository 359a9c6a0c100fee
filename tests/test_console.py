"""The web console through FastAPI's TestClient: roles, districts, the verdict form, the language switch.

A small run folder is built here with known answers (three districts, a planted level shift, permits,
linked accounts, alerts, outbox, water rights) and published with ``serving.publish.publish_run``.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from console_forms import post_login
from serving.services.users import DEMO_PASSWORD
from serving.settings import AuthSettings
from waterwatch.settings import Settings

DISTRICTS = ("德城区", "陵城区", "禹城市")
PER_DISTRICT = 12
MONTHS = pd.date_range("2024-07-01", periods=24, freq="MS")
SHIFT_MONTH = "2025-09"  # the first entity's discharge jumps here


def make_run(out: Path) -> dict:
    """A published-run folder: leads, alerts, outbox, water rights, profiles, model, typed entities/permits, linkage."""
    out = Path(out)
    (out / "workspace" / "typed").mkdir(parents=True, exist_ok=True)
    n = PER_DISTRICT * len(DISTRICTS)
    uscc = [f"91371400MA{i:08d}" for i in range(n)]
    district = [DISTRICTS[i % len(DISTRICTS)] for i in range(n)]
    industry = [("C1713", "C2614", "F5100", "H6110")[i % 4] for i in range(n)]
    names = [f"德州测试企业{i:02d}有限公司" for i in range(n)]
    risk = np.linspace(0.98, 0.05, n)
    reasons = [f"近12个月排水量是供水量的{3.2 - i * 0.05:.1f}倍；无取水许可" if i % 2 == 0 else
               "计量取水量连续3个月不变；水资源税申报量低于计量量" for i in range(n)]
    pd.DataFrame({"rank": np.arange(1, n + 1), "uscc": uscc, "name": names, "district": district,
                  "industry_code": industry, "risk_score": risk, "reasons": reasons,
                  "model_version": "7"}).to_csv(out / "leads.csv", index=False)
    pd.DataFrame({
        "uscc": uscc, "name": names, "district": district, "industry_code": industry,
        "address": [f"{d}测试路{i}号" for i, d in enumerate(district)],
        "registered_on": pd.to_datetime("2015-03-01"), "deregistered_on": pd.NaT,
        "employees": pd.array([20 + i for i in range(n)], dtype="Int64"),
    }).to_parquet(out / "workspace" / "typed" / "entities.parquet")
    pd.DataFrame({  # the departments' own inspections: one of the first entity, before any verdict
        "inspection_id": ["INS-001"], "uscc": [uscc[0]], "inspected_on": pd.to_datetime(["2025-08-11"]),
        "officer_id": ["DZ-017"], "outcome": ["no_violation"], "violation_type": [None],
    }).to_parquet(out / "workspace" / "typed" / "inspections.parquet")
    pd.DataFrame({
        "permit_id": ["取水(鲁)字[2023]第001号", "取水(鲁)字[2023]第002号"], "uscc": [uscc[0], uscc[1]],
        "source": ["groundwater", "surface"], "purpose": ["industrial", "industrial"],
        "annual_quota_m3": [24_000.0, 60_000.0], "valid_from": pd.to_datetime(["2023-01-01", "2023-01-01"]),
        "valid_to": pd.to_datetime(["2027-12-31", "2027-12-31"]), "status": ["valid", "valid"],
        "wells": pd.array([2, 0], dtype="Int64"),
    }).to_parquet(out / "workspace" / "typed" / "permits.parquet")
    pd.DataFrame({
        "source": ["supply", "discharge", "supply"], "account_id": ["S0001", "D0001", "S0002"],
        "account_name": [names[0], names[0] + "（排水）", names[1]], "uscc": [uscc[0], uscc[0], uscc[1]],
        "method": ["uscc", "name_fuzzy", "name_exact"], "confidence": [1.0, 0.87, 0.95],
        "status": ["linked", "linked", "linked"],
    }).to_csv(out / "linkage.csv", index=False)
    rng = np.random.default_rng(0)
    prof = pd.DataFrame({"uscc": np.repeat(uscc, len(MONTHS)), "month": np.tile(MONTHS, n)})
    prof["supply_m3"] = 800 + rng.normal(0, 20, len(prof)).round(1)
    prof["abstraction_m3"] = 1500 + rng.normal(0, 30, len(prof)).round(1)
    jump = (prof["uscc"] == uscc[0]) & (prof["month"] >= pd.Timestamp(SHIFT_MONTH + "-01"))
    prof["discharge_m3"] = np.where(jump, 6000.0, 2000.0) + rng.normal(0, 25, len(prof)).round(1)
    # the profile stage dates a significant shift (here the planted one) in the ``*_shift_since`` columns
    prof["discharge_shift_score"] = np.where(jump, 9.0, 0.5)
    prof["discharge_shift_since"] = pd.Series(pd.NaT, index=prof.index).where(~jump, pd.Timestamp(SHIFT_MONTH + "-01"))
    prof.to_parquet(out / "profiles.parquet")
    pd.DataFrame({
        "alert_id": ["A1", "A2", "A3"], "kind": ["unpermitted", "quota", "tax_mismatch"],
        "level": ["red", "yellow", "orange"], "uscc": [uscc[0], uscc[1], uscc[2]], "name": names[:3],
        "permit_id": ["", "取水(鲁)字[2023]第002号", ""], "district": district[:3], "period": ["2026-06"] * 3,
        "value": [1.0, 0.85, 0.3], "threshold": [0.0, 0.8, 0.05], "unit": ["m3", "share", "share"],
        "message": ["无证取水", "用水量已达许可的85%", "申报量低于计量量30%"], "audience": ["bureau", "user", "bureau"],
    }).to_csv(out / "alerts.csv", index=False)
    pd.DataFrame({"message_id": ["M1", "M2"], "alert_id": ["A2", "A2"], "uscc": [uscc[1], uscc[1]],
                  "recipient": ["13800000000", "13900000000"], "text": ["您单位用水量已达许可的85%", "提醒"],
                  "segments": [1, 1], "status": ["queued", "queued"]}).to_csv(out / "outbox.csv", index=False)
    pd.DataFrame({"seller_uscc": [uscc[3]], "buyer_uscc": [uscc[6]], "source": ["groundwater"],
                  "district": [DISTRICTS[0]], "surplus_m3": [9000.0], "shortfall_m3": [4000.0],
                  "volume_m3": [4000.0]}).to_csv(out / "water_rights.csv", index=False)
    (out / "model.json").write_text(json.dumps({
        "version": "7", "trained_at": "2026-11-01T00:00:00+00:00", "as_of": "2026-07-01",
        "backtest": {"violation.model.precision_at_100": 0.41, "violation.model.lift_vs_naive_at_100": 1.9}},
        ensure_ascii=False), encoding="utf-8")
    return {"uscc": uscc, "district": district, "names": names}


def make_settings(tmp: Path, **model) -> Settings:
    s = Settings(home=tmp, database_url=f"sqlite:///{tmp / 'ww.db'}", show_progress=False,
                 auth=AuthSettings(secret_key="test-secret-0123456789abcdef-0123456789"))
    s.model.officer_capacity_k = model.get("capacity", 8)  # 12 per district > 8: exploration is drawn
    return s


def build_app(tmp: Path):
    """Store migrated, the run published, the app with the console mounted (demo users created)."""
    from serving.api import create_app
    from serving.console import console_router
    from serving.publish import publish_run
    from serving.store import open_store

    settings = make_settings(tmp)
    facts = make_run(tmp / "out")
    _, sessions = open_store(settings.resolved_database_url())
    publish_run(tmp / "out", sessions, settings)
    app = create_app(settings, session_factory=sessions, routers=[console_router()])
    return app, sessions, facts


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from fastapi.testclient import TestClient

    tmp = tmp_path_factory.mktemp("console")
    app, sessions, facts = build_app(tmp)
    with TestClient(app) as probe:  # officers' usernames follow the sorted districts
        del probe
    return {"app": app, "sessions": sessions, "facts": facts, "TestClient": TestClient}


def officer_of(district: str) -> str:
    return f"officer{sorted(DISTRICTS).index(district) + 1}"


def login(env, username: str, follow: bool = False):
    client = env["TestClient"](env["app"], base_url="http://testserver")
    r = post_login(client, username, DEMO_PASSWORD, follow_redirects=follow)
    return client, r


def lead_ids(sessions, district: str) -> list[int]:
    from serving.store import Lead

    with sessions() as s:
        return list(s.scalars(select(Lead.id).where(Lead.district == district, Lead.in_queue.is_(True))
                              .order_by(Lead.queue_position)))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


# -- login and roles -------------------------------------------------------------------------------


def test_login_redirects_by_role_and_sets_httponly_cookie(env):
    client, r = login(env, officer_of("德城区"))
    assert r.status_code == 303 and r.headers["location"] == "/queue"
    cookie = r.headers["set-cookie"]
    assert "ww_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    for user in ("supervisor", "analyst", "admin"):
        _, r = login(env, user)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard", user


def test_wrong_password_and_anonymous_pages(env):
    client = env["TestClient"](env["app"])
    r = post_login(client, "supervisor", "wrong", follow_redirects=False)
    assert r.status_code == 401 and "用户名或密码错误" in r.text and "ww_session" not in r.headers.get("set-cookie", "")
    r = client.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fqueue")
    client.cookies.set("ww_session", "not-a-token")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_officer_cannot_open_dashboard(env):
    client, _ = login(env, officer_of("德城区"))
    r = client.get("/dashboard")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html") and "无权访问" in r.text


# -- the officer's queue ---------------------------------------------------------------------------


def test_queue_shows_only_own_district_and_hides_exploration(env):
    facts = env["facts"]
    mine = "陵城区"
    client, _ = login(env, officer_of(mine), follow=True)
    r = client.get("/queue")
    assert r.status_code == 200
    html = r.text
    own = {u for u, d in zip(facts["uscc"], facts["district"]) if d == mine}
    shown = set(re.findall(r"91371400MA\d{8}", html))
    assert shown and shown <= own
    assert len(re.findall(r'class="lead-row', html)) == 8  # capacity 8 of 12: the queue, not the register
    for leak in ("exploratory", "queue_probability", "riskbar", "探索"):
        assert leak not in html
    from serving.store import Lead

    with env["sessions"]() as s:  # the fixture's capacity draws one exploratory lead per district
        explored = s.scalars(select(Lead).where(Lead.district == mine, Lead.exploratory.is_(True))).one()
    assert explored.uscc in shown
    page = client.get(f"/leads/{explored.id}").text
    for leak in ("exploratory", "queue_probability", "探索", f"{explored.risk_score:.2f}", "风险评分"):
        assert leak not in page
    # asking for another district is refused, not silently narrowed
    assert client.get("/queue", params={"district": "德城区"}).status_code == 403


def test_queue_filters_by_reason_text_and_alert_kind(env):
    client, _ = login(env, "supervisor")
    r = client.get("/queue", params={"q": "水资源税"})
    rows = re.findall(r'data-lead-id="\d+"', r.text)
    assert rows and "无取水许可" not in r.text.split("<tbody>")[1]
    r = client.get("/queue", params={"kind": "unpermitted"})
    assert re.findall(r"91371400MA\d{8}", r.text) == [env["facts"]["uscc"][0]]


# -- the lead page and verdicts ----------------------------------------------------------------------


def test_lead_page_shows_facts_chart_quota_and_shift(env):
    from serving.store import Lead

    facts = env["facts"]
    with env["sessions"]() as s:
        lead_id = s.scalar(select(Lead.id).where(Lead.uscc == facts["uscc"][0]))
    client, _ = login(env, officer_of(facts["district"][0]))
    html = client.get(f"/leads/{lead_id}").text
    assert facts["names"][0] in html and "德城区测试路0号" in html
    assert "取水(鲁)字[2023]第001号" in html and "S0001" in html and "87%" in html  # accounts with confidence
    svg = re.search(r'<svg class="chart" data-chart="monthly".*?</svg>', html, re.S).group(0)
    for key in ("supply", "abstraction", "discharge", "quota"):
        assert f'class="series {key}"' in svg
    assert f"突变起始 {SHIFT_MONTH}" in svg  # the planted level shift is marked where it began
    assert "无证取水" in html and "近12个月排水量" in html  # alert and reason
    assert "risk_score" not in html and "风险评分" not in html  # officers see no model score


def test_other_districts_lead_is_a_403_page(env):
    facts = env["facts"]
    other = lead_ids(env["sessions"], "禹城市")[0]
    client, _ = login(env, officer_of("德城区"))
    r = client.get(f"/leads/{other}")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "无权访问" in r.text and facts["names"][2] not in r.text
    assert client.get("/leads/999999").status_code == 404


def test_verdict_form_records_closes_and_audits(env):
    from serving.store import AuditLog, Lead, Verdict

    sessions = env["sessions"]
    district = "禹城市"
    lead_id = lead_ids(sessions, district)[0]
    client, _ = login(env, officer_of(district))
    page = client.get(f"/leads/{lead_id}")
    assert page.status_code == 200 and 'name="outcome"' in page.text
    token = csrf_of(page.text)
    # a violation without its type is refused with the reason, nothing is recorded
    r = client.post(f"/leads/{lead_id}/verdict", data={"csrf": token, "outcome": "violation", "note": "x"})
    assert r.status_code == 422 and "违法结论必须选择违法类型" in r.text
    # no CSRF token, no verdict
    r = client.post(f"/leads/{lead_id}/verdict", data={"outcome": "no_violation"})
    assert r.status_code == 403
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Verdict).where(Verdict.lead_id == lead_id)) == 0
    r = client.post(f"/leads/{lead_id}/verdict", follow_redirects=False, data={
        "csrf": token, "outcome": "violation", "violation_type": "private_well", "note": "现场发现自备井",
        "visited_on": date.today().isoformat()})
    assert r.status_code == 303 and r.headers["location"] == f"/queue?recorded={lead_id}"
    with sessions() as s:
        lead = s.get(Lead, lead_id)
        v = s.scalars(select(Verdict).where(Verdict.lead_id == lead_id)).one()
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "verdict", AuditLog.object_id == str(lead_id))).one()
    assert lead.status == "closed" and v.outcome == "violation" and v.violation_type == "private_well"
    assert v.officer == officer_of(district) and audit.detail["verdict_id"] == v.id
    queue = client.get(f"/queue?recorded={lead_id}").text
    row = re.search(rf'<tr class="lead-row status-(\w+) just-recorded"[^>]*data-lead-id="{lead_id}"', queue)
    assert row and row.group(1) == "closed" and "核查结论已登记" in queue
    assert re.search(r'data-tile="violations">1<', queue)
    # the lead page now shows the past inspection and no form
    page = client.get(f"/leads/{lead_id}").text
    assert "现场发现自备井" in page and 'name="outcome"' not in page


def test_assignment_through_the_api_code_path(env):
    from serving.store import Assignment, AuditLog, Lead

    sessions = env["sessions"]
    district = "陵城区"
    first, second = lead_ids(sessions, district)[:2]
    officer = officer_of(district)
    client, _ = login(env, officer)
    page = client.get(f"/leads/{first}").text
    r = client.post(f"/leads/{first}/assign", data={"csrf": csrf_of(page), "officer": "supervisor"},
                    follow_redirects=False)  # an officer can only take a lead himself, whatever the form says
    assert r.status_code == 303 and r.headers["location"] == f"/leads/{first}?assigned=1"
    with sessions() as s:
        lead = s.get(Lead, first)
        assert (lead.status, lead.assigned_officer) == ("assigned", officer)
        assert s.scalar(select(func.count()).select_from(Assignment).where(Assignment.lead_id == first)) == 1
        assert s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "assign", AuditLog.object_id == str(first))) == 1
    assert "data-assigned-officer>" + officer in client.get(f"/leads/{first}").text
    # a supervisor assigns to an officer of the lead's district, and sees the workload
    sup, _ = login(env, "supervisor")
    page = sup.get(f"/leads/{second}").text
    assert f'<option value="{officer}"' in page and 'option value="officer1"' not in page  # only that district's
    assert sup.post(f"/leads/{second}/assign", data={"csrf": csrf_of(page), "officer": officer}).status_code == 200
    dash = sup.get("/dashboard").text
    row = re.search(rf'<tr data-officer="{officer}"><td><a [^>]+>{officer}</a></td><td>[^<]*</td><td class="num">(\d+)</td>',
                    dash)
    assert row and int(row.group(1)) == 2
    # assigning another district's officer is refused by the API's rule, shown as a page
    r = sup.post(f"/leads/{second}/assign", data={"csrf": csrf_of(page), "officer": "officer1"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")


def test_odd_lead_ids_logout_and_next(env):
    client, _ = login(env, "supervisor")
    for bad in ("abc", "0", "99999999999999999999"):
        r = client.get(f"/leads/{bad}")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), bad
    page = client.get("/dashboard").text
    r = client.post("/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303 and "ww_session" in r.headers["set-cookie"]
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    # after login the user lands where he was sent, unless it is another site or a page of another role
    anon = env["TestClient"](env["app"])
    r = post_login(anon, "supervisor", DEMO_PASSWORD, next="/queue?status=closed", follow_redirects=False)
    assert r.headers["location"] == "/queue?status=closed"
    r = post_login(anon, "supervisor", DEMO_PASSWORD, next="//evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/dashboard"
    r = post_login(anon, officer_of("德城区"), DEMO_PASSWORD, next="/dashboard", follow_redirects=False)
    assert r.headers["location"] == "/queue"


def test_expired_session_goes_back_to_login(env):
    from datetime import datetime, timedelta, timezone

    import jwt

    from serving.store import User

    with env["sessions"]() as s:
        user = s.scalars(select(User).where(User.username == "supervisor")).one()
    old = jwt.encode({"sub": user.username, "uid": user.id, "ver": user.token_version, "jti": "old",
                      "exp": datetime.now(timezone.utc) - timedelta(minutes=1)},
                     env["app"].state.secret_key, algorithm="HS256")
    client = env["TestClient"](env["app"])
    client.cookies.set("ww_session", old)
    r = client.get("/dashboard", follow_redirects=False)
    assert r.status_code == 303 and "expired=1" in r.headers["location"]
    assert "登录已过期" in client.get(r.headers["location"]).text


def test_dashboard_counts_follow_verdicts(env):
    client, _ = login(env, "supervisor")
    html = client.get("/dashboard").text
    verdicts = int(re.search(r'data-tile="verdicts">(\d+)<', html).group(1))
    with env["sessions"]() as s:
        from serving.store import Verdict

        assert verdicts == s.scalar(select(func.count()).select_from(Verdict))
    for part in ('data-chart="districts"', 'data-chart="alerts"', 'href="/outbox"', 'data-model-version>7<',
                 "violation.model.precision_at_100", 'data-chart="backlog-age"', 'data-table="officers"'):
        assert part in html, part


# -- language -------------------------------------------------------------------------------------


def test_english_switch_changes_strings_and_sticks(env):
    client, _ = login(env, "supervisor")
    zh = client.get("/dashboard").text
    assert "全市总览" in zh and "City dashboard" not in zh
    r = client.get("/dashboard", params={"lang": "en"})
    assert "City dashboard" in r.text and "Hit rate" in r.text and "全市总览" not in r.text
    assert "ww_lang=en" in r.headers["set-cookie"]
    assert "Lead queue" in client.get("/queue").text  # the cookie keeps the choice
    assert "线索队列" in client.get("/queue", params={"lang": "zh"}).text
    assert "Username" in env["TestClient"](env["app"]).get("/login?lang=en").text
    assert "用户名" in env["TestClient"](env["app"]).get("/login").text


def test_static_assets_are_local(env):
    client = env["TestClient"](env["app"])
    assert client.get("/static/console.css").status_code == 200
    assert client.get("/static/../console.py").status_code == 404
    html = client.get("/login").text
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_monthly_quota_line():
    from serving.console.charts import monthly_quota
    from serving.store import Permit

    months = [f"{y}-{m:02d}" for y in (2024, 2025) for m in range(1, 13)]
    quota = monthly_quota(months, [Permit(permit_id="p", annual_quota_m3=1200.0, valid_from=date(2024, 6, 1),
                                          valid_to=date(2025, 5, 31), status="valid")])
    assert quota[:5] == [None] * 5 and quota[5] == 100.0 and quota[16] == 100.0 and quota[17] is None
    # a renewal starting mid-month replaces the old permit: the line stays level instead of doubling
    renewal = monthly_quota(months, [
        Permit(permit_id="old", annual_quota_m3=1200.0, valid_from=date(2023, 1, 1), valid_to=date(2024, 11, 5)),
        Permit(permit_id="new", annual_quota_m3=1200.0, valid_from=date(2024, 11, 6), valid_to=date(2029, 1, 1)),
        Permit(permit_id="gone", annual_quota_m3=9e9, status="revoked")])
    assert renewal == [100.0] * 24
