"""The service: ``create_app(settings)`` builds the API (and mounts the console's routers).

The store is opened (and migrated) and the signing key resolved when the app is built; when the service
starts, the lifespan handler loads the live run and its model, creates the demo users of a non-production
install, and in production refuses to start while a demo login still works. Domain errors of the
services become JSON answers here, with the status ``serving.errors.http_status`` gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from serving.api.guards import EdgeGuard
from serving.api.routes import build_api_router
from serving.errors import DomainError, TooManyAttempts, http_status
from serving.identity import Identities
from serving.api import docs
from serving.runtime import ModelHolder
from serving.schemas import HealthPublic
from serving.security import check_hash_cost, signing_key, warm_up_hashing
from serving.services.users import demo_logins, ensure_demo_users
from serving.store import Entity, Lead, open_store

DESCRIPTION = "违法取水线索：风险评分、执法线索队列、核查结论、预警与短信。Scores, lead queues, verdicts, alerts."


class DemoLoginsInProduction(ValueError):
    """Production must not start while a demo account can still log in."""


def refuse_demo_logins(sessions: sessionmaker) -> None:
    with sessions() as session:
        found = demo_logins(session)
    if found:
        raise DemoLoginsInProduction(
            f"生产环境拒绝启动：演示账号仍可登录 (production refuses to start while demo logins work: "
            f"{', '.join(found)}); run `waterwatch users deactivate NAME` or `waterwatch users set-password NAME`")


def _lifespan(demo_users: bool):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = app.state.settings
        if settings.production:
            refuse_demo_logins(app.state.sessions)
        app.state.model.reload()
        if demo_users:
            with app.state.sessions() as session, session.begin():
                districts = [tuple(p) for p in session.execute(select(Lead.city, Lead.district).where(
                    Lead.city.is_not(None), Lead.district.is_not(None)).distinct())]  # a province's cities
                districts = districts or [d for d in session.scalars(select(Entity.district).distinct()) if d]
                ensure_demo_users(session, settings.production, districts, settings.auth.password_hash_cost)
        yield

    return lifespan


def _errors(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        code = http_status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
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


def _health(app: FastAPI) -> None:
    @app.get("/health", response_model=HealthPublic, tags=["health"])
    def health(request: Request):
        """Liveness and readiness: the database answers and which run is served."""
        info = request.app.state.model.info
        try:
            with request.app.state.engine.connect() as connection:  # a pooled connection, no ORM session
                connection.execute(text("SELECT 1"))
            db = "ok"
        except Exception as exc:  # report, don't crash: the health check is what monitoring reads
            db = f"error: {type(exc).__name__}"
        return HealthPublic(status="ok" if db == "ok" else "degraded", database=db, run_id=info.run_id,
                            model_version=info.version)


def create_app(
    settings,
    session_factory: sessionmaker | None = None,
    routers: Iterable[APIRouter] = (),
    demo_users: bool | None = None,
) -> FastAPI:
    """The service. ``routers`` (e.g. the console's) are mounted after the API. ``demo_users`` (default:
    not production) creates the demo accounts of ``ensure_demo_users`` at start-up; production never
    gets them. ``settings`` is the root settings: ``auth``, ``serving``, ``production``, ``home``."""
    configured = settings.auth.secret_key.get_secret_value() if settings.auth.secret_key else None
    secret_key = signing_key(configured, settings.home, settings.production)
    check_hash_cost(settings.auth.password_hash_cost, settings.production)
    warm_up_hashing(settings.auth.password_hash_cost)
    if session_factory is None:
        _, session_factory = open_store(settings.resolved_database_url())
    demo = demo_users if demo_users is not None else not settings.production
    app = FastAPI(title="WaterWatch API", version="1", description=DESCRIPTION, lifespan=_lifespan(demo),
                  max_body_size=settings.serving.max_body_bytes,
                  docs_url=None, redoc_url=None)  # served from the package by ``serving.api.docs``
    app.add_middleware(EdgeGuard)
    app.state.settings, app.state.secret_key, app.state.sessions = settings, secret_key, session_factory
    app.state.model = ModelHolder(session_factory, settings.serving.run_check_seconds, getattr(settings, "home", None))
    app.state.engine = session_factory.kw["bind"]
    app.state.identities = Identities(app.state.engine)
    _errors(app)
    _health(app)
    app.include_router(build_api_router(settings.serving.max_batch_body_bytes))
    app.include_router(docs.router)
    for router in routers:
        app.include_router(router)
    return app
