"""The service over HTTP: login, district rules, assignments and verdicts in the audit log, limits, errors."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.api import create_app
from serving.publish import publish_run
from serving.security import issue_token
from serving.services.users import DEMO_PASSWORD, create_api_key, create_user
from serving.settings import AuthSettings, ServingSettings
from serving.store import Assignment, AuditLog, Lead, User, Verdict, open_store
from test_store import make_run
from waterwatch.settings import Settings

PASSWORD = "a-long-test-password"
SECRET = "test-secret-key-of-at-least-32-characters"


ROLES = {"sup": ("supervisor", None), "ana": ("analyst", None), "adm": ("admin", None),
         "off_dc": ("officer", "德城区"), "off_dc2": ("officer", "德城区"), "off_yc": ("officer", "禹城市")}


def settings_for(url: str, **serving) -> Settings:
    """Settings of a test service: a fixed signing key; it checks for a newer run on every request."""
    return Settings(database_url=url, auth=AuthSettings(secret_key=SECRET),
                    serving=ServingSettings(**{"run_check_seconds": 0.0, **serving}))


def bearer(sessions, username: str, secret: str = SECRET) -> dict:
    """A bearer token as the login endpoint issues it (logging in itself is tested apart: argon2 is slow)."""
    with sessions() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        token, _ = issue_token(user.username, user.id, user.token_version, secret, 60)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """One published store with users, made once (argon2 hashing is slow on purpose) and copied per test."""
    root = tmp_path_factory.mktemp("api-template")
    settings = settings_for(f"sqlite:///{root / 'api.db'}")
    settings.model.officer_capacity_k = 20
    engine, sessions = open_store(settings.resolved_database_url())
    publish_run(make_run(root / "run1"), sessions, settings)
    with sessions() as s, s.begin():
        for user, (role, district) in ROLES.items():
            create_user(s, user, PASSWORD, role, district)
        create_user(s, "gateway", None, "supervisor")  # the SMS gateway's system account: a key, no password
        key = create_api_key(s, "gateway", "sms gateway")
    engine.dispose()
    return root / "api.db", key


class Api:
    def __init__(self, tmp_path, template):
        db, self.gateway_key = template
        shutil.copyfile(db, tmp_path / "api.db")
        self.settings = settings_for(f"sqlite:///{tmp_path / 'api.db'}")
        self.settings.model.officer_capacity_k = 20
        self.tmp = tmp_path
        self.engine, self.sessions = open_store(self.settings.resolved_database_url())
        self.client = TestClient(create_app(self.settings, self.sessions, demo_users=False))
        self.client.__enter__()  # runs the lifespan: the live run's model is loaded at start-up

    def h(self, user: str) -> dict:
        return bearer(self.sessions, user)

    def lead_in(self, district: str) -> int:
        with self.sessions() as s:
            return s.scalar(select(Lead.id).where(Lead.district == district).order_by(Lead.rank).limit(1))


@pytest.fixture
def api(tmp_path, template_db):
    a = Api(tmp_path, template_db)
    yield a
    a.client.__exit__(None, None, None)
    a.engine.dispose()


def test_health_and_login(api):
    r = api.client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["model_version"] == "3"
    bad = api.client.post("/api/v1/auth/token", data={"username": "sup", "password": "wrong"})
    assert bad.status_code == 401 and "密码" in bad.json()["detail"]
    assert api.client.get("/api/v1/leads").status_code == 401
    assert api.client.get("/api/v1/leads", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    good = api.client.post("/api/v1/auth/token", data={"username": "off_dc", "password": PASSWORD})
    assert good.status_code == 200 and good.json()["role"] == "officer"
    token = {"Authorization": f"Bearer {good.json()['access_token']}"}
    assert {x["district"] for x in api.client.get("/api/v1/leads", headers=token).json()["items"]} == {"德城区"}
    model = api.client.get("/api/v1/model", headers=api.h("sup")).json()
    assert model["version"] == "3" and model["backtest"]["precision_at_k"] == 0.4


def test_officer_sees_and_changes_only_own_district(api):
    own, other = api.lead_in("德城区"), api.lead_in("禹城市")
    h = api.h("off_dc")
    page = api.client.get("/api/v1/leads", headers=h).json()
    assert page["total"] == 20 and {x["district"] for x in page["items"]} == {"德城区"}
    assert api.client.get("/api/v1/leads", headers=h, params={"district": "禹城市"}).status_code == 403
    assert api.client.get(f"/api/v1/leads/{other}", headers=h).status_code == 403
    assert api.client.post(f"/api/v1/leads/{other}/assign", headers=h, json={"officer": "off_dc"}).status_code == 403
    r = api.client.post(f"/api/v1/leads/{other}/verdicts", headers=h, json={"outcome": "no_violation"})
    assert r.status_code == 403
    assert api.client.get(f"/api/v1/leads/{own}", headers=h).status_code == 200
    # an officer takes leads for himself only
    assert api.client.post(f"/api/v1/leads/{own}/assign", headers=h, json={"officer": "off_dc2"}).status_code == 403
    assert api.client.get("/api/v1/scores/913714000000000000", headers=h).status_code == 403
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Assignment)) == 0
        assert s.scalar(select(func.count()).select_from(Verdict)) == 0


def test_officers_are_never_told_which_leads_are_exploratory(api):
    h = api.h("off_dc")
    items = api.client.get("/api/v1/leads", headers=h, params={"page_size": 100}).json()["items"]
    with api.sessions() as s:
        explore = set(s.scalars(select(Lead.id).where(Lead.exploratory.is_(True), Lead.district == "德城区")))
    assert explore and explore <= {x["id"] for x in items}
    for x in items:
        assert x["rank"] is None and x["risk_score"] is None
        assert "exploratory" not in x and "queue_probability" not in x
    positions = [x["queue_position"] for x in items]
    assert positions == sorted(positions) == list(range(1, 21))
    detail = api.client.get(f"/api/v1/leads/{next(iter(explore))}", headers=h).json()
    assert detail["history"] is None and "exploratory" not in detail and "queue_probability" not in str(detail)


def test_assign_and_verdict_are_audited_and_close_the_lead(api):
    lead = api.lead_in("德城区")
    r = api.client.post(f"/api/v1/leads/{lead}/assign", headers=api.h("sup"), json={"officer": "off_dc"})
    assert r.status_code == 200 and r.json()["status"] == "assigned" and r.json()["assigned_officer"] == "off_dc"
    mine = api.client.get("/api/v1/me/leads", headers=api.h("off_dc")).json()
    assert [x["id"] for x in mine["items"]] == [lead]
    assert api.client.post(f"/api/v1/leads/{lead}/start", headers=api.h("off_dc2")).status_code == 403
    r = api.client.post(f"/api/v1/leads/{lead}/start", headers=api.h("off_dc"))
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    # another officer of the same district cannot record a verdict on it
    r = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=api.h("off_dc2"), json={"outcome": "no_violation"})
    assert r.status_code == 403
    visited = (date.today() - timedelta(days=1)).isoformat()
    r = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=api.h("off_dc"),
                        json={"outcome": "violation", "violation_type": "private_well", "note": "院内发现自备井",
                              "visited_on": visited})
    assert r.status_code == 201, r.text
    assert r.json()["officer"] == "off_dc" and r.json()["visited_on"] == visited
    detail = api.client.get(f"/api/v1/leads/{lead}", headers=api.h("sup")).json()
    assert detail["status"] == "closed" and detail["verdicts"][0]["violation_type"] == "private_well"
    assert [e["event"] for e in detail["history"]] == ["queued", "assigned", "started", "verdict"]
    assert api.client.get("/api/v1/me/leads", headers=api.h("off_dc")).json()["total"] == 0
    r = api.client.post(f"/api/v1/leads/{lead}/assign", headers=api.h("sup"), json={"officer": "off_dc2"})
    assert r.status_code == 409
    with api.sessions() as s:
        log = s.scalars(select(AuditLog).where(AuditLog.action.in_(["assign", "verdict"])).order_by(AuditLog.id)).all()
    assert [(x.actor, x.action, x.object_id) for x in log] == [("sup", "assign", str(lead)),
                                                               ("off_dc", "verdict", str(lead))]
    assert log[0].detail["officer"] == "off_dc" and log[1].detail["outcome"] == "violation"
    assert all(x.at is not None for x in log)


def test_republish_keeps_verdicts_and_statuses(api):
    closed, assigned = api.lead_in("德城区"), api.lead_in("禹城市")
    sup = api.h("sup")
    api.client.post(f"/api/v1/leads/{closed}/verdicts", headers=sup, json={"outcome": "no_violation"})
    api.client.post(f"/api/v1/leads/{assigned}/assign", headers=sup, json={"officer": "off_yc"})
    run1 = make_run(api.tmp / "run1")
    publish_run(run1, api.sessions, api.settings)
    publish_run(make_run(api.tmp / "run2", version="4", shift=150, as_of="2026-08-01"), api.sessions, api.settings)
    publish_run(make_run(api.tmp / "run2", version="4", shift=150, as_of="2026-08-01"), api.sessions, api.settings)
    a = api.client.get(f"/api/v1/leads/{closed}", headers=sup).json()
    b = api.client.get(f"/api/v1/leads/{assigned}", headers=sup).json()
    assert a["status"] == "closed" and [v["outcome"] for v in a["verdicts"]] == ["no_violation"]
    assert b["status"] == "assigned" and b["assigned_officer"] == "off_yc"
    assert [x["id"] for x in api.client.get("/api/v1/me/leads", headers=api.h("off_yc")).json()["items"]] == [assigned]
    # the running service follows the store: it serves the run published last without being told to
    assert api.client.get("/api/v1/model", headers=sup).json()["version"] == "4"
    assert api.client.post("/api/v1/admin/reload-model", headers=sup).status_code == 403
    r = api.client.post("/api/v1/admin/reload-model", headers=api.h("adm"))
    assert r.status_code == 200 and r.json()["version"] == "4"


def test_scores_single_and_batch_limit(api):
    h = api.h("ana")
    r = api.client.get("/api/v1/scores/913714000000000000", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["rank"] == 1 and body["reasons"] == ["近12个月排水量是自来水供水量的3.1倍", "无有效取水许可"]
    assert body["profile"]["months"] == 6 and body["profile"]["supply_m3_12m"] == 150.0
    assert api.client.get("/api/v1/scores/NOSUCHCODE", headers=h).status_code == 404
    codes = [f"91371400{i:010d}" for i in range(300)]
    r = api.client.post("/api/v1/scores/batch", headers=h, json={"usccs": codes[:5] + ["X"] * 9_995})
    assert r.status_code == 200 and len(r.json()["scores"]) == 5 and r.json()["missing"] == ["X"]
    r = api.client.post("/api/v1/scores/batch", headers=h, json={"usccs": ["X"] * 10_001})
    assert r.status_code == 422 and "10000" in r.text.replace(",", "")
    assert api.client.post("/api/v1/scores/batch", headers=h, json={"usccs": []}).status_code == 422
    # systems call with an API key
    k = {"X-API-Key": api.gateway_key}
    assert api.client.get("/api/v1/scores/913714000000000000", headers=k).status_code == 200
    assert api.client.get("/api/v1/scores/913714000000000000", headers={"X-API-Key": "ww_wrong"}).status_code == 401


@pytest.mark.parametrize("method,path,payload", [
    ("post", "/api/v1/leads/{lead}/verdicts", {"outcome": "guilty"}),
    ("post", "/api/v1/leads/{lead}/verdicts", {"outcome": "violation"}),
    ("post", "/api/v1/leads/{lead}/verdicts", {"outcome": "no_violation", "violation_type": "private_well"}),
    ("post", "/api/v1/leads/{lead}/verdicts", {"outcome": "no_violation", "visited_on": "2999-01-01"}),
    ("post", "/api/v1/leads/{lead}/verdicts", {"outcome": "no_violation", "extra": 1}),
    ("post", "/api/v1/leads/{lead}/assign", {"officer": "nobody"}),
    ("post", "/api/v1/leads/{lead}/assign", {"officer": "off_yc"}),
    ("get", "/api/v1/leads/abc", None),
    ("get", "/api/v1/leads/0", None),
    ("get", "/api/v1/leads?page_size=0", None),
    ("get", "/api/v1/leads?status=unknown", None),
    ("get", "/api/v1/outbox?status=lost", None),
])
def test_bad_input_is_422_with_a_message(api, method, path, payload):
    url = path.format(lead=api.lead_in("德城区"))
    r = getattr(api.client, method)(url, headers=api.h("sup"), **({"json": payload} if payload is not None else {}))
    assert r.status_code == 422, r.text
    assert r.json().get("message") or r.json().get("detail")


def test_filters_and_pagination(api):
    h = api.h("sup")
    page1 = api.client.get("/api/v1/leads", headers=h, params={"page_size": 25}).json()
    page3 = api.client.get("/api/v1/leads", headers=h, params={"page_size": 25, "page": 3}).json()
    assert page1["total"] == 60 and len(page1["items"]) == 25 and len(page3["items"]) == 10
    assert [x["rank"] for x in page1["items"]] == sorted(x["rank"] for x in page1["items"])
    by_kind = api.client.get("/api/v1/leads", headers=h, params={"kind": "unpermitted"}).json()
    assert [x["uscc"] for x in by_kind["items"]] == ["913714000000000000"]
    alerts = api.client.get("/api/v1/alerts", headers=h, params={"level": "red"}).json()
    assert alerts["total"] == 1 and alerts["items"][0]["kind"] == "unpermitted"
    officer_alerts = api.client.get("/api/v1/alerts", headers=api.h("off_yc")).json()
    assert {a["district"] for a in officer_alerts["items"]} <= {"禹城市"}
    rights = api.client.get("/api/v1/water-rights", headers=h).json()
    assert rights["total"] == 1 and rights["items"][0]["volume_m3"] == 500.0


def test_outbox_delivery_states(api):
    k = {"X-API-Key": api.gateway_key}
    queued = api.client.get("/api/v1/outbox", headers=k, params={"status": "queued"}).json()
    assert queued["total"] == 2
    r = api.client.post("/api/v1/outbox/M1/sent", headers=k)
    assert r.status_code == 200 and r.json()["status"] == "sent" and r.json()["sent_at"]
    assert api.client.post("/api/v1/outbox/M1/sent", headers=k).json()["sent_at"] == r.json()["sent_at"]
    assert api.client.post("/api/v1/outbox/M1/failed", headers=k, json={"error": "x"}).status_code == 409
    r = api.client.post("/api/v1/outbox/M2/failed", headers=k, json={"error": "号码不存在"})
    assert r.status_code == 200 and r.json()["error"] == "号码不存在"
    assert api.client.post("/api/v1/outbox/NOPE/sent", headers=k).status_code == 404
    assert api.client.get("/api/v1/outbox", headers=api.h("off_dc")).status_code == 403
    publish_run(make_run(api.tmp / "run1"), api.sessions, api.settings)
    states = {m["message_id"]: m["status"] for m in api.client.get("/api/v1/outbox", headers=k).json()["items"]}
    assert states == {"M1": "sent", "M2": "failed"}


def test_production_refuses_a_missing_or_weak_secret_and_makes_no_demo_users(tmp_path):
    for weak in (None, "dev-only-secret-never-use-in-production", "short"):
        settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}", production=True,
                            auth=AuthSettings(secret_key=weak))
        with pytest.raises(ValueError, match="secret_key"):
            create_app(settings)
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}", production=True,
                        auth=AuthSettings(secret_key=SECRET))
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/v1/auth/token", data={"username": "supervisor", "password": DEMO_PASSWORD})
    assert r.status_code == 401
    with TestClient(create_app(settings_for(f"sqlite:///{tmp_path / 'd.db'}"))) as dev:
        r = dev.post("/api/v1/auth/token", data={"username": "supervisor", "password": DEMO_PASSWORD})
    assert r.status_code == 200


def test_console_routers_are_mounted(tmp_path):
    from fastapi import APIRouter

    console = APIRouter()

    @console.get("/")
    def index():
        return {"page": "console"}

    app = create_app(settings_for(f"sqlite:///{tmp_path / 'c.db'}"), routers=[console], demo_users=False)
    assert TestClient(app).get("/").json() == {"page": "console"}


def test_reason_codes_are_served_beside_the_reasons(api):
    """leads.csv's machine-readable reasons reach the score and lead answers; runs without them give []."""
    h = api.h("sup")
    assert api.client.get("/api/v1/scores/913714000000000000", headers=h).json()["reason_codes"] == []
    publish_run(make_run(api.tmp / "run-codes", version="5", as_of="2026-08-01", reason_codes=True),
                api.sessions, api.settings)
    score = api.client.get("/api/v1/scores/913714000000000000", headers=h).json()
    assert [c["code"] for c in score["reason_codes"]] == ["balance_excess", "no_valid_permit"]
    assert score["reason_codes"][0]["value"] == 3.1 and score["reason_codes"][0]["text_zh"] == score["reasons"][0]
    lead = api.client.get("/api/v1/leads", headers=api.h("off_dc")).json()["items"][0]
    assert [c["code"] for c in lead["reason_codes"]] == ["balance_excess", "no_valid_permit"]


def test_predict_gives_a_row_the_same_score_alone_inline_as_in_a_batch_in_the_pool(api):
    from serving.api.routes.scores import INLINE_ROWS

    h = api.h("ana")
    rows = [{"id": f"r{i}", "features": {"balance_ratio_12m": 0.5 + 0.3 * i, "supply_m3_12m": 10.0 * i,
                                         "discharge_m3_12m": None if i % 3 == 0 else 40.0 * i}} for i in range(20)]
    assert len(rows) > INLINE_ROWS  # the batch goes through the thread pool, single rows stay on the event loop
    batch = api.client.post("/api/v1/scores/predict", headers=h, json={"rows": rows})
    assert batch.status_code == 200 and batch.json()["model_version"] == "3"
    scores = [s["risk_score"] for s in batch.json()["scores"]]
    assert [s["id"] for s in batch.json()["scores"]] == [r["id"] for r in rows] and len(set(scores)) > 1
    alone = [api.client.post("/api/v1/scores/predict", headers=h, json={"rows": [r]}).json()["scores"][0]["risk_score"]
             for r in rows]
    assert alone == scores
    wrong = api.client.post("/api/v1/scores/predict", headers=h,
                            json={"rows": [rows[0], {"id": "bad", "features": {"supply_m3_12m": "abc"}}]})
    assert wrong.status_code == 422 and "supply_m3_12m" in wrong.text and "'bad'" in wrong.text
