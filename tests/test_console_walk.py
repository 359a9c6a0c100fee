"""Every console page in a real browser, as an officer, a supervisor and an analyst, at desktop (1366 px) and
tablet (820 px) width, in Chinese and in English, on SQLite (on the local PostgreSQL every page of every role
once, at desktop width in Chinese: the layout does not depend on the store), over a real pipeline
run (a generated city through every stage) published to the store and worked a little through the console.

Each page must load, fit its width (``document.scrollingElement.scrollWidth <= innerWidth``), show no
untranslated template key, and in English carry no Chinese in its own labels (names, addresses and the
SMS texts sent are data and stay as written). Screenshots of every page go to ``screenshots/walk/``.
The pipeline runs once for the session (``small_city_run``); each database gets one published store.
"""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from sqlalchemy import select, text

from serving import i18n
from serving.services.users import DEMO_PASSWORD
from test_console_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, serve
from test_store import PG_URL, _postgres_reachable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = {"desktop": 1366, "tablet": 820}
PIXEL_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
LANGS = ("zh", "en")
KEY_PREFIXES = sorted({k.split(".", 1)[0] for k in i18n.STRINGS})
KEY_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in KEY_PREFIXES) + r")\.[a-z][a-z0-9_]*\b")
CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\u3010\u3011\uff1a\uff0c\u3002]")
# the page's own words (not data): direct text of headings, labels, buttons, table heads, tiles, the menu
OWN_WORDS_JS = """() => {
  const sel = 'h2:not(.data), h3, th, label, legend, button, .tile-label, .nav a, .tabs a, .pager span, .legend li,'
            + ' .export span, .flash, .muted.count, .action-bar a, .source-tag, .error-card h1, .error-card p,'
            + ' .login-card h1, .login-card p';
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (el.closest('.day-group h2, .data')) continue;
    for (const node of el.childNodes) if (node.nodeType === 3 && node.textContent.trim()) out.push(node.textContent.trim());
  }
  return out;
}"""


@pytest.fixture(scope="module")
def pipeline_out(small_city_run):
    """A generated city through every stage of the pipeline (the session's run; the console is walked on it)."""
    return small_city_run / "out"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request, pipeline_out, tmp_path_factory):
    """The run published into a fresh store of each kind, the service (API + console) on a free port."""
    from serving.publish import publish_run
    from serving.store import make_engine, open_store
    from waterwatch.service import build_app
    from waterwatch.settings import Settings

    home = tmp_path_factory.mktemp(f"walk-{request.param}")
    admin, schema = None, None
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'store.db'}"
    else:
        why = _postgres_reachable()
        if why:
            pytest.skip(why)
        schema = f"ww_walk_{uuid.uuid4().hex[:10]}"
        admin = make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    settings = Settings(home=home, database_url=url, show_progress=False)
    engine, sessions = open_store(url)
    try:
        publish_run(pipeline_out, sessions, settings)  # a pipeline run's outbox too (issue #10 item 2)
        app = build_app(settings)
        with serve(app) as base:
            yield {"base": base, "sessions": sessions, "backend": request.param, "app": app}
    finally:
        engine.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium); browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed in .venv")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


ERRORS: dict[int, list[str]] = {}  # page -> what its console reported (script errors, refused by the CSP)


def _watch(page):
    found = ERRORS.setdefault(id(page), [])
    page.on("console", lambda msg: found.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return page


def _login(browser, base: str, username: str, width: int, lang: str):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    page = _watch(context.new_page())
    page.goto(f"{base}/login?lang={lang}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation(wait_until="load"):
        page.click("button[type=submit]")
    return context, page


def _officer_and_lead(sessions) -> tuple[str, str, int]:
    """The demo officer of the district with the most open leads, and the first lead of their queue."""
    from sqlalchemy import func

    from serving.store import Lead, User

    with sessions() as s:
        district = s.execute(select(Lead.district, func.count()).where(Lead.in_queue.is_(True))
                             .group_by(Lead.district).order_by(func.count().desc(), Lead.district)).first()[0]
        officer = s.scalar(select(User.username).where(User.role == "officer", User.district == district))
        lead = s.scalar(select(Lead.id).where(Lead.district == district, Lead.in_queue.is_(True))
                        .order_by(Lead.queue_position))
    return officer, district, lead


def _case_kind(sessions, district: str) -> str:
    """The kind of case the run raised most often in the officer's district (the case track's busiest tab)."""
    from sqlalchemy import func

    from serving.store import Case

    with sessions() as s:
        found = s.execute(select(Case.kind, func.count()).where(Case.district == district).group_by(Case.kind)
                          .order_by(func.count().desc(), Case.kind)).first()
    assert found is not None, f"the run raised no case in {district}"
    return found[0]


def _work_a_lead(browser, base: str, officer: str, lead_id: int, tmp_path) -> None:
    """What an officer does in the field, through the console: take, start, attach a photo, record."""
    context, page = _login(browser, base, officer, 820, "zh")
    page.goto(f"{base}/leads/{lead_id}")
    page.click("button.take")
    page.wait_for_load_state("networkidle")
    page.click('[data-action="start"]')
    page.wait_for_load_state("networkidle")
    photo = tmp_path / "meter.png"
    photo.write_bytes(base64.b64decode(PIXEL_PNG))
    page.set_input_files(".evidence-form input[type=file]", str(photo))
    page.fill(".evidence-form input[name=note]", "水表铅封被破坏")
    page.click(".evidence-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-evidence-id]").count() == 1
    page.check('input[name=outcome][value="violation"]')
    page.select_option("select[name=violation_type]", "meter_tampering")
    page.fill("textarea[name=note]", "现场发现水表被动过")
    page.click(".verdict-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/queue" in page.url
    context.close()


def _check_page(page, url: str, lang: str, status: int = 200) -> list[str]:
    """What is wrong with the page now shown; [] when nothing."""
    problems = []
    width = page.evaluate("document.scrollingElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    if width > inner:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap'))
            .slice(0, 3).map(e => e.tagName + '.' + e.className)""")
        problems.append(f"{url}: {width} px wide at {inner} ({wide})")
    errors = [e for e in ERRORS.get(id(page), []) if f"status of {status}" not in e]  # the page's own status
    ERRORS.get(id(page), []).clear()
    if errors:
        problems.append(f"{url}: console errors {errors[:3]}")
    body = page.inner_text("body")
    keys = sorted(set(KEY_PATTERN.findall(body)))
    if keys:
        problems.append(f"{url}: untranslated keys {keys[:5]}")
    if lang == "en":
        chinese = [w for w in page.evaluate(OWN_WORDS_JS) if CJK.search(w)]
        if chinese:
            problems.append(f"{url}: Chinese left in English labels {chinese[:5]}")
    return problems


def test_every_page_fits_and_speaks_both_languages_for_every_role(browser, served, tmp_path):
    base, sessions, backend = served["base"], served["sessions"], served["backend"]
    officer, district, lead_id = _officer_and_lead(sessions)
    case_kind = _case_kind(sessions, district)
    _work_a_lead(browser, base, officer, lead_id, tmp_path)

    # the supervisor sends the SMS outbox through the (file) sender from the console
    context, page = _login(browser, base, "supervisor", 1366, "zh")
    page.goto(f"{base}/outbox")
    queued = page.locator('[data-tile="queued"]').inner_text()
    page.click('[data-action="send-now"]')
    page.wait_for_load_state("networkidle")
    assert page.locator('[data-tile="queued"]').inner_text() == "0" and int(queued.replace(",", "")) > 0
    context.close()

    common = ["/queue", "/queue?sort=name", f"/leads/{lead_id}", "/alerts", "/alerts?kind=quota", "/cases",
              f"/cases?kind={case_kind}"]
    pages = {
        officer: [*common, "/queue/day?mine=0", "/dashboard"],  # the dashboard: a 403 page, in words
        "supervisor": ["/dashboard", *common, "/queue/day?mine=0", "/outbox", "/water-rights",
                       "/water-rights?view=sellers"],
        "analyst": ["/dashboard", "/queue", f"/leads/{lead_id}", "/alerts", "/cases", f"/cases?kind={case_kind}",
                    "/outbox", "/water-rights"],
    }
    role_of = {officer: "officer", "supervisor": "supervisor", "analyst": "analyst"}
    problems, visited = [], 0
    i18n.MISSING.clear()
    shots = SHOTS / "walk"
    shots.mkdir(parents=True, exist_ok=True)
    # widths and languages are the same HTML whatever the store: on PostgreSQL every page of every role is loaded
    # once (desktop, Chinese), for what the database changes (queries, errors), not again for the layout
    widths = WIDTHS if backend == "sqlite" else {"desktop": WIDTHS["desktop"]}
    langs = LANGS if backend == "sqlite" else ("zh",)
    for user, urls in pages.items():
        for size, width in widths.items():
            for lang in langs:
                context, page = _login(browser, base, user, width, lang)
                for url in urls:
                    response = page.goto(base + url, wait_until="load")
                    visited += 1
                    expected = 403 if (user == officer and url == "/dashboard") else 200
                    if response is None or response.status != expected:
                        problems.append(f"{user} {url}: HTTP {None if response is None else response.status}")
                        continue
                    problems += [f"{role_of[user]} {size} {lang} {p}" for p in _check_page(page, url, lang, expected)]
                    if backend == "sqlite":
                        name = re.sub(r"[^a-z0-9]+", "-", url.strip("/").lower()).strip("-") or "home"
                        name = name.replace(str(lead_id), "lead")
                        page.screenshot(path=str(shots / f"{role_of[user]}-{size}-{lang}-{name}.png"), full_page=True)
                context.close()
    for size, width in widths.items():  # and the login page, before anyone signs in
        for lang in langs:
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = _watch(context.new_page())
            page.goto(f"{base}/login?lang={lang}", wait_until="load")
            problems += [f"anonymous {size} {lang} {p}" for p in _check_page(page, "/login", lang)]
            if backend == "sqlite":
                page.screenshot(path=str(shots / f"anonymous-{size}-{lang}-login.png"), full_page=True)
            context.close()
    assert visited == sum(len(v) for v in pages.values()) * len(widths) * len(langs)
    assert not problems, "\n".join(problems)
    assert not i18n.MISSING, f"keys with no translation: {sorted(i18n.MISSING)[:10]}"
