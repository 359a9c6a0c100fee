"""Property-based tests of every API operation from its own OpenAPI schema: no input makes it fail with a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from serving import auth
from serving.api import create_app
from serving.publish import publish_run
from serving.store import open_store
from test_store import make_run
from waterwatch.settings import Settings

SECRET = "schemathesis-secret-key-at-least-32-chars"


def _published_app():
    """Built at import: schemathesis parametrizes tests from a schema it loads at collection time
    (its ``from_fixture`` loader fails on pytest 9)."""
    root = Path(_TMP.name)
    cfg = Settings(database_url=f"sqlite:///{root / 'st.db'}", secret_key=SECRET)
    cfg.model.officer_capacity_k = 10
    _, sessions = open_store(cfg.resolved_database_url())
    publish_run(make_run(root / "run", n=60), sessions, cfg)
    return create_app(cfg, sessions, demo_users=False)


_TMP = tempfile.TemporaryDirectory(prefix="ww-schemathesis-")
APP = _published_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def app():
    return APP


@pytest.fixture(scope="module")
def headers():
    """A supervisor may call nearly everything, so generated cases reach the handlers, not only the 403."""
    token = auth.issue_token(auth.Principal("sup", "supervisor"), SECRET, 60)
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, headers):
    response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
    # the token reached the handlers: only the login form and generated (wrong) API keys may answer 401
    generated_key = any(k.lower() == "x-api-key" for k in (case.headers or {}))
    assert response.status_code != 401 or generated_key or case.path.endswith("/auth/token"), (case.path, response.text)


def test_schema_documents_every_operation(app):
    spec = TestClient(app).get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/health", "/api/v1/model", "/api/v1/scores/{uscc}", "/api/v1/scores/batch", "/api/v1/leads",
                 "/api/v1/leads/{lead_id}", "/api/v1/leads/{lead_id}/assign", "/api/v1/leads/{lead_id}/verdicts",
                 "/api/v1/leads/{lead_id}/start", "/api/v1/me/leads", "/api/v1/alerts", "/api/v1/outbox",
                 "/api/v1/outbox/{message_id}/sent",
                 "/api/v1/outbox/{message_id}/failed", "/api/v1/water-rights", "/api/v1/admin/reload-model",
                 "/api/v1/auth/token"):
        assert path in paths, path
    # every operation documents its success response with a schema
    for path, ops in paths.items():
        for method, op in ops.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            assert "schema" in ok.get("content", {}).get("application/json", {}), (method, path)
    assert {"OAuth2PasswordBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
