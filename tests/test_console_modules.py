"""The console's module pages (alerts, cases, SMS outbox, water rights) through FastAPI's TestClient: who may
see and do what, filters, and every list as CSV and XLSX."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from test_console import DISTRICTS, env, login, officer_of  # noqa: F401 - env is a fixture


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def csv_rows(response) -> list[list[str]]:
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())  # Excel reads the Chinese as UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def xlsx_rows(response) -> list[tuple]:
    assert "spreadsheetml" in response.headers["content-type"]
    return list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))


def test_outbox_page_lists_every_message_with_its_state_and_exports(env):
    sup, _ = login(env, "supervisor")
    page = sup.get("/outbox")
    assert page.status_code == 200
    assert page.text.count('data-message-id="') == 2 and 'data-state="queued"' in page.text
    assert "您单位用水量已达许可的85%" in page.text  # the whole text, not a clipped card
    assert 'data-action="send-now"' in page.text
    rows = csv_rows(sup.get("/outbox?format=csv"))
    assert rows[0][:3] == ["消息编号", "状态", "接收方"] and {r[0] for r in rows[1:]} == {"M1", "M2"}
    rows = xlsx_rows(sup.get("/outbox?format=xlsx&lang=en"))
    assert rows[0][:3] == ("Message", "Status", "Recipient") and len(rows) == 3
    assert sup.get("/outbox?state=failed").text.count('data-message-id="') == 0

    analyst, _ = login(env, "analyst")
    seen = analyst.get("/outbox")
    assert seen.status_code == 200 and 'data-action="send-now"' not in seen.text
    assert analyst.post("/outbox/send", data={"csrf": csrf_of(seen.text)}).status_code == 403
    officer, _ = login(env, officer_of(DISTRICTS[0]))
    assert officer.get("/outbox").status_code == 403


def test_send_now_and_resend_from_the_outbox_page(env, tmp_path):
    sup, _ = login(env, "supervisor")
    page = sup.get("/outbox")
    assert sup.post("/outbox/send", data={"csrf": "wrong"}).status_code == 403
    done = sup.post("/outbox/send", data={"csrf": csrf_of(page.text)}, follow_redirects=True)
    assert done.status_code == 200 and "本次发出 2 条" in done.text
    assert done.text.count('data-state="delivered"') == 2  # the file sender delivers at once
    assert 'data-action="resend"' not in done.text  # nothing failed: nothing to resend

    from serving.store import OutboxMessage

    with env["sessions"]() as s, s.begin():
        s.get(OutboxMessage, "M2").status = "failed"
        s.get(OutboxMessage, "M2").error = "HTTP 503"
    page = sup.get("/outbox?state=failed")
    assert page.text.count('data-message-id="') == 1 and "HTTP 503" in page.text
    again = sup.post("/outbox/M2/resend", data={"csrf": csrf_of(page.text)}, follow_redirects=True)
    assert "已重新排入发送队列" in again.text
    with env["sessions"]() as s:
        assert s.get(OutboxMessage, "M2").status == "queued"
    assert sup.post("/outbox/M2/resend", data={"csrf": csrf_of(page.text)}).status_code == 409  # already queued


def test_times_show_on_the_bureaus_clock_in_pages_and_exports(env):
    """The store keeps UTC; a bureau in Shandong reads Beijing time (UTC+8) on pages and in exports, and the
    dashboard's model training time is no longer a raw ISO string."""
    from datetime import datetime

    from serving.store import OutboxMessage

    sup, _ = login(env, "supervisor")
    with env["sessions"]() as s, s.begin():
        s.get(OutboxMessage, "M1").sent_at = datetime(2026, 11, 30, 20, 5, 0)  # naive = UTC
    assert "2026-12-01 04:05" in sup.get("/outbox").text
    rows = csv_rows(sup.get("/outbox?format=csv&lang=en"))
    sent = rows[0].index("Sent")
    assert {r[0]: r[sent] for r in rows[1:]}["M1"] == "2026-12-01 04:05:00"
    assert {r[0]: r[sent] for r in xlsx_rows(sup.get("/outbox?format=xlsx&lang=en"))[1:]}["M1"] == "2026-12-01 04:05:00"
    card = sup.get("/dashboard").text
    assert "2026-11-01 08:00" in card and "2026-11-01T00:00:00+00:00" not in card  # trained_at of the fixture


def test_the_display_zone_is_a_setting_and_must_exist():
    from pydantic import ValidationError

    from serving.i18n import local_time
    from serving.settings import ServingSettings

    assert local_time("2026-11-01T00:00:00+00:00", "Europe/London") == "2026-11-01 00:00"
    assert local_time(None) == "—" and local_time("2026-06-30T16:30:00") == "2026-07-01 00:30"
    with pytest.raises(ValidationError, match="unknown time zone"):
        ServingSettings(display_timezone="Asia/Dezhou")


def test_water_rights_page_shows_matches_sellers_and_buyers_with_volumes(env):
    sup, _ = login(env, "supervisor")
    facts = env["facts"]
    page = sup.get("/water-rights")
    assert page.status_code == 200 and page.text.count("data-match=") == 1
    assert facts["names"][3] in page.text and facts["names"][6] in page.text and "4,000" in page.text
    sellers = sup.get("/water-rights?view=sellers")
    assert f'data-party="{facts["uscc"][3]}"' in sellers.text and "9,000" in sellers.text
    buyers = sup.get("/water-rights?view=buyers&lang=en")
    assert f'data-party="{facts["uscc"][6]}"' in buyers.text and "Sellers matched" in buyers.text
    assert sup.get("/water-rights?q=nobody").text.count("data-match=") == 0
    rows = csv_rows(sup.get("/water-rights?format=csv&lang=zh"))
    assert rows[0][0] == "富余方" and rows[1][-1] == "4000.0"
    rows = xlsx_rows(sup.get("/water-rights?view=sellers&format=xlsx"))
    assert rows[1][1] == facts["uscc"][3] and rows[1][5] == 4000.0
    officer, _ = login(env, officer_of(DISTRICTS[0]))
    assert officer.get("/water-rights").status_code == 403


def test_alerts_page_by_kind_with_english_texts_curves_and_exports(env):
    sup, _ = login(env, "supervisor")
    page = sup.get("/alerts?lang=zh")
    assert page.status_code == 200 and page.text.count("data-alert-id=") == 3
    assert "无证取水" in page.text and "用水量已达许可的85%" in page.text
    quota = sup.get("/alerts?kind=quota")
    assert quota.text.count("data-alert-id=") == 1 and 'data-chart="ytd"' in quota.text
    assert 'class="threshold yellow"' in quota.text and 'class="threshold red"' in quota.text
    en = sup.get("/alerts?lang=en")
    assert "has reached 85% of the permitted annual volume of permit" in en.text
    assert "without a valid permit" in en.text and "用水量已达许可的85%" not in en.text
    assert sup.get("/alerts?level=red").text.count("data-alert-id=") == 1
    rows = xlsx_rows(sup.get("/alerts?format=xlsx&lang=en"))
    assert rows[0][:3] == ("Alert", "Alert kind", "Level") and len(rows) == 4
    rows = csv_rows(sup.get("/alerts?format=csv&kind=tax_mismatch&lang=zh"))
    assert len(rows) == 2 and rows[1][1] == "水资源税不符"

    # an officer sees their own district's alerts only, and may not ask for another's
    officer, _ = login(env, officer_of(DISTRICTS[0]))
    mine = officer.get("/alerts")
    assert mine.status_code == 200 and mine.text.count("data-alert-id=") == 1
    assert officer.get(f"/alerts?district={DISTRICTS[1]}").status_code == 403


def test_queue_sorts_searches_and_filters_by_industry_name_mine_and_address(env):
    facts = env["facts"]
    sup, _ = login(env, "supervisor")
    page = sup.get("/queue?lang=zh")
    shown = re.sub(r'(data-industry|value)="C1713"', "", page.text)  # codes only in attributes
    assert "棉印染精加工" in page.text and "C1713" not in shown
    assert f"{DISTRICTS[0]}测试路0号" in page.text  # the address column
    dyeing = sup.get("/queue?industry=C1713")
    assert set(re.findall(r'data-industry="(\w+)"', dyeing.text)) == {"C1713"}
    by_name = sup.get("/queue?q=印染")  # a search finds the industry by its name
    assert set(re.findall(r'data-industry="(\w+)"', by_name.text)) == {"C1713"}
    by_address = sup.get("/queue?q=测试路5号")
    assert re.findall(r'data-lead-id="(\d+)"', by_address.text) and facts["names"][5] in by_address.text
    names = re.findall(r'class="lead-link" href="/leads/\d+">([^<]+)<', sup.get("/queue?sort=name&status=new").text)
    assert names == sorted(names) and len(names) > 3
    risk = sup.get("/queue?sort=risk").text
    scores = [float(x) for x in re.findall(r'<span class="small mono">([0-9.]+)</span>', risk)]
    assert scores == sorted(scores, reverse=True)

    officer_name = officer_of(DISTRICTS[1])
    officer, _ = login(env, officer_name)
    assert "sort=risk" not in officer.get("/queue").text and 'value="risk"' not in officer.get("/queue").text
    assert officer.get("/queue?sort=risk").status_code == 200  # ignored, not an error: queue order stays
    first = re.findall(r'data-lead-id="(\d+)"', officer.get("/queue").text)[0]
    lead = officer.get(f"/leads/{first}")
    officer.post(f"/leads/{first}/assign", data={"csrf": re.search(r'name="csrf" value="([0-9a-f]+)"', lead.text).group(1)})
    mine = officer.get("/queue?mine=1")
    assert re.findall(r'data-lead-id="(\d+)"', mine.text) == [first]
    rows = csv_rows(officer.get("/queue?format=csv&lang=zh"))
    assert rows[0][:4] == ["顺序", "单位", "统一社会信用代码", "地址"] and "风险" not in rows[0]


def test_day_sheet_groups_the_route_by_street_and_exports(env):
    officer, _ = login(env, officer_of(DISTRICTS[2]))
    page = officer.get("/queue/day?mine=0&lang=zh")
    assert page.status_code == 200 and 'data-action="print"' in page.text
    groups = re.findall(r'data-group="([^"]+)"', page.text)
    assert groups == ["测试路"]  # every fixture address is on 测试路
    assert len(re.findall(r"<tr data-lead-id=", page.text)) == 8
    assert "<script>" not in page.text  # printing is console.js's, under the CSP
    rows = csv_rows(officer.get("/queue/day?mine=0&format=csv&lang=zh"))
    assert rows[0][0] == "园区或街道" and {r[0] for r in rows[1:]} == {"测试路"} and len(rows) == 9
    empty = officer.get("/queue/day?lang=zh")  # default: my open leads; none assigned to this officer
    assert "没有待核查的线索" in empty.text


def test_dashboard_lists_every_officer_drills_down_and_exports(env):
    sup, _ = login(env, "supervisor")
    html = sup.get("/dashboard?lang=zh").text
    officers = re.findall(r'<tr data-officer="([^"]+)">', html)
    assert sorted(officers) == sorted(officer_of(d) for d in DISTRICTS)  # all officers, worked or not
    # each bar segment links to the list it counts
    links = set(re.findall(r'<a href="([^"]+)" class="drill">', html))
    assert any(h.startswith("/queue?district=") and "status=new" in h for h in links)
    assert any(h.startswith("/alerts?kind=") for h in links)
    drilled = sup.get(next(h for h in links if h.startswith("/queue?district=")).replace("&amp;", "&"))
    assert drilled.status_code == 200 and 'class="lead-row' in drilled.text
    rows = csv_rows(sup.get("/dashboard?table=officers&format=csv&lang=zh"))
    assert rows[0][0] == "负责人" and len(rows) == 1 + len(DISTRICTS)
    rows = xlsx_rows(sup.get("/dashboard?table=districts&format=xlsx&lang=en"))
    assert rows[0][0] == "District" and {r[0] for r in rows[1:]} == set(DISTRICTS)
    assert len(csv_rows(sup.get("/dashboard?table=runs&format=csv"))) == 2  # one published run


def test_model_panel_never_shows_a_count_as_a_share_nor_zero_as_a_measurement():
    from serving.console.routes.dashboard import model_section
    from serving.i18n import metric_label
    from serving.runtime import ModelInfo

    thin = {"inspected.model.precision_at_100": 0.0033, "inspected.model.labelled_at_100": 2.6667,
            "inspected.naive.precision_at_100": 0.0067, "truth.model.precision_at_100": 0.61,
            "truth.model.labelled_at_100": 100.0}
    sections = {s["target"]: s for s in model_section(ModelInfo(run_id="r", backtest=thin), "zh")["model_targets"]}
    assert not sections["inspected"]["measurable"] and sections["truth"]["measurable"]
    shown = [k for k, *_ in sections["inspected"]["rows"]]
    assert shown == ["inspected.model.labelled_at_100"]  # the count of labelled entities, no precision
    assert "比例" not in metric_label("inspected.model.labelled_at_100", "zh")
    assert "Share" not in metric_label("inspected.model.labelled_at_100", "en")
    empty = model_section(ModelInfo(run_id="r", backtest={}), "en")
    assert empty["model_targets"] == [] and "no backtest" in empty["model_why"]


def test_the_model_view_of_a_province_shows_each_citys_model_only_when_they_differ():
    """``model_view`` from the holder's ``ModelInfo`` alone: every city with differing models lists each city's
    (sorted by city), with each city's data period when theirs differ; one city, or one shared model, shows one."""
    from dataclasses import replace

    from serving.console.routes.dashboard import model_view
    from serving.runtime import ModelInfo
    from serving.services.scope import Scope

    dz = ModelInfo(run_id="r-dz", version="7", as_of="2026-06-01", city="德州市",
                   backtest={"truth.model.precision_at_100": 0.611})
    lc = ModelInfo(run_id="r-lc", version="9", as_of="2026-07-01", city="聊城市",
                   backtest={"truth.model.precision_at_100": 0.422})
    differ = replace(lc, live_runs=("r-lc", "r-dz"), cities=(lc, dz), models_differ=("聊城市", "德州市"))
    view = model_view(differ, Scope(), "zh")
    assert [(m["city"], m["info"].version) for m in view["model_cities"]] == [("德州市", "7"), ("聊城市", "9")]
    assert [m["model_targets"][0]["rows"][0][2] for m in view["model_cities"]] == [0.611, 0.422]
    assert view["periods"] == [("德州市", "2026-06-01"), ("聊城市", "2026-07-01")] and view["run_shown"] is None
    one = model_view(differ, Scope("德州市", every_city=False), "zh")
    assert one["model_cities"] == [] and one["info"].version == "7" and one["run_shown"] == "r-dz"
    assert one["periods"] == [(None, "2026-06-01")]
    shared = model_view(replace(differ, models_differ=()), Scope(), "zh")
    assert shared["model_cities"] == [] and shared["info"].version == "9" and shared["run_shown"] is None
    city_run = model_view(dz, Scope(), "zh")  # a city run's store: its one live run
    assert city_run["run_shown"] == "r-dz" and city_run["periods"] == [(None, "2026-06-01")]


def test_legend_colours_are_told_apart():
    from itertools import combinations

    from serving.console.charts import AGE_COLOURS, LEVEL_COLOURS, STATUS_COLOURS

    def rgb(h):
        return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))

    for palette in (LEVEL_COLOURS, STATUS_COLOURS, AGE_COLOURS):
        for (a, ca), (b, cb) in combinations(palette.items(), 2):
            distance = sum((x - y) ** 2 for x, y in zip(rgb(ca), rgb(cb))) ** 0.5
            assert distance > 60, (a, b, distance)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n" + b"0" * 200


def _lead_of(env, uscc: str) -> int:
    from sqlalchemy import select

    from serving.store import Lead

    with env["sessions"]() as s:
        return s.scalar(select(Lead.id).where(Lead.uscc == uscc))


def test_lead_page_shows_department_inspections_industry_name_and_the_form_before_the_details(env):
    facts = env["facts"]
    lead_id = _lead_of(env, facts["uscc"][0])
    officer, _ = login(env, officer_of(facts["district"][0]))
    html = officer.get(f"/leads/{lead_id}?lang=zh").text
    assert 'data-source="department"' in html and "2025-08-11" in html and "DZ-017" in html
    assert "尚无核查记录" not in html
    assert "棉印染精加工" in html  # C1713 by name
    # tablet-first: the verdict form comes right after the reasons, before the chart and the register
    assert html.index('id="verdict"') < html.index('class="card chart-card"') < html.index('class="card facts-card"')
    assert 'href="#verdict"' in html


def test_start_inspection_then_evidence_with_type_size_and_visibility_rules(env):
    facts = env["facts"]
    district = facts["district"][4]
    lead_id = _lead_of(env, facts["uscc"][4])
    officer, _ = login(env, officer_of(district))
    page = officer.get(f"/leads/{lead_id}").text
    officer.post(f"/leads/{lead_id}/assign", data={"csrf": csrf_of(page)})
    page = officer.get(f"/leads/{lead_id}").text
    assert 'data-action="start"' in page
    started = officer.post(f"/leads/{lead_id}/start", data={"csrf": csrf_of(page)}, follow_redirects=True)
    assert 'data-status="in_progress"' in started.text and 'data-action="start"' not in started.text
    token = csrf_of(started.text)

    up = officer.post(f"/leads/{lead_id}/evidence", data={"csrf": token, "note": "水表铅封"},
                      files={"file": ("现场.png", PNG, "image/png")}, follow_redirects=True)
    assert up.status_code == 200 and "证据已上传" in up.text and "水表铅封" in up.text
    pdf = officer.post(f"/leads/{lead_id}/evidence", data={"csrf": token},
                       files={"file": ("../../etc/passwd.pdf", PDF, "application/pdf")}, follow_redirects=True)
    assert pdf.status_code == 200
    ids = re.findall(r'data-evidence-id="(\d+)"', pdf.text)
    assert len(ids) == 2
    shown = officer.get(f"/leads/{lead_id}/evidence/{ids[0]}")
    assert shown.status_code == 200 and shown.content == PNG and shown.headers["content-type"] == "image/png"
    doc = officer.get(f"/leads/{lead_id}/evidence/{ids[1]}")
    assert doc.headers["content-disposition"].startswith("attachment") and "passwd.pdf" in doc.headers[
        "content-disposition"] and "/" not in doc.headers["content-disposition"].split("filename")[1]

    # what is refused: a file that is neither photo nor PDF (whatever it claims), an empty or oversize one
    fake = officer.post(f"/leads/{lead_id}/evidence", data={"csrf": token},
                        files={"file": ("x.png", b"<html><script>alert(1)</script>", "image/png")})
    assert fake.status_code == 422 and "PDF" in fake.text
    limits = env["app"].state.settings.evidence
    old = limits.max_bytes
    limits.max_bytes = 1024
    try:
        big = officer.post(f"/leads/{lead_id}/evidence", data={"csrf": token},
                           files={"file": ("big.png", PNG + b"\x00" * 2048, "image/png")})
        assert big.status_code == 422
    finally:
        limits.max_bytes = old
    assert officer.post(f"/leads/{lead_id}/evidence", data={"csrf": "bad"},
                        files={"file": ("a.png", PNG, "image/png")}).status_code == 403

    # who may see it: the lead's district and the city roles; not another district's officer
    other, _ = login(env, officer_of(next(d for d in DISTRICTS if d != district)))
    assert other.get(f"/leads/{lead_id}/evidence/{ids[0]}").status_code == 403
    analyst, _ = login(env, "analyst")
    assert analyst.get(f"/leads/{lead_id}/evidence/{ids[0]}").status_code == 200
    assert analyst.post(f"/leads/{lead_id}/evidence", data={"csrf": "x"},
                        files={"file": ("a.png", PNG, "image/png")}).status_code == 403
    stored = list((env["app"].state.settings.home / "evidence" / str(lead_id)).iterdir())
    assert len(stored) == 2 and all(p.suffix in (".png", ".pdf") for p in stored)


def test_reasons_follow_the_page_language_when_the_run_gives_them():
    from serving.console.reasons import reasons_in

    codes = [{"code": "balance_excess", "value": 2.7, "unit": "ratio", "text_zh": "排水量是供水量的2.7倍",
              "text_en": "Discharge is 2.7 times the supply"}]
    assert reasons_in("en", "排水量是供水量的2.7倍", codes) == ["Discharge is 2.7 times the supply"]
    assert reasons_in("zh", "排水量是供水量的2.7倍", codes) == ["排水量是供水量的2.7倍"]
    assert reasons_in("en", "甲；乙", None) == ["甲", "乙"]  # an older run: its Chinese sentences


def test_route_groups_industry_names_and_ytd_curves():
    from serving.console.charts import ytd_curve_svg, ytd_share
    from serving.console.route_groups import route_group
    from serving.industries import codes_named, industry_name

    assert route_group("山东省德州市夏津县夏津经济开发区经一路176号", "夏津县") == "夏津经济开发区"
    assert route_group("山东省德州市德城区解放南路1202号", "德城区") == "解放南路"
    assert route_group("聊城市茌平区文化路676号", None) == "文化路"
    assert route_group(None) == route_group("无地址") == "其他"
    assert industry_name("C1713") == "棉印染精加工" and industry_name("C1713", "en") == "Cotton printing and dyeing"
    assert industry_name("C1799") == "纺织业"  # an unlisted class: its division
    assert industry_name("Z9999") == "Z9999" and industry_name(None) == "—"
    assert codes_named("印染", ["C1713", "C3011", "C1752"]) == ["C1713"]

    series = {"month": ["2025-12", "2026-01", "2026-02", "2026-03"], "supply_m3": [50, 10, 20, 30],
              "abstraction_m3": [0, 10, None, 0]}
    shares = ytd_share(series, "2026", 84.0, permit_based=False)
    assert shares[:3] == [24.0, 48.0, 84.0] and shares[3:] == [None] * 9  # the level ends at the alert's number
    permit = ytd_share(series, "2026", 50.0, permit_based=True)
    assert permit[:3] == [50.0, 50.0, 50.0]  # the permit's metered abstraction only
    svg = str(ytd_curve_svg(shares, {"yellow": 80, "orange": 90, "red": 100}, {"title": "t"}))
    assert svg.count('class="threshold') == 3 and 'class="series ytd"' in svg and 'class="series projection"' in svg


def test_supervisor_amends_then_reopens_a_verdict_from_the_lead_page(env):
    from serving.store import AuditLog, Lead, Verdict
    from sqlalchemy import func, select

    facts = env["facts"]
    lead_id = _lead_of(env, facts["uscc"][7])
    officer, _ = login(env, officer_of(facts["district"][7]))
    page = officer.get(f"/leads/{lead_id}").text
    done = officer.post(f"/leads/{lead_id}/verdict", data={"csrf": csrf_of(page), "outcome": "no_violation",
                                                           "visited_on": "2026-11-20"}, follow_redirects=False)
    assert done.status_code == 303
    assert 'id="correct"' not in officer.get(f"/leads/{lead_id}").text  # officers do not correct verdicts
    assert officer.post(f"/leads/{lead_id}/amend", data={"csrf": csrf_of(page), "outcome": "violation",
                                                         "reason": "复核"}).status_code == 403

    sup, _ = login(env, "supervisor")
    page = sup.get(f"/leads/{lead_id}?lang=zh").text
    assert 'id="correct"' in page and 'data-action="amend"' in page and 'data-action="reopen"' in page
    token = csrf_of(page)
    missing = sup.post(f"/leads/{lead_id}/amend", data={"csrf": token, "outcome": "violation",
                                                         "violation_type": "private_well", "reason": ""})
    assert missing.status_code == 422 and "理由" in missing.text
    amended = sup.post(f"/leads/{lead_id}/amend", data={
        "csrf": token, "outcome": "violation", "violation_type": "private_well", "visited_on": "2026-11-20",
        "note": "复核发现私井", "reason": "现场照片显示私井"}, follow_redirects=True)
    assert amended.status_code == 200 and "结论已更正" in amended.text and "私自打井" in amended.text
    reopened = sup.post(f"/leads/{lead_id}/reopen", data={"csrf": token, "reason": "需再次核查"},
                        follow_redirects=True)
    assert "线索已重新打开" in reopened.text and 'data-status="closed"' not in reopened.text
    assert "已被复核更正" in reopened.text  # the earlier verdict stays in the history, superseded
    with env["sessions"]() as s:
        assert s.get(Lead, lead_id).status in ("assigned", "new")
        assert s.scalar(select(func.count()).select_from(Verdict).where(Verdict.lead_id == lead_id,
                                                                        Verdict.superseded.is_(True))) == 1
        actions = set(s.scalars(select(AuditLog.action).where(AuditLog.object_id == str(lead_id))))
        assert {"verdict_amend", "reopen"} <= actions


def _add_cases(env) -> dict:
    """Two cases in the store (as a run's cases.csv would raise them): one per district of the first two."""
    from serving.store import Case

    facts = env["facts"]
    first, second = facts["district"][0], facts["district"][1]
    with env["sessions"]() as s, s.begin():
        for c in s.query(Case).filter(Case.case_id.in_(("C-EXP-1", "C-TAX-1"))):
            s.delete(c)
        s.flush()
        s.add_all([
            Case(case_id="C-EXP-1", kind="expired_permit_in_use", uscc=facts["uscc"][0], name=facts["names"][0],
                 district=first, permit_id="取水(鲁)字[2019]第009号", period="2026", action="enforcement_file",
                 evidence_text="许可证已于2025-12-31到期，仍在取水 3,200 m³", volume_at_stake_m3=3200.0,
                 evidence_text_en="The permit expired on 2025-12-31; 3,200 m³ abstracted since"),
            Case(case_id="C-TAX-1", kind="tax_verification", uscc=facts["uscc"][1], name=facts["names"][1],
                 district=second, period="2026-Q2", action="tax_quantity_correction", verified_m3=12345.0,
                 tax_at_stake_yuan=6172.5, evidence_text="申报量低于计量量",
                 evidence_text_en="Declared below the metered quantity")])
    return {"first": first, "second": second}


def test_cases_page_is_in_the_navigation_with_kinds_filters_moves_and_exports(env):
    from serving.store import Case

    where = _add_cases(env)
    sup, _ = login(env, "supervisor")
    page = sup.get("/cases")
    assert page.status_code == 200 and 'href="/cases"' in page.text
    assert re.search(r'class="active" data-kind="quota"', page.text)  # the quota notices come first
    assert page.text.count("data-alert-id=") == 1  # the quota notice (A2), with its year-to-date text
    tax = sup.get("/cases?kind=tax_verification")
    assert tax.text.count('data-case-id="') == 1 and "C-TAX-1" in tax.text and "12,345" in tax.text
    assert {m for m in re.findall(r'data-move="(\w+)"', tax.text)} == {"in_progress", "closed", "dismissed"}
    assert sup.get("/cases?kind=tax_verification&status=closed").text.count('data-case-id="') == 0
    assert sup.get(f"/cases?kind=expired_permit_in_use&district={where['second']}").text.count('data-case-id="') == 0
    assert sup.get("/cases?kind=expired_permit_in_use&q=2019").text.count('data-case-id="') == 1
    en = sup.get("/cases?kind=tax_verification&lang=en")
    assert "Verify the quantity for the tax office" in en.text and "Declared below the metered quantity" in en.text
    rows = csv_rows(sup.get("/cases?kind=tax_verification&format=csv&lang=zh"))
    assert rows[0][:2] == ["案件编号", "案件类型"] and [r[0] for r in rows[1:]] == ["C-TAX-1"]
    rows = xlsx_rows(sup.get("/cases?kind=expired_permit_in_use&format=xlsx&lang=en"))
    assert rows[0][:2] == ("Case", "Case kind") and rows[1][0] == "C-EXP-1" and len(rows) == 2
    assert len(csv_rows(sup.get("/cases?kind=quota&format=csv"))) == 2  # notices export too

    # an officer works their own district's cases and may neither see nor move another's
    officer, _ = login(env, officer_of(where["first"]))
    mine = officer.get("/cases?kind=expired_permit_in_use")
    assert mine.status_code == 200 and "C-EXP-1" in mine.text
    assert officer.get("/cases?kind=tax_verification").text.count('data-case-id="') == 0
    assert officer.get(f"/cases?district={where['second']}").status_code == 403
    csrf = csrf_of(mine.text)
    moved = officer.post("/cases/C-EXP-1/status", data={"csrf": csrf, "status": "in_progress",
                                                       "back": "/cases?kind=expired_permit_in_use"},
                          follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"].endswith("done=in_progress")
    assert officer.post("/cases/C-TAX-1/status", data={"csrf": csrf, "status": "closed"}).status_code == 403
    assert officer.post("/cases/C-EXP-1/status", data={"csrf": "wrong", "status": "closed"}).status_code == 403
    closed = officer.post("/cases/C-EXP-1/status", data={"csrf": csrf, "status": "closed"}, follow_redirects=True)
    assert "data-move=\"open\"" not in closed.text  # only a supervisor reopens
    assert officer.post("/cases/C-EXP-1/status", data={"csrf": csrf, "status": "open"}).status_code == 403
    with env["sessions"]() as s:
        case = s.get(Case, "C-EXP-1")
        assert case.status == "closed" and case.assignee == officer_of(where["first"])

    # analysts read and never write
    analyst, _ = login(env, "analyst")
    seen = analyst.get("/cases?kind=tax_verification")
    assert seen.status_code == 200 and "C-TAX-1" in seen.text and "data-move=" not in seen.text
    assert analyst.post("/cases/C-TAX-1/status", data={"csrf": csrf_of(seen.text), "status": "closed"}).status_code == 403
