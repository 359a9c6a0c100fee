"""The officers' loop over HTTP: publish a run, take a lead, record a verdict, retrain on it."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import copy_run
from features.workspace import Workspace
from serving.api import create_app
from serving.services.users import DEMO_PASSWORD
from serving.labels import export_labels
from serving.publish import publish_run
from serving.store import open_store
from training.artifacts import TEXT_COLUMNS
from waterwatch.pipeline import run_train
from waterwatch.settings import ModelSettings, Settings

pytestmark = pytest.mark.slow


def _login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_verdict_recorded_over_http_becomes_a_training_label(small_city_run, tmp_path):
    # the session's pipeline run (600 entities, seed 5, no tuning), copied: this test retrains in it
    copy_run(small_city_run, tmp_path)
    settings = Settings(
        home=tmp_path / "var", show_progress=False, model=ModelSettings(backtest_cutoffs=2, optuna_trials=0)
    )
    out = tmp_path / "out"

    _, sessions = open_store(settings.resolved_database_url())
    publish_run(out, sessions, settings)
    client = TestClient(create_app(settings, session_factory=sessions))
    client.__enter__()  # the lifespan loads the live run's model and creates the demo users

    officer = _login(client, "officer1")
    queue = client.get("/api/v1/leads", params={"page_size": 5}, headers=officer)
    assert queue.status_code == 200, queue.text
    lead = queue.json()["items"][0]
    assert client.post(f"/api/v1/leads/{lead['id']}/assign", json={"officer": "officer1"}, headers=officer).status_code == 200
    verdict = client.post(
        f"/api/v1/leads/{lead['id']}/verdicts",
        json={"outcome": "violation", "violation_type": "private_well", "note": "厂区后院发现未登记自备井"},
        headers=officer,
    )
    assert verdict.status_code == 201, verdict.text
    mine = client.get("/api/v1/me/leads", headers=officer).json()
    assert lead["id"] not in [item["id"] for item in mine["items"]], "a lead with a verdict is closed"

    # other systems: the service has loaded the champion itself and scores profiles they send
    supervisor = _login(client, "supervisor")
    info = client.get("/api/v1/model", headers=supervisor).json()
    assert info["champion_loaded"] and info["champion_version"] == info["version"]
    snapshot = pd.read_parquet(out / "workspace" / "profiles" / "snapshot.parquet").set_index("uscc")
    row = snapshot.loc[lead["uscc"], info["champion_features"]]
    features = {k: (None if pd.isna(v) else v if isinstance(v, str) else float(v)) for k, v in row.items()}
    predicted = client.post("/api/v1/scores/predict", json={"rows": [{"id": "x", "features": features}]},
                            headers=supervisor)
    assert predicted.status_code == 200, predicted.text
    published = pd.read_csv(out / "leads.csv", dtype={"uscc": str}).set_index("uscc").loc[lead["uscc"], "risk_score"]
    assert predicted.json()["scores"][0]["risk_score"] == pytest.approx(published, rel=1e-6)
    numeric = next(name for name in info["champion_features"] if name not in TEXT_COLUMNS)
    wrong = client.post("/api/v1/scores/predict", json={"rows": [{"id": "x", "features": {numeric: "abc"}}]},
                        headers=supervisor)
    assert wrong.status_code == 422 and numeric in wrong.text and "'x'" in wrong.text  # names feature and row

    labels_file = tmp_path / "labels.csv"
    with sessions() as session:
        assert export_labels(session, labels_file) == 1
    exported = pd.read_csv(labels_file, dtype=str)
    assert exported.loc[0, "uscc"] == lead["uscc"] and exported.loc[0, "outcome"] == "violation"

    ws = Workspace(out / "workspace")
    run_train(ws, settings, trials=0, extra_labels=[labels_file])
    used = pd.read_parquet(ws.stage("models") / "training_labels.parquet")
    row = used[used["uscc"] == lead["uscc"]]
    assert row["label"].tolist() == [1], "the field verdict must be a positive label of the retrained model"
