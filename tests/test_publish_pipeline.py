"""Publishing what the pipeline really writes (not a hand-made folder) to SQLite and to PostgreSQL, then
reading every endpoint of the service over it, the outbox included, as each role would."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from console_forms import post_login
from serving.api import create_app
from serving.console import console_router
from serving.publish import publish_run
from serving.services import users
from serving.settings import AuthSettings, ServingSettings
from serving.store import LeadEvent, OutboxMessage, Score, make_engine, session_factory, upgrade_database
from test_api import SECRET, bearer
from test_store import empty_store_url  # noqa: F401 - fixture
from waterwatch.settings import ModelSettings, Settings

pytestmark = pytest.mark.slow
PASSWORD = "a-long-test-password"


@pytest.fixture(scope="module")
def pipeline_run(small_city_run, tmp_path_factory):
    """One small city through the whole pipeline (no tuning, the session's run): the folder ``waterwatch
    publish`` reads; the service's own files (SMS outbox, evidence) go to a home of this module's."""
    settings = Settings(home=tmp_path_factory.mktemp("publish-home"), show_progress=False,
                        auth=AuthSettings(secret_key=SECRET), model=ModelSettings(backtest_cutoffs=2, optuna_trials=0))
    return small_city_run / "out", settings


def _read_everything(client: TestClient, h: dict[str, dict], out) -> dict:
    """Every GET of the API as the role that may call it; returns what the checks below need."""
    leads = pd.read_csv(out / "leads.csv", dtype={"uscc": str})
    top = leads.iloc[0]["uscc"]
    got = {}
    for path, who in (("/health", None), ("/api/v1/model", "ana"), (f"/api/v1/scores/{top}", "ana"),
                      ("/api/v1/leads", "sup"), ("/api/v1/leads", "off"), ("/api/v1/me/leads", "off"),
                      ("/api/v1/alerts", "sup"), ("/api/v1/alerts", "off"), ("/api/v1/outbox", "ana"),
                      ("/api/v1/water-rights", "ana")):
        r = client.get(path, headers=h[who] if who else None, params={"page_size": 500} if "/v1/" in path else None)
        assert r.status_code == 200, (path, who, r.text)
        got[(path, who)] = r.json()
    lead = got[("/api/v1/leads", "off")]["items"][0]
    r = client.get(f"/api/v1/leads/{lead['id']}", headers=h["off"])
    assert r.status_code == 200 and r.json()["series"]["month"], r.text
    got["lead"] = r.json()
    r = client.post("/api/v1/scores/batch", headers=h["ana"], json={"usccs": leads["uscc"].head(50).tolist()})
    assert r.status_code == 200 and len(r.json()["scores"]) == 50
    return got


def test_a_pipeline_run_publishes_and_serves_on_both_databases(pipeline_run, empty_store_url):  # noqa: F811
    out, base = pipeline_run
    upgrade_database(empty_store_url)
    settings = base.model_copy(update={"database_url": empty_store_url,
                                       "serving": ServingSettings(run_check_seconds=0.0)})
    engine = make_engine(empty_store_url)
    sessions = session_factory(engine)
    counts = publish_run(out, sessions, settings)
    leads = pd.read_csv(out / "leads.csv", dtype={"uscc": str})
    outbox_csv = pd.read_csv(out / "outbox.csv", dtype=str)
    assert counts["scores"] == len(leads) and counts["outbox_new"] == len(outbox_csv) > 0
    assert counts["alerts"] == len(pd.read_csv(out / "alerts.csv")) and counts["series"] > 0
    district = leads["district"].dropna().sort_values().iloc[0]
    with sessions() as s, s.begin():
        for name, role, d in (("sup", "supervisor", None), ("ana", "analyst", None), ("off", "officer", district)):
            users.create_user(s, name, PASSWORD, role, d)
        users.create_user(s, "gateway", None, "supervisor")
        key = users.create_api_key(s, "gateway", "sms")
    app = create_app(settings, sessions, routers=[console_router()], demo_users=False)
    with TestClient(app) as client:
        h = {name: bearer(sessions, name) for name in ("sup", "ana", "off")}
        got = _read_everything(client, h, out)
        # the outbox holds the pipeline's messages with their SMS segments, and the gateway reports delivery
        items = got[("/api/v1/outbox", "ana")]["items"]
        first = outbox_csv.iloc[0]
        mine = next(m for m in items if m["message_id"] == first["message_id"])
        assert mine["segment_count"] == int(first["segment_count"]) == len(mine["segments"]) >= 1
        assert "".join(mine["segments"]).replace(" ", "") != "" and mine["status"] == "queued"
        r = client.post(f"/api/v1/outbox/{first['message_id']}/sent", headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["status"] == "sent"
        # officers see their district only; the model that scored the run is the one served
        assert {x["district"] for x in got[("/api/v1/leads", "off")]["items"]} == {district}
        info = json.loads((out / "model.json").read_text(encoding="utf-8"))
        assert got[("/api/v1/model", "ana")]["version"] == str(info["version"])
        assert got[("/api/v1/model", "ana")]["champion_loaded"]
        # a verdict on a real lead, and the console's pages over the same store
        lead = got["lead"]["id"]
        r = client.post(f"/api/v1/leads/{lead}/verdicts", headers=h["off"], json={"outcome": "no_violation"})
        assert r.status_code == 201
        console = TestClient(app)
        assert post_login(console, "sup", PASSWORD, follow_redirects=False).status_code == 303
        for page in ("/queue", f"/leads/{lead}", "/dashboard"):
            assert console.get(page).status_code == 200, page
    # publishing the same run again changes nothing and keeps the delivery state
    again = publish_run(out, sessions, settings)
    assert again["leads_new"] == 0 and again["outbox_new"] == 0
    with sessions() as s:
        assert s.get(OutboxMessage, first["message_id"]).status == "sent"
        assert s.scalar(select(func.count()).select_from(Score)) == len(leads)
        assert s.scalar(select(func.count()).where(LeadEvent.event == "verdict")) == 1
    engine.dispose()


def _publish_as_new_run(out, tmp, sessions, settings) -> dict:
    """The same pipeline output with another leads.csv digest: a different run whose cases keep their ids."""
    import shutil

    other = tmp / "next-run"
    if not other.exists():
        shutil.copytree(out, other, ignore=shutil.ignore_patterns("workspace"))
        leads = pd.read_csv(other / "leads.csv", dtype=str)
        leads.loc[0, "reasons"] = (leads.loc[0, "reasons"] if isinstance(leads.loc[0, "reasons"], str) else "") + "；"
        leads.to_csv(other / "leads.csv", index=False)
    return publish_run(other, sessions, settings)


def test_the_runs_cases_are_published_served_and_keep_their_status(pipeline_run, empty_store_url, tmp_path):  # noqa: F811
    out, base = pipeline_run
    cases_csv = pd.read_csv(out / "cases.csv", dtype=str)
    assert len(cases_csv) > 3, "the generated city should hold documented breaches"
    upgrade_database(empty_store_url)
    settings = base.model_copy(update={"database_url": empty_store_url})
    engine = make_engine(empty_store_url)
    sessions = session_factory(engine)
    counts = publish_run(out, sessions, settings)
    assert counts["cases_new"] == len(cases_csv)
    first = cases_csv.iloc[0]
    district = first["district"]
    with sessions() as s, s.begin():
        far = next(d for d in users.known_districts(s) if d != district)  # an officer of another district
        for name, role, d in (("sup", "supervisor", None), ("ana", "analyst", None), ("off", "officer", district),
                              ("far", "officer", far)):
            users.create_user(s, name, PASSWORD, role, d)
    with TestClient(create_app(settings, sessions, demo_users=False)) as client:
        h = {name: bearer(sessions, name) for name in ("sup", "ana", "off", "far")}
        every = client.get("/api/v1/cases", headers=h["ana"], params={"page_size": 500}).json()
        assert every["total"] == len(cases_csv) and {c["status"] for c in every["items"]} == {"open"}
        case = next(c for c in every["items"] if c["case_id"] == first["case_id"])
        assert case["kind"] == first["kind"] and case["action"] == first["action"]
        assert case["evidence"] == json.loads(first["evidence"]) and case["alert_ids"] == first["alert_ids"].split(";")
        # filters, and officers see their district only
        kind = client.get("/api/v1/cases", headers=h["sup"], params={"kind": first["kind"], "page_size": 500}).json()
        assert kind["total"] == int((cases_csv["kind"] == first["kind"]).sum())
        mine = client.get("/api/v1/cases", headers=h["off"], params={"page_size": 500}).json()
        assert mine["total"] == int((cases_csv["district"] == district).sum()) > 0
        assert {c["district"] for c in mine["items"]} == {district}
        assert client.get("/api/v1/cases", headers=h["off"], params={"district": "其他区"}).status_code == 403
        # the track: officers of the district and supervisors move a case; analysts read; each move audited
        url = f"/api/v1/cases/{first['case_id']}/status"
        assert client.post(url, headers=h["ana"], json={"status": "in_progress"}).status_code == 403
        assert client.post(url, headers=h["far"], json={"status": "in_progress"}).status_code == 403
        r = client.post(url, headers=h["off"], json={"status": "in_progress", "note": "已电话通知"})
        assert r.status_code == 200 and (r.json()["status"], r.json()["assignee"]) == ("in_progress", "off")
        assert client.post(url, headers=h["off"], json={"status": "closed"}).status_code == 200
        assert client.post(url, headers=h["off"], json={"status": "in_progress"}).status_code == 409
        assert client.post(url, headers=h["off"], json={"status": "open"}).status_code == 403
        assert client.post("/api/v1/cases/nope/status", headers=h["sup"], json={"status": "closed"}).status_code == 404
        assert client.get("/api/v1/cases", headers=h["sup"], params={"status": "closed"}).json()["total"] == 1
    # a later run raising the same breaches updates their facts and keeps their status
    again = _publish_as_new_run(out, tmp_path, sessions, settings)
    assert again["run_id"] != counts["run_id"] and again["cases_updated"] == len(cases_csv) and again["cases_new"] == 0
    with sessions() as s:
        from serving.store import AuditLog, Case

        kept = s.get(Case, first["case_id"])
        assert (kept.status, kept.assignee, kept.run_id) == ("closed", "off", again["run_id"])
        moves = [(a.detail["from"], a.detail["to"]) for a in s.scalars(select(AuditLog).where(
            AuditLog.action == "case_status").order_by(AuditLog.id))]
        assert moves == [("open", "in_progress"), ("in_progress", "closed")]
    engine.dispose()
