"""The running service: API and console on one FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from waterwatch.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    from serving.api import create_app
    from serving.console import console_router
    from serving.sms.service import attach_sender

    app = create_app(settings, routers=[console_router()])
    attach_sender(app, settings)
    return app
