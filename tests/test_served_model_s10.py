"""The model that scored a published run is the one the service answers with for that run, however the champion
moved since: ``score`` keeps a copy of the bundle it scored with (``training.artifacts.keep_scored``) and the run's
model.json names it, not ``champion.joblib``, which a newer promotion or a rollback rewrites. A service (re)started
after such a move answers ``/scores/predict`` with the model version, and the risk, of the published leads."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import copy_run
from serving.api import create_app
from serving.settings import AuthSettings, ServingSettings
from serving.store import User, open_store
from test_api import SECRET, bearer
from training.artifacts import load_bundle
from waterwatch.cli import app as cli
from waterwatch.settings import Settings

ENV = {"WATERWATCH_SHOW_PROGRESS": "false", "WATERWATCH_MODEL__BACKTEST_CUTOFFS": "2",
       "WATERWATCH_MODEL__OPTUNA_TRIALS": "0"}
ENTITIES = 8  # the published leads whose features are sent back to predict (the top ones and the last ones)


def _invoke(env: dict, *args: str) -> str:
    done = CliRunner().invoke(cli, list(args), env=env)
    assert done.exit_code == 0, done.output
    return done.output


def _serve(home: Path):
    """A fresh service (its own ``ModelHolder``) over the store in ``home``, and an analyst's headers."""
    settings = Settings(home=home, show_progress=False, auth=AuthSettings(secret_key=SECRET),
                        serving=ServingSettings(run_check_seconds=0.0))
    _, sessions = open_store(settings.resolved_database_url())
    with sessions() as s, s.begin():
        if not s.query(User).filter(User.username == "ana").count():
            s.add(User(username="ana", role="analyst"))
    return TestClient(create_app(settings, sessions, demo_users=False)), bearer(sessions, "ana")


def _features(out: Path, usccs: list[str], features: list[str]) -> list[dict]:
    """The entities' model inputs as another system sends them: the run's snapshot at its as-of."""
    snapshot = pd.read_parquet(out / "workspace" / "profiles" / "snapshot.parquet").set_index("uscc")
    rows = snapshot.loc[usccs, features]
    return [{"id": uscc, "features": {k: (None if pd.isna(v) else v if isinstance(v, str) else float(v))
                                      for k, v in row.items()}}
            for uscc, row in zip(usccs, rows.to_dict("records"))]


def _serves_the_published_run(home: Path, out: Path, version: str) -> list[dict]:
    """A fresh service answers GET /model and predict with ``version``, the model of the published leads, and gives
    each of ENTITIES published entities its published risk; returns the rows it predicted."""
    leads = pd.read_csv(out / "leads.csv", dtype={"uscc": str, "model_version": str})
    assert set(leads["model_version"]) == {version}
    picked = pd.concat([leads.head(ENTITIES // 2), leads.tail(ENTITIES // 2)])
    client, ana = _serve(home)
    with client:
        model = client.get("/api/v1/model", headers=ana).json()
        assert model["version"] == version and model["champion_loaded"], model
        assert model["champion_version"] == version
        rows = _features(out, picked["uscc"].tolist(), model["champion_features"])
        predicted = client.post("/api/v1/scores/predict", headers=ana, json={"rows": rows})
        assert predicted.status_code == 200, predicted.text
        assert predicted.json()["model_version"] == version
        published = {s["uscc"]: s["risk_score"] for s in client.post(
            "/api/v1/scores/batch", headers=ana, json={"usccs": picked["uscc"].tolist()}).json()["scores"]}
    got = {s["id"]: s["risk_score"] for s in predicted.json()["scores"]}
    assert got == pytest.approx(published, rel=1e-9, abs=1e-12)
    return rows


def _differs(bundle_path: Path, rows: list[dict], served: dict[str, float]) -> bool:
    """The champion file now holds a model that gives at least one of the rows another risk (else the check above
    could not tell the two models apart)."""
    risk = load_bundle(bundle_path).predict_records([r["features"] for r in rows])
    return any(abs(p - served[r["id"]]) > 1e-6 for r, p in zip(rows, risk))


@pytest.mark.slow
def test_a_restarted_service_serves_the_model_that_scored_the_published_run(small_city_run, tmp_path):
    copy_run(small_city_run, tmp_path)
    out, home = tmp_path / "out", tmp_path / "var"
    ws = out / "workspace"
    env = {**ENV, "WATERWATCH_HOME": str(home)}
    champion = ws / "models" / "champion.joblib"

    # the pipeline's model.json names the kept copy of the bundle that scored its leads (version 1), relative to the
    # run's workspace: this copy of the run names this copy's file
    pipeline = Path(json.loads((out / "model.json").read_text(encoding="utf-8"))["artifact"])
    assert pipeline.parent == Path("models/scored") and not pipeline.is_absolute()
    assert pipeline.name.startswith("champion-v1-") and (ws / pipeline).read_bytes() == champion.read_bytes()
    # scored again here: the same bundle is kept under the same name, and the run is published
    _invoke(env, "score", "--workspace", str(ws), "--out", str(out / "leads.csv"))
    kept_v1 = ws / json.loads((out / "model.json").read_text(encoding="utf-8"))["artifact"]
    assert kept_v1 == ws / pipeline and kept_v1.exists()
    _invoke(env, "publish", "--out", str(out))
    scored_v1 = pd.read_csv(out / "leads.csv", dtype={"uscc": str}).set_index("uscc")["risk_score"]

    # a newer version is promoted, trained on field verdicts the first had not (so another model: with two known
    # hidden violations the trees carry no weight, and another random state alone changed no score): champion.joblib
    # holds it
    from training import train as train_module

    top = scored_v1.sort_values(ascending=False).index[:12]
    verdicts = tmp_path / "verdicts.csv"
    pd.DataFrame({"inspection_id": [f"V{i}" for i in range(12)], "uscc": top, "inspected_on": "2026-09-15",
                  "officer_id": "off1", "outcome": ["violation", "no_violation"] * 6,
                  "violation_type": ["private_well", ""] * 6}).to_csv(verdicts, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "objective_value", lambda result: float("nan"))  # the refit takes over
        trained = _invoke({**env, "WATERWATCH_MODEL__RANDOM_STATE": "1"}, "train", "--workspace", str(ws),
                          "--labels", str(verdicts))
    assert "model version 2" in trained and "promoted to champion" in trained
    assert load_bundle(champion).version == "2"
    rows = _serves_the_published_run(home, out, "1")  # not the champion's version 2
    assert _differs(champion, rows, scored_v1.to_dict())
    assert kept_v1.exists()

    # version 2 scores and is published; then a rollback makes version 1 the champion again
    _invoke(env, "score", "--workspace", str(ws), "--out", str(out / "leads.csv"))
    _invoke(env, "publish", "--out", str(out))
    scored_v2 = pd.read_csv(out / "leads.csv", dtype={"uscc": str}).set_index("uscc")["risk_score"]
    kept_v2 = ws / json.loads((out / "model.json").read_text(encoding="utf-8"))["artifact"]
    assert kept_v2 != kept_v1 and load_bundle(kept_v2).version == "2"
    _invoke(env, "champion", "--workspace", str(ws), "--version", "1", "--reason", "v2 misranks dairies")
    assert load_bundle(champion).version == "1"
    rows = _serves_the_published_run(home, out, "2")  # not the rolled-back champion's version 1
    assert _differs(champion, rows, scored_v2.to_dict())


def test_a_run_whose_artifact_now_holds_another_version_serves_no_model(tmp_path):
    """A run published before scoring kept its model names champion.joblib; once a training or a rollback rewrote
    that file, predict would answer with a model that did not rank the run's leads: the service says the model is
    not loaded (and an admin reads why) instead."""
    from serving.publish import publish_run
    from serving.runtime import ModelHolder
    from test_store import _tiny_champion, make_run

    run = make_run(tmp_path / "run", n=20, version="3")
    settings = Settings(home=tmp_path / "var", show_progress=False)
    _, sessions = open_store(settings.resolved_database_url())
    publish_run(run, sessions, settings)
    artifact = json.loads((run / "model.json").read_text(encoding="utf-8"))["artifact"]
    assert ModelHolder(sessions).reload().champion.version == "3"

    _tiny_champion(Path(artifact), "4")  # the file the run names is rewritten with another version
    info = ModelHolder(sessions).reload()
    assert info.version == "3" and info.champion is None
    assert "version 4" in info.champion_error and "version 3" in info.champion_error
    client, ana = _serve(tmp_path / "var")
    with client:
        answer = client.post("/api/v1/scores/predict", headers=ana,
                             json={"rows": [{"id": "a", "features": {"balance_ratio_12m": 1.0}}]})
    assert answer.status_code == 503, answer.text
