"""Every console page in a real browser, as an officer, a supervisor and an analyst, at desktop (1366 px) and
tablet (820 px) width, in Chinese and in English, on SQLite (on the local PostgreSQL every page of every role
once, at desktop width in Chinese: the layout does not depend on the store), over a real pipeline
run (a generated city through every stage) published to the store and worked a little through the console.

Each page must load with its status, fit its width (``document.scrollingElement.scrollWidth <= innerWidth``),
show no untranslated template key, have nothing on its console (script errors, what the CSP refused), and in
English carry no Chinese in its own labels (names, addresses and the SMS texts sent are data and stay as written).

What keeps it cheap without checking less: each role signs in once, and its language is switched with the
``ww_lang`` cookie in that same context (each page's ``<html lang>`` must show it took). Each page is loaded
once per language and checked at both widths by resizing the window (loaded at one width and the other in
turn): the server never sees the width and the layout is CSS alone (media queries; the test asserts that
console.js measures nothing), so a resize lays the page out as a load at that width would.
Screenshots of every page, role, width and language go to ``screenshots/walk/``: the window, two screens tall
(all of a lead, the head and first rows of a list); full-length ones (the day sheet is 25 screens long) took
half of the walk's time.
The pipeline runs once for the session (``small_city_run``); each database gets one published store.
"""

from __future__ import annotations

import base64
import re
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from serving import i18n
from serving.console.render import LANG_COOKIE
from serving.services.users import DEMO_PASSWORD
from test_console_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, serve
from test_store import PG_URL, _postgres_reachable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = {"desktop": 1366, "tablet": 820}
HEIGHT = 1800  # two screens: what a screenshot shows (the height changes no width: headless has no scrollbars)
CONSOLE_JS = Path(__file__).resolve().parents[1] / "serving" / "static" / "console.js"
PIXEL_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
LANGS = ("zh", "en")
KEY_PREFIXES = sorted({k.split(".", 1)[0] for k in i18n.STRINGS})
KEY_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in KEY_PREFIXES) + r")\.[a-z][a-z0-9_]*\b")
CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\u3010\u3011\uff1a\uff0c\u3002]")
# the page as laid out now, and its own words (not data): direct text of headings, labels, buttons, table heads,
# tiles, the menu
PAGE_JS = """() => {
  const sel = 'h2:not(.data), h3, th, label, legend, button, .tile-label, .nav a, .tabs a, .pager span, .legend li,'
            + ' .export span, .flash, .muted.count, .action-bar a, .source-tag, .error-card h1, .error-card p,'
            + ' .login-card h1, .login-card p';
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (el.closest('.day-group h2, .data')) continue;
    for (const node of el.childNodes) if (node.nodeType === 3 && node.textContent.trim()) out.push(node.textContent.trim());
  }
  return {lang: document.documentElement.lang, width: document.scrollingElement.scrollWidth, inner: window.innerWidth,
          body: document.body.innerText, own: out};
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
    """Record what the page's console reports (a missing icon included: every page names ``/static/favicon.svg``)."""
    found = ERRORS.setdefault(id(page), [])
    page.on("console", lambda msg: found.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return page


def _login(browser, base: str, username: str):
    """A context signed in as ``username``, at desktop width, in Chinese; the walk resizes it and sets its language."""
    context = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": HEIGHT}, locale="zh-CN")
    page = _watch(context.new_page())
    page.goto(f"{base}/login?lang=zh")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation(wait_until="load"):
        page.click("button[type=submit]")
    return context, page


def _submit(page, selector: str) -> None:
    """Click a form's button and wait for the page the POST redirects to (every form here is a plain POST)."""
    with page.expect_navigation(wait_until="load"):
        page.click(selector)


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


def _work_a_lead(page, base: str, lead_id: int, tmp_path) -> None:
    """What an officer does in the field, on a tablet, through the console: take, start, attach a photo, record."""
    page.set_viewport_size({"width": WIDTHS["tablet"], "height": HEIGHT})
    page.goto(f"{base}/leads/{lead_id}")
    _submit(page, "button.take")
    _submit(page, '[data-action="start"]')
    photo = tmp_path / "meter.png"
    photo.write_bytes(base64.b64decode(PIXEL_PNG))
    page.set_input_files(".evidence-form input[type=file]", str(photo))
    page.fill(".evidence-form input[name=note]", "水表铅封被破坏")
    _submit(page, ".evidence-form button[type=submit]")
    assert page.locator("[data-evidence-id]").count() == 1
    page.check('input[name=outcome][value="violation"]')
    page.select_option("select[name=violation_type]", "meter_tampering")
    page.fill("textarea[name=note]", "现场发现水表被动过")
    _submit(page, ".verdict-form button[type=submit]")
    assert "/queue" in page.url


def _check_page(page, url: str, lang: str, status: int = 200) -> list[str]:
    """What is wrong with the page now shown, as laid out at the window's present width; [] when nothing."""
    problems = []
    now = page.evaluate(PAGE_JS)
    if now["lang"] != ("en" if lang == "en" else "zh-CN"):
        problems.append(f"{url}: shown in {now['lang']!r}, not {lang}")
    if now["width"] > now["inner"]:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap'))
            .slice(0, 3).map(e => e.tagName + '.' + e.className)""")
        problems.append(f"{url}: {now['width']} px wide at {now['inner']} ({wide})")
    errors = [e for e in ERRORS.get(id(page), []) if f"status of {status}" not in e]  # the page's own status
    ERRORS.get(id(page), []).clear()
    if errors:
        problems.append(f"{url}: console errors {errors[:3]}")
    keys = sorted(set(KEY_PATTERN.findall(now["body"])))
    if keys:
        problems.append(f"{url}: untranslated keys {keys[:5]}")
    if lang == "en":
        chinese = [w for w in now["own"] if CJK.search(w)]
        if chinese:
            problems.append(f"{url}: Chinese left in English labels {chinese[:5]}")
    return problems


def _shoot(page, path: Path) -> None:
    """The window (the page's top two screens), for people to look at. PNG: twice as slow to take as a JPEG, but
    the README's pictures are cut from these (docs/screenshots/make.py), and from a JPEG they come out twice as big."""
    page.screenshot(path=str(path))


def test_every_page_fits_and_speaks_both_languages_for_every_role(browser, served, tmp_path):
    base, sessions, backend = served["base"], served["sessions"], served["backend"]
    officer, district, lead_id = _officer_and_lead(sessions)
    case_kind = _case_kind(sessions, district)
    # checking each width by resizing a loaded page holds while the layout is CSS alone
    assert not re.search(r"innerWidth|outerWidth|clientWidth|offsetWidth|getBoundingClientRect|matchMedia|resize",
                         CONSOLE_JS.read_text()), "console.js measures the window: load each page at each width"

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
    signed_in = {user: _login(browser, base, user) for user in pages}  # one sign-in per role for the whole walk
    try:
        _work_a_lead(signed_in[officer][1], base, lead_id, tmp_path)
        # the supervisor sends the SMS outbox through the (file) sender from the console
        page = signed_in["supervisor"][1]
        page.goto(f"{base}/outbox")
        queued = page.locator('[data-tile="queued"]').inner_text()
        _submit(page, '[data-action="send-now"]')
        assert page.locator('[data-tile="queued"]').inner_text() == "0" and int(queued.replace(",", "")) > 0

        problems, loaded, checked = [], 0, 0
        i18n.MISSING.clear()
        shots = SHOTS / "walk"
        if backend == "sqlite":
            shutil.rmtree(shots, ignore_errors=True)  # no stale pictures beside this run's
            shots.mkdir(parents=True)
        # widths and languages are the same HTML whatever the store: on PostgreSQL every page of every role is
        # loaded once (desktop, Chinese), for what the database changes (queries, errors), not again for the layout
        widths = WIDTHS if backend == "sqlite" else {"desktop": WIDTHS["desktop"]}
        langs = LANGS if backend == "sqlite" else ("zh",)

        def check(page, who: str, url: str, lang: str, status: int, name: str) -> None:
            """The page just loaded, at every width, from the one it was loaded at (the last page's last: pages
            are loaded at each width in turn): checked, and photographed on SQLite."""
            nonlocal problems, checked
            for size, width in sorted(widths.items(), key=lambda sw: sw[1] != page.viewport_size["width"]):
                page.set_viewport_size({"width": width, "height": HEIGHT})
                problems += [f"{who} {size} {lang} {p}" for p in _check_page(page, url, lang, status)]
                checked += 1
                if backend == "sqlite":
                    _shoot(page, shots / f"{who}-{size}-{lang}-{name}.png")

        for user, urls in pages.items():
            context, page = signed_in[user]
            for lang in langs:
                context.add_cookies([{"name": LANG_COOKIE, "value": lang, "url": base}])
                for url in urls:
                    response = page.goto(base + url, wait_until="load")
                    loaded += 1
                    expected = 403 if (user == officer and url == "/dashboard") else 200
                    if response is None or response.status != expected:
                        problems.append(f"{user} {url}: HTTP {None if response is None else response.status}")
                        continue
                    name = re.sub(r"[^a-z0-9]+", "-", url.strip("/").lower()).strip("-") or "home"
                    check(page, role_of[user], url, lang, expected, name.replace(str(lead_id), "lead"))
    finally:
        for context, _ in signed_in.values():
            context.close()
    context = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": HEIGHT})
    page = _watch(context.new_page())
    for lang in langs:  # and the login page, before anyone signs in
        page.goto(f"{base}/login?lang={lang}", wait_until="load")
        check(page, "anonymous", "/login", lang, 200, "login")
    context.close()
    assert not problems, "\n".join(problems)
    assert loaded == sum(len(v) for v in pages.values()) * len(langs)
    assert checked == (loaded + len(langs)) * len(widths)
    assert not i18n.MISSING, f"keys with no translation: {sorted(i18n.MISSING)[:10]}"
