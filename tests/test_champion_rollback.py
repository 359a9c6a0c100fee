"""A rollback by hand: `waterwatch champion --version N` moves the registry's alias, records who and why on the
version and writes champion.joblib and model.json from that version, so that `score` serves it; `score` refuses a
champion.joblib the alias no longer points to (moved in MLflow directly), and scores on, saying so, when the
registry cannot be read; the command refuses a version that does not exist or does not fit the workspace."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import copy_run
from training.artifacts import load_bundle
from waterwatch.cli import app

pytestmark = pytest.mark.slow  # on the session's pipeline run (small_city_run); seconds on top of it

ENV = {"WATERWATCH_SHOW_PROGRESS": "false", "WATERWATCH_MODEL__BACKTEST_CUTOFFS": "2",
       "WATERWATCH_MODEL__OPTUNA_TRIALS": "0"}


@pytest.fixture(scope="module")
def two_versions(small_city_run, tmp_path_factory):
    """The session's pipeline run (version 1, champion) trained once more: version 2, promoted (the objective made
    unmeasurable, so the refit at the same as-of takes over)."""
    from training import train as train_module

    base = copy_run(small_city_run, tmp_path_factory.mktemp("two-versions"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "objective_value", lambda result: float("nan"))
        trained = CliRunner().invoke(app, ["train", "--workspace", str(base / "out" / "workspace")],
                                     env={**ENV, "WATERWATCH_HOME": str(base / "var")})
    assert trained.exit_code == 0, trained.output
    assert "model version 2" in trained.output and "promoted to champion" in trained.output
    return base


@pytest.fixture
def flow(two_versions, tmp_path):
    """A writable copy of the two-version run: its workspace, the CLI's environment and a client of its registry."""
    import mlflow

    from waterwatch.settings import ModelSettings, Settings

    copy_run(two_versions, tmp_path)
    env = {**ENV, "WATERWATCH_HOME": str(tmp_path / "var")}
    uri = Settings(home=tmp_path / "var", show_progress=False).resolved_tracking_uri()
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    return tmp_path / "out", env, client, ModelSettings().registered_model_name


def _alias(client, name) -> str:
    return str(client.get_model_version_by_alias(name, "champion").version)


def _score(out, env):
    return CliRunner().invoke(app, ["score", "--workspace", str(out / "workspace"), "--out", str(out / "leads.csv")],
                              env=env)


def test_rollback_through_the_cli_moves_the_alias_and_score_serves_that_version(flow):
    out, env, client, name = flow
    ws = out / "workspace"
    runner = CliRunner()
    assert _alias(client, name) == "2" and load_bundle(ws / "models" / "champion.joblib").version == "2"

    listed = runner.invoke(app, ["champion", "--workspace", str(ws)], env=env)
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()[:1].isdigit()}
    assert set(rows) == {"1", "2"}
    assert "champion" in rows["2"] and "holds it" in rows["2"] and "champion" not in rows["1"].split("no champion")[0]
    assert "no champion yet" in rows["1"]  # version 1's promotion reason, from its tag

    rolled = runner.invoke(app, ["champion", "--workspace", str(ws), "--version", "1", "--reason",
                                 "v2 sends officers to every dairy", "--by", "analyst-li"], env=env)
    assert rolled.exit_code == 0, rolled.output
    assert "version 1 is now the champion" in rolled.output and "alias was on version 2" in rolled.output
    assert _alias(client, name) == "1"
    tag = client.get_model_version(name, "1").tags["promotion"]
    assert "by hand by analyst-li" in tag and "v2 sends officers to every dairy" in tag and "v2" in tag
    bundle = load_bundle(ws / "models" / "champion.joblib")
    assert bundle.version == "1" and bundle.metadata["exported_from_registry"]
    assert bundle.metadata["run_id"] == client.get_model_version(name, "1").run_id

    listed = runner.invoke(app, ["champion", "--workspace", str(ws)], env=env)
    row = next(line for line in listed.output.splitlines() if line.split()[:1] == ["1"])
    assert "champion" in row and "holds it" in row and "analyst-li" in row

    scored = _score(out, env)
    assert scored.exit_code == 0, scored.output
    assert "scored by model version 1" in scored.output
    leads = pd.read_csv(out / "leads.csv", dtype={"model_version": str})
    assert set(leads["model_version"]) == {"1"}
    info = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert info["version"] == info["champion_version"] == "1" and info["previous_champion_version"] == "2"
    assert info["last_trained_version"] == "2" and "analyst-li" in info["promotion"]
    # the run names a kept copy of the bundle that scored it (champion.joblib is rewritten by the next rollback)
    # (named relative to the run's workspace: moving the workspace keeps the name right)
    assert Path(info["artifact"]).parent == Path("models/scored") and not Path(info["artifact"]).is_absolute()
    kept = ws / info["artifact"]
    assert kept.name.startswith("champion-v1-")
    assert kept.read_bytes() == (ws / "models" / "champion.joblib").read_bytes()

    published = runner.invoke(app, ["publish", "--out", str(out)], env=env)  # the store records version 1
    assert published.exit_code == 0, published.output


def test_score_refuses_a_champion_file_the_alias_no_longer_points_to(flow, caplog):
    out, env, client, name = flow
    client.set_registered_model_alias(name, "champion", "1")  # moved in MLflow, not through waterwatch
    before = (out / "leads.csv").read_bytes()  # the pipeline's leads
    refused = _score(out, env)
    assert refused.exit_code == 2, refused.output
    assert "registry's champion of waterwatch-risk is version 1" in refused.output
    assert "champion.joblib holds version 2" in refused.output
    assert "waterwatch champion --workspace" in refused.output and "--version 1" in refused.output
    assert (out / "leads.csv").read_bytes() == before  # nothing written

    listed = CliRunner().invoke(app, ["champion", "--workspace", str(out / "workspace")], env=env)
    assert listed.exit_code == 0 and "the alias points to version 1" in listed.output

    # the registry cannot be read (a tracking server down): champion.joblib scores, and the log says so
    down = {**env, "WATERWATCH_MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    with caplog.at_level(logging.WARNING, logger="waterwatch.training"):
        scored = _score(out, down)
    assert scored.exit_code == 0, scored.output
    assert any("cannot be read" in r.getMessage() and "version 2" in r.getMessage() for r in caplog.records)
    assert set(pd.read_csv(out / "leads.csv", dtype={"model_version": str})["model_version"]) == {"2"}


def test_a_missing_version_or_one_fitted_on_other_features_is_refused(flow):
    from sklearn.linear_model import LogisticRegression

    from training import registry
    from waterwatch.settings import Settings

    out, env, client, name = flow
    ws = out / "workspace"
    runner = CliRunner()
    before = (ws / "models" / "champion.joblib").read_bytes()

    missing = runner.invoke(app, ["champion", "--workspace", str(ws), "--version", "9", "--reason", "x"], env=env)
    assert missing.exit_code == 2
    assert "no version 9" in missing.output and "registered versions: 1, 2" in missing.output
    no_reason = runner.invoke(app, ["champion", "--workspace", str(ws), "--version", "1"], env=env)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output

    # a version registered from a model fitted on two made-up columns
    settings = Settings(home=out.parent / "var", show_progress=False)
    registry.connect(settings.resolved_tracking_uri(), name)
    X = pd.DataFrame({"made_up_a": [0.0, 1.0, 2.0, 3.0], "made_up_b": [1.0, 0.0, 1.0, 0.0]})
    report = out.parent / "report"
    report.mkdir()
    other = registry.log_run(name=name, params={}, risk_params={}, metrics={}, artifacts_dir=report,
                             model=LogisticRegression().fit(X, [0, 0, 1, 1]), X_example=X, objective=0.0)
    refused = runner.invoke(app, ["champion", "--workspace", str(ws), "--version", other.version, "--reason", "x"],
                            env=env)
    assert refused.exit_code == 2
    assert f"version {other.version}'s feature columns do not match" in refused.output
    assert "made_up_a" in refused.output

    # nothing moved
    assert _alias(client, name) == "2" and (ws / "models" / "champion.joblib").read_bytes() == before
    assert "promotion" not in client.get_model_version(name, other.version).tags
    shutil.rmtree(report)
