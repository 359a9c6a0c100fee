"""The console in a real browser: headless Chromium (Debian's, via Playwright) against a real uvicorn.

One officer works a lead end to end, a supervisor sees the dashboard move, another district's lead
is a 403 page, and the queue is usable at tablet width. Screenshots of every page go to
``screenshots/`` at the repo root (``WATERWATCH_SCREENSHOTS`` overrides).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from serving.services.users import DEMO_PASSWORD
from test_console import DISTRICTS, build_app, lead_ids, officer_of

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("WATERWATCH_SCREENSHOTS") or Path(__file__).resolve().parents[1] / "screenshots")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app):
    """``app`` served by uvicorn on a free loopback port, for as long as the block runs; yields its base URL."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app, sessions, facts = build_app(tmp_path_factory.mktemp("browser"))
    with serve(app) as url:
        yield {"url": url, "sessions": sessions, "facts": facts}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium); browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed in .venv")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(browser, base: str, username: str, width: int = 1280):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation(wait_until="load"):  # the page the login redirects to (not networkidle: +0.5 s)
        page.click("button[type=submit]")
    return context, page


def _tile(page, name: str) -> str:
    return page.locator(f'[data-tile="{name}"]').inner_text().strip()


def test_officer_works_a_lead_and_the_supervisor_sees_it(browser, server):
    base = server["url"]
    district = DISTRICTS[0]

    # the supervisor's numbers before
    sup_ctx, sup = _login(browser, base, "supervisor")
    assert sup.url.endswith("/dashboard")
    verdicts_before = int(_tile(sup, "verdicts"))

    # officer: login page, queue, first lead with its chart
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(f"{base}/login")
    assert page.locator("input[name=username]").is_visible()
    _shot(page, "login")
    page.fill("input[name=username]", officer_of(district))
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/queue$"))
    rows = page.locator("tr.lead-row")
    assert rows.count() == 8
    districts = set(page.locator("td.col-district").all_inner_texts())
    assert districts == {district}
    _shot(page, "queue")

    first = rows.first
    lead_id = first.get_attribute("data-lead-id")
    first.locator("td.col-reason").click()  # a click anywhere on the row opens the lead
    page.wait_for_url(re.compile(rf".*/leads/{lead_id}$"))
    chart = page.locator('svg[data-chart="monthly"]')
    assert chart.is_visible()
    assert page.locator('svg[data-chart="monthly"] path.series').count() >= 3
    box = chart.bounding_box()
    assert box["width"] > 400 and box["height"] > 150
    _shot(page, "lead")

    # the violation type only appears for a violation
    assert not page.locator(".violation-type").is_visible()
    page.check('input[name=outcome][value="violation"]')
    assert page.locator(".violation-type").is_visible()
    page.select_option("select[name=violation_type]", "meter_tampering")
    page.fill("textarea[name=note]", "水表铅封被破坏")
    page.click(".verdict-form button[type=submit]")
    page.wait_for_url(re.compile(rf".*/queue\?recorded={lead_id}$"))
    row = page.locator(f'tr[data-lead-id="{lead_id}"]')
    assert row.locator("[data-status]").get_attribute("data-status") == "closed"
    assert "已结案" in row.inner_text()
    assert _tile(page, "violations") == "1"
    _shot(page, "queue-after-verdict")

    # another district's lead: a proper 403 page
    other = lead_ids(server["sessions"], DISTRICTS[2])[0]
    response = page.goto(f"{base}/leads/{other}")
    assert response.status == 403
    assert page.locator(".error-card").is_visible() and "无权访问" in page.inner_text("h1")
    _shot(page, "forbidden-403")
    ctx.close()

    # the supervisor's dashboard moved
    sup.reload()
    assert int(_tile(sup, "verdicts")) == verdicts_before + 1
    assert _tile(sup, "hit_rate") == "100%"
    assert sup.locator('svg[data-chart="hit-rate"] rect.bar').count() >= 1
    assert sup.locator(f'tr[data-officer="{officer_of(district)}"]').is_visible()
    _shot(sup, "dashboard")
    sup.goto(f"{base}/dashboard?lang=en")
    assert "City dashboard" in sup.inner_text("h1")
    _shot(sup, "dashboard-en")
    sup_ctx.close()


def test_queue_and_lead_at_tablet_width(browser, server):
    ctx, page = _login(browser, server["url"], officer_of(DISTRICTS[1]), width=768)
    assert page.url.endswith("/queue")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, f"the queue overflows a 768 px tablet ({width} px)"
    assert page.locator("tr.lead-row").first.is_visible()
    _shot(page, "queue-tablet")
    with page.expect_navigation(wait_until="load"):
        page.locator("a.lead-link").first.click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    assert page.locator('svg[data-chart="monthly"]').bounding_box()["width"] <= 768
    _shot(page, "lead-tablet")
    ctx.close()


def test_a_province_supervisor_sees_each_citys_model_and_picks_one(browser, tmp_path):
    """A province's store whose two cities' live runs carry different models: the province supervisor's dashboard
    lists each city's model in the model card, within the page at desktop and tablet widths, and the city's link
    narrows the page to that city's one model."""
    from serving.api import create_app
    from serving.console import console_router
    from serving.store import open_store
    from test_api import bearer, settings_for
    from test_province import MODELS, _city_models, _province_store

    url = f"sqlite:///{tmp_path / 'province.db'}"
    _, sessions = open_store(url)
    _province_store(sessions, tmp_path)
    _city_models(sessions, MODELS)
    app = create_app(settings_for(url), sessions, routers=[console_router()], demo_users=False)
    token = bearer(sessions, "prov")["Authorization"].removeprefix("Bearer ")
    with serve(app) as base:
        for width in (1280, 768):
            ctx = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
            ctx.add_cookies([{"name": "ww_session", "value": token, "url": base}])
            page = ctx.new_page()
            page.goto(f"{base}/dashboard")
            card = page.locator("section.model-card")
            assert card.locator("[data-models-differ]").is_visible()
            versions = {row.get_attribute("data-model-city"): row.locator("[data-model-version]").inner_text()
                        for row in card.locator("tr[data-model-city]").all()}
            assert versions == {"德州市": "7", "聊城市": "9"}
            box = card.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (width, box)
            if width == 1280:
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                card.locator("details[data-model-backtest='德州市'] summary").click()
                assert card.locator("details[data-model-backtest='德州市']").inner_text().count("0.611") == 1
                _shot(page, "dashboard-province-models")
                with page.expect_navigation(wait_until="load"):
                    card.locator("tr[data-model-city='德州市'] a").click()
                assert "city=" in page.url
                card = page.locator("section.model-card")
                assert card.locator("[data-models-differ]").count() == 0
                assert card.locator("[data-model-version]").inner_text() == "7"
            ctx.close()
