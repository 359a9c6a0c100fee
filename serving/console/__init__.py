"""The web console: officers work their district's queue, supervisors watch the city.

Server-rendered HTML (Jinja2) with charts drawn as inline SVG (``charts``), so that a laptop or tablet
with no internet shows everything from this service alone. The session is an HttpOnly cookie holding
the same signed token the API issues; pages use the same dependencies (``serving.deps``) and the same
service functions (``serving.services``) as the API, so both record assignments, verdicts and their
audit lines the same way. Officers never see which of their leads were drawn for exploration: like
the API, the console shows them neither the model's score nor its rank, and orders their queue by
the shuffled queue position.
"""

from __future__ import annotations

from fastapi import APIRouter

from serving.console.routes import alerts, cases, dashboard, lead, login, outbox, province, queue, water_rights

PAGES = (login, queue, lead, dashboard, alerts, cases, outbox, water_rights, province)


def console_router() -> APIRouter:
    """The console's pages; mount with ``create_app(settings, routers=[console_router()])``."""
    router = APIRouter(include_in_schema=False)
    for page in PAGES:
        router.include_router(page.router)
    return router
