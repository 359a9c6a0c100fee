"""The service: ``create_app(settings)`` builds the API (and mounts the console's routers).

The store is opened (and migrated) when the app is built; the live run's model and the demo users
of a non-production install are loaded by the lifespan handler when the service starts. Domain
errors of the services become JSON answers here, with the status ``serving.errors.http_status`` gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from serving import auth
from serving.api import docs
from serving.api.routes import api_router
from serving.deps import KeyCache
from serving.errors import DomainError, http_status
from serving.runtime import ModelHolder
from serving.schemas import HealthPublic
from serving.store import Entity, open_store

DESCRIPTION = "违法取水线索：风险评分、执法线索队列、核查结论、预警与短信。Scores, lead queues, verdicts, alerts."


def check_settings(settings) -> None:
    """Refuse to build a production service on settings that are unsafe there."""
    if settings.production and (settings.secret_key in auth.DENIED_PASSWORDS or len(settings.secret_key) < 32):
        raise ValueError("production refuses the default or a short secret_key: set WATERWATCH_SECRET_KEY "
                         "to a random string of at least 32 characters")


def _lifespan(demo_users: bool):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.model.reload()
        if demo_users:
            with app.state.sessions() as session, session.begin():
                districts = [d for d in session.scalars(select(Entity.district).distinct()) if d]
                auth.ensure_demo_users(session, app.state.settings.production, districts)
        yield

    return lifespan


def _errors(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        code = http_status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse(status_code=code, content={"detail": exc.detail}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422,
                            content={"detail": errors, "message": f"请求参数无效 (invalid request): {message}"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug still answers in JSON, without internals
        return JSONResponse(status_code=500, content={"detail": "服务器内部错误 (internal server error)"})


def create_app(
    settings,
    session_factory: sessionmaker | None = None,
    routers: Iterable[APIRouter] = (),
    demo_users: bool | None = None,
) -> FastAPI:
    """The service. ``routers`` (e.g. the console's) are mounted after the API. ``demo_users`` (default:
    not production) creates the demo accounts of ``serving.auth.ensure_demo_users`` at start-up;
    production never gets them."""
    check_settings(settings)
    if session_factory is None:
        _, session_factory = open_store(settings.resolved_database_url())
    demo = demo_users if demo_users is not None else not settings.production
    app = FastAPI(title="WaterWatch API", version="1", description=DESCRIPTION, lifespan=_lifespan(demo),
                  docs_url=None, redoc_url=None)  # served from the package by ``serving.api.docs``
    app.state.settings = settings
    app.state.sessions = session_factory
    app.state.model = ModelHolder(session_factory)
    app.state.key_cache = KeyCache()
    _errors(app)

    @app.get("/health", response_model=HealthPublic, tags=["health"])
    def health(request: Request):
        """Liveness and readiness: the database answers and which run is served."""
        info = request.app.state.model.info
        try:
            with request.app.state.sessions() as session:
                session.execute(text("SELECT 1"))
            db = "ok"
        except Exception as exc:  # report, don't crash: the health check is what monitoring reads
            db = f"error: {type(exc).__name__}"
        return HealthPublic(status="ok" if db == "ok" else "degraded", database=db, run_id=info.run_id,
                            model_version=info.version)

    app.include_router(api_router)
    app.include_router(docs.router)
    for router in routers:
        app.include_router(router)
    return app
