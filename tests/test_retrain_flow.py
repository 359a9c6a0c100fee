"""The retrain flow of docs/DATA_SCIENTISTS.md: `train` on a workspace, `score`, `publish`. A model fitted on older
data never takes the champion without a measured win, and the run the store records is the model that scored it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import copy_run
from serving.run_files import PublishError
from training.registry import promotion
from waterwatch.cli import app

NAN = float("nan")


@pytest.mark.parametrize("objective, champion_objective, as_of, champion_as_of, promoted", [
    (0.50, 0.40, "2025-06-01", "2026-11-01", True),   # a measured win promotes, older data or not
    (0.40, 0.50, "2026-12-01", "2026-11-01", False),  # a measured loss never does
    (0.50, 0.50, "2026-12-01", "2026-11-01", True),   # a tie promotes a refit on newer data only
    (0.50, 0.50, "2026-11-01", "2026-11-01", False),
    (NAN, NAN, "2025-06-01", "2026-11-01", False),    # not measured: older data keeps the champion
    (NAN, 0.50, "2025-06-01", "2026-11-01", False),
    (NAN, NAN, "2026-11-01", "2026-11-01", True),     # not measured: the same as-of or newer takes over
    (NAN, NAN, "2026-12-01", "2026-11-01", True),
    (NAN, NAN, "2026-12-01", "", False),              # a champion of unknown as-of is not known to be older
])
def test_promotion_without_a_measured_win_needs_data_at_least_as_new(objective, champion_objective, as_of,
                                                                     champion_as_of, promoted):
    decided, reason = promotion(objective, champion_objective, as_of, champion_as_of, "2")
    assert decided is promoted
    assert reason and ("v2" in reason)
    if not np.isfinite(objective):
        assert "no measured objective" in reason


@pytest.fixture
def flow(small_city_run, tmp_path, monkeypatch):
    """A writable copy of the session's pipeline run (champion v1) and the environment the CLI reads; the backtest
    objective made unmeasurable (as with a drop's handful of verdicts) whatever the generated city holds."""
    from training import train as train_module

    copy_run(small_city_run, tmp_path)
    monkeypatch.setattr(train_module, "objective_value", lambda result: NAN)
    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false",
           "WATERWATCH_MODEL__BACKTEST_CUTOFFS": "2", "WATERWATCH_MODEL__OPTUNA_TRIALS": "0"}
    return tmp_path / "out", env


def _registry(env):
    import mlflow

    from training import registry
    from waterwatch.settings import ModelSettings, Settings

    uri = Settings(home=env["WATERWATCH_HOME"], show_progress=False).resolved_tracking_uri()
    # the registry too: MLflow's process-wide one is the session run's (its pipeline pointed MLflow there)
    return mlflow.MlflowClient(uri, registry_uri=uri), ModelSettings().registered_model_name, registry


@pytest.mark.slow
def test_older_data_keeps_the_champion_and_score_then_publish_record_the_scored_model(flow):
    out, env = flow
    runner = CliRunner()
    client, name, registry = _registry(env)
    as_of = json.loads((out / "workspace" / "manifest.json").read_text(encoding="utf-8"))["as_of"][:10]

    # the champion was fitted on newer data than this workspace's: no measured win, so it stays
    client.set_model_version_tag(name, "1", registry.AS_OF_TAG, "2099-01-01")
    kept = runner.invoke(app, ["train", "--workspace", str(out / "workspace")], env=env)
    assert kept.exit_code == 0, kept.output
    assert "champion stays 1" in kept.output and "older data" in kept.output and "not measured" in kept.output
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    version = client.get_model_version(name, "2")
    assert "older data" in version.tags[registry.PROMOTION_TAG]
    assert client.get_run(version.run_id).data.tags[registry.PROMOTION_TAG] == version.tags[registry.PROMOTION_TAG]
    summary = json.loads((out / "workspace" / "models" / "model.json").read_text(encoding="utf-8"))
    assert not summary["promoted"] and summary["champion_version"] == "1" and "older data" in summary["promotion"]

    # the same as-of as the champion's: the refit on everything known now takes over
    client.set_model_version_tag(name, "1", registry.AS_OF_TAG, as_of)
    won = runner.invoke(app, ["train", "--workspace", str(out / "workspace")], env=env)
    assert won.exit_code == 0, won.output
    assert "model version 3" in won.output and "promoted to champion" in won.output
    assert str(client.get_model_version_by_alias(name, "champion").version) == "3"

    # score rewrites model.json beside the leads; publish records the model that scored them
    assert json.loads((out / "model.json").read_text(encoding="utf-8"))["version"] == "1"  # the pipeline's, stale
    scored = runner.invoke(app, ["score", "--workspace", str(out / "workspace"), "--out", str(out / "leads.csv")],
                           env=env)
    assert scored.exit_code == 0, scored.output
    leads = pd.read_csv(out / "leads.csv", dtype={"model_version": str})
    info = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert set(leads["model_version"]) == {"3"} and info["version"] == info["champion_version"] == "3"
    assert info == json.loads((out / "workspace" / "models" / "model.json").read_text(encoding="utf-8"))
    published = runner.invoke(app, ["publish", "--out", str(out)], env=env)
    assert published.exit_code == 0, published.output
    run = _published_run(env, json.loads(published.output.strip().splitlines()[-1])["run_id"])
    assert run.model_version == "3" and run.model_info["version"] == "3"
    assert run.model_info["trained_at"] == info["trained_at"]


def _published_run(env, run_id):
    from serving.store import Run, open_store
    from waterwatch.settings import Settings

    _, sessions = open_store(Settings(home=env["WATERWATCH_HOME"]).resolved_database_url())
    with sessions() as session:
        return session.get(Run, run_id)


@pytest.mark.slow
def test_publish_refuses_leads_and_model_json_of_different_models(small_city_run, tmp_path):
    copy_run(small_city_run, tmp_path)
    out = tmp_path / "out"
    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false"}
    leads = pd.read_csv(out / "leads.csv", dtype=str)
    leads.assign(model_version="4").to_csv(out / "leads.csv", index=False)  # scored again, model.json left behind
    refused = CliRunner().invoke(app, ["publish", "--out", str(out)], env=env)
    assert refused.exit_code == 2
    assert "scored by model version 4" in refused.output and "describes version 1" in refused.output
    assert "waterwatch score" in refused.output
    from serving.publish import publish_run
    from serving.store import open_store
    from waterwatch.settings import Settings

    settings = Settings(home=tmp_path / "var", show_progress=False)
    _, sessions = open_store(settings.resolved_database_url())
    with pytest.raises(PublishError, match="scored by model version 4"):
        publish_run(out, sessions, settings)

    # a challenger that lost: model.json is its training run's, the leads the champion's, and the store says so
    info = json.loads((out / "model.json").read_text(encoding="utf-8"))
    (out / "model.json").write_text(json.dumps({**info, "version": "5", "champion_version": "4", "promoted": False}),
                                    encoding="utf-8")
    counts = publish_run(out, sessions, settings)
    run = _published_run(env, counts["run_id"])
    assert run.model_version == "4"
