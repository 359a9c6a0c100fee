"""The API's documentation works with no internet: Swagger UI and ReDoc come from this service, with no
inline script, and render the API in a real browser that may reach nothing but the service."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from test_console import build_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One published store and app for the module (the browser test serves the same one)."""
    app, _, _ = build_app(tmp_path_factory.mktemp("docs"))
    return app


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("path, bundle", [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_docs_pages_load_only_this_services_files(client, path, bundle):
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert f"/docs/assets/{bundle}" in urls and "/docs/assets/docs-init.js" in urls
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script would need the CSP to allow it"
    assert "cdn" not in html.lower() and "googleapis" not in html
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000 or url.endswith("docs-init.js"), url
    assert client.get("/docs/assets/../../store.py").status_code == 404
    assert client.get("/docs/assets/nothing.js").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "WaterWatch API"
    assert "script-src 'self'" in page.headers["content-security-policy"]  # the docs live under the same policy


@pytest.mark.browser
def test_swagger_and_redoc_render_in_a_browser_that_reaches_nothing_else(app):
    from test_console_browser import CHROMIUM, CHROMIUM_ARGS, serve

    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve(app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        outside, errors = [], []
        page.route(re.compile(r"^(?!http://127\.0\.0\.1:\d+/).*"), lambda route: (outside.append(route.request.url),
                                                                                  route.abort()))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        spec = page.request.get(f"{base}/openapi.json").json()
        operations = sum(len(methods) for methods in spec["paths"].values())
        assert page.locator(".opblock").count() == operations  # every endpoint is listed
        assert "WaterWatch API" in page.inner_text(".info .title")
        page.goto(f"{base}/redoc")
        page.wait_for_selector("[role=menuitem], .menu-content li", timeout=20_000)
        assert "WaterWatch API" in page.inner_text("h1")
        browser.close()
    assert outside == [] and errors == [], (outside, errors)
