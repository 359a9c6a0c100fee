"""Console and report defects found in review 9, each proven here before its fix.

- "today" on the verdict form, the verdict's validation and the day sheet is the bureau's (China) date, not the
  server process's (a server on UTC offered, and accepted, only yesterday's date until 08:00 Beijing time);
- on a phone (390 px) the queue's reason column is readable, not squeezed to a letter's width;
- on a phone the lead's monthly chart has legible axis text;
- the run report's case table does not state 0.0 万元 of tax for case kinds that have no tax figure.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from test_console import DISTRICTS, build_app, csrf_of, lead_ids, login, officer_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
BUREAU = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from fastapi.testclient import TestClient

    app, sessions, facts = build_app(tmp_path_factory.mktemp("review9"))
    with TestClient(app):  # the start-up creates the demo users
        pass
    return {"app": app, "sessions": sessions, "facts": facts, "TestClient": TestClient}


@contextmanager
def process_zone(name: str):
    """The server process's local zone set to ``name`` (as on a host configured for another zone)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def bureau_dates() -> set[str]:
    """Today in Beijing, and the next day too when midnight is near (a test that straddles it)."""
    now = datetime.now(BUREAU)
    return {now.date().isoformat(), (now + timedelta(minutes=2)).date().isoformat()}


# UTC-12 is behind Beijing's date from 00:00 to 20:00 Beijing time, UTC+14 ahead of it from 18:00 to 24:00: at any
# moment one of the two hosts has a date other than the bureau's
HOST_ZONES = ("Etc/GMT+12", "Etc/GMT-14")


@pytest.mark.parametrize("zone", HOST_ZONES)
def test_verdict_form_offers_and_accepts_the_bureaus_today(env, zone):
    district = DISTRICTS[0]
    client, _ = login(env, officer_of(district))
    lid = lead_ids(env["sessions"], district)[-1 if zone == HOST_ZONES[0] else -2]
    with process_zone(zone):
        html = client.get(f"/leads/{lid}").text
        max_day = re.search(r'name="visited_on" value="([0-9-]+)" max="([0-9-]+)"', html)
        assert max_day.group(1) in bureau_dates() and max_day.group(2) in bureau_dates(), (zone, max_day.groups())
        today = datetime.now(BUREAU).date().isoformat()
        r = client.post(f"/leads/{lid}/verdict", data={"csrf": csrf_of(html), "outcome": "no_violation",
                                                       "visited_on": today}, follow_redirects=False)
        assert r.status_code == 303, (zone, r.status_code, re.findall(r'role="alert">([^<]*)', r.text))
        day = client.get("/queue/day?mine=0").text
        assert re.search(r'<span class="pill">([0-9-]+)</span>', day).group(1) in bureau_dates(), zone


def test_verdict_without_a_date_is_dated_the_bureaus_today(env):
    from serving.schemas import VerdictCreate
    from serving.services.verdicts import record_verdict
    from serving.identity import Principal

    ids = lead_ids(env["sessions"], DISTRICTS[1])
    principal = Principal(username="supervisor", role="supervisor")
    for zone, lid in zip(HOST_ZONES, ids[-2:]):
        with process_zone(zone), env["sessions"]() as s:
            v = record_verdict(s, lid, VerdictCreate(outcome="no_violation"), principal)
            assert v.visited_on.isoformat() in bureau_dates(), zone


# -- the run report -------------------------------------------------------------------------------


def test_report_case_table_has_no_tax_figure_where_none_was_computed():
    from serving.report import cases_section

    cases = pd.DataFrame({
        "case_id": ["c1", "c2", "c3"], "kind": ["unpermitted_use", "unpermitted_use", "tax_verification"],
        "action": ["enforcement_file", "enforcement_file", "tax_quantity_correction"],
        "district": ["德城区", "德城区", "禹城市"], "name": ["甲", "乙", "丙"], "period": ["2026", "2026", "2026-Q2"],
        "evidence_text": ["x", "y", "z"], "volume_at_stake_m3": [50_000.0, 12_000.0, 30_000.0],
        "tax_at_stake_yuan": [float("nan"), float("nan"), 45_000.0], "verified_m3": [None, None, 30_000.0],
    })
    page = "".join(cases_section(cases))
    table = re.search(r"<table><thead><tr><th>类型</th><th>处理措施</th>.*?</table>", page, re.S).group(0)
    rows = {re.search(r"<td[^>]*>([^<]*)</td>", row).group(1): re.findall(r"<td[^>]*>([^<]*)</td>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])}
    assert rows["水量核定"][-1] == "4.5"
    assert rows["无证取水"][-1] == "—", rows["无证取水"]  # no tax computed for these: not a measured zero


# -- in a browser, at a phone's width ---------------------------------------------------------------


@pytest.fixture(scope="module")
def phone(env):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (make browser); browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed in .venv")
    from test_console_browser import serve
    from serving.services.users import DEMO_PASSWORD

    with serve(env["app"]) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        page = ctx.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", officer_of(DISTRICTS[2]))
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        yield base, page
        browser.close()


@pytest.mark.browser
def test_queue_reasons_are_readable_on_a_phone(phone):
    base, page = phone
    page.goto(f"{base}/queue")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    reason = page.locator("tr.lead-row td.col-reason").first
    assert reason.inner_text().strip()
    box = reason.bounding_box()
    assert box["width"] >= 200, f"the reason column is {box['width']:.0f} px wide on a 390 px phone"
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # on screen, no sideways scrolling to read it


@pytest.mark.browser
def test_lead_chart_text_is_legible_on_a_phone(phone):
    base, page = phone
    lid = lead_ids_of_page(page, base)
    page.goto(f"{base}/leads/{lid}")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    sizes = page.evaluate("""() => Array.from(document.querySelectorAll('.chart-box svg.chart'))
        .filter(svg => svg.getBoundingClientRect().width > 0)
        .map(svg => {
            const t = svg.querySelector('text.axis');
            return [svg.getBoundingClientRect().width,
                    parseFloat(getComputedStyle(t).fontSize) * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width];
        })""")
    assert len(sizes) == 1, sizes  # one chart shown
    width, font_px = sizes[0]
    assert width <= 390 and font_px >= 9, f"axis text drawn at {font_px:.1f} px on a phone"


def lead_ids_of_page(page, base: str) -> str:
    page.goto(f"{base}/queue")
    return page.locator("tr.lead-row").first.get_attribute("data-lead-id")
