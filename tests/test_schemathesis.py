"""Property-based tests of every API operation from its own OpenAPI schema: no input makes it fail with a 5xx,
on SQLite and on PostgreSQL (when one is reachable; the same generated cases run against both)."""

from __future__ import annotations

import atexit
import tempfile
import uuid
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import text

from serving.api import create_app
from serving.publish import publish_run
from serving.services.users import create_api_key, create_user
from serving.settings import AuthSettings
from serving.store import make_engine, open_store
from test_api import bearer
from test_store import PG_URL, _postgres_reachable, make_run
from waterwatch.settings import Settings

SECRET = "schemathesis-secret-key-at-least-32-chars"
_TMP = tempfile.TemporaryDirectory(prefix="ww-schemathesis-")


def _published_app(url: str):
    """Built at import: schemathesis parametrizes tests from a schema it loads at collection time
    (its ``from_fixture`` loader fails on pytest 9). A supervisor may call nearly everything, so
    generated cases reach the handlers, not only the 403."""
    root = Path(_TMP.name)
    cfg = Settings(home=root, database_url=url,  # generated logins must not lock the test client's address
                   auth=AuthSettings(secret_key=SECRET, login_address_max_failures=10_000))
    cfg.model.officer_capacity_k = 10
    _, sessions = open_store(url)
    publish_run(make_run(root / f"run-{uuid.uuid4().hex[:6]}", n=60), sessions, cfg)
    with sessions() as s, s.begin():
        create_user(s, "sup", "a-long-enough-password", "supervisor")
        create_api_key(s, "sup", "schemathesis")
    return create_app(cfg, sessions, demo_users=False), sessions


def _postgres_app():
    if _postgres_reachable():
        return None
    schema = f"ww_st_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    atexit.register(drop)
    return _published_app(f"{PG_URL}?options=-csearch_path%3D{schema}")


APPS = {"sqlite": _published_app(f"sqlite:///{Path(_TMP.name) / 'st.db'}"), "postgresql": _postgres_app()}
schema = schemathesis.openapi.from_asgi("/openapi.json", APPS["sqlite"][0])


@pytest.fixture(scope="module")
def app():
    return APPS["sqlite"][0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request):
    if APPS[request.param] is None:
        pytest.skip(_postgres_reachable() or "no PostgreSQL")
    return APPS[request.param]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, backend):
    app_, sessions = backend
    headers = bearer(sessions, "sup", SECRET)  # a fresh token each time: a generated logout revokes it
    response = case.call_and_validate(headers=headers, checks=[not_a_server_error], app=app_)
    # the token reached the handlers: only the login form, logout and generated (wrong) API keys may answer 401
    generated_key = any(k.lower() == "x-api-key" for k in (case.headers or {}))
    assert response.status_code != 401 or generated_key or case.path.endswith(("/auth/token", "/auth/logout")), (
        case.path, response.text)


def test_schema_documents_every_operation(app):
    spec = TestClient(app).get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/health", "/api/v1/model", "/api/v1/scores/{uscc}", "/api/v1/scores/batch", "/api/v1/leads",
                 "/api/v1/leads/{lead_id}", "/api/v1/leads/{lead_id}/assign", "/api/v1/leads/{lead_id}/verdicts",
                 "/api/v1/leads/{lead_id}/start", "/api/v1/me/leads", "/api/v1/alerts", "/api/v1/outbox",
                 "/api/v1/outbox/{message_id}/sent", "/api/v1/leads/{lead_id}/verdict/amend",
                 "/api/v1/leads/{lead_id}/reopen", "/api/v1/auth/logout",
                 "/api/v1/outbox/{message_id}/failed", "/api/v1/water-rights", "/api/v1/admin/reload-model",
                 "/api/v1/auth/token"):
        assert path in paths, path
    # every operation documents its success response with a schema
    for path, ops in paths.items():
        for method, op in ops.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            if ok.get("content") is None and next(k for k in op["responses"] if k.startswith("2")) == "204":
                continue  # no content to describe
            assert "schema" in ok.get("content", {}).get("application/json", {}), (method, path)
    assert {"OAuth2PasswordBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
