"""The kept copies of scored models (``models/scored/``): pruned after each score and by ``waterwatch prune-scored``,
never one a published run names (``training.scored_copies``, ``waterwatch.scored_models``); a run's ``artifact`` is
relative to its workspace, so that a deployment moved whole still serves its models, while runs published with an
absolute path still load (``serving.run_models``); and ``serving.scoring.score`` builds the snapshot once when the
workspace has none saved (the notebooks' path)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import copy_run
from serving.publish import publish_run
from serving.runtime import ModelHolder
from serving.store import Run, open_store
from test_store import _tiny_champion, make_run
from training.artifacts import keep_scored, load_bundle
from waterwatch.cli import app as cli
from waterwatch.settings import Settings

ENV = {"WATERWATCH_SHOW_PROGRESS": "false", "WATERWATCH_MODEL__BACKTEST_CUTOFFS": "2",
       "WATERWATCH_MODEL__OPTUNA_TRIALS": "0"}


def _settings(home: Path) -> Settings:
    return Settings(home=home, show_progress=False)


def _keep(ws: Path, version: str, at: float) -> Path:
    """A kept copy of a small bundle of ``version``, last used at time ``at`` (seconds since the epoch)."""
    made = _tiny_champion(ws.parent / f"bundle-{version}.joblib", version)
    path = keep_scored(ws, load_bundle(made), made.read_bytes())
    os.utime(path, (at, at))
    return path


def _set_artifact(out: Path, artifact: str) -> None:
    info = {**json.loads((out / "model.json").read_text(encoding="utf-8")), "artifact": artifact}
    (out / "model.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def copies(tmp_path):
    """A workspace with seven kept copies (v1 used first ... v7 last); run 1 (relative name) and run 2 (absolute, as
    runs were published before) name v1 and v2 in the store; the workspace's model.json names v3; champion.joblib
    holds v4's model. v5 and v6 are named by nothing and are older than v7."""
    home = tmp_path / "var"
    settings = _settings(home)
    _, sessions = open_store(settings.resolved_database_url())
    ws = tmp_path / "run1" / "workspace"
    kept = {v: _keep(ws, v, 1_700_000_000 + 1000 * int(v)) for v in "1234567"}
    run1 = make_run(tmp_path / "run1", n=20, version="1")
    _set_artifact(run1, f"models/scored/{kept['1'].name}")
    publish_run(run1, sessions, settings)
    run2 = make_run(tmp_path / "run2", n=20, version="2")
    _set_artifact(run2, str(kept["2"].resolve()))
    publish_run(run2, sessions, settings)
    (ws / "models" / "model.json").write_text(json.dumps({"version": "3", "artifact": f"models/scored/{kept['3'].name}"}),
                                              encoding="utf-8")
    shutil.copyfile(kept["4"], ws / "models" / "champion.joblib")
    return ws, home, kept


def test_prune_keeps_what_published_runs_name_and_removes_the_rest(copies):
    from features.workspace import Workspace
    from waterwatch.scored_models import prune_scored_models

    ws, home, kept = copies
    pruned, store = prune_scored_models(Workspace(ws), _settings(home), keep_recent=1)
    assert "waterwatch.db" in store and pruned.skipped is None
    assert sorted(p.name for p in pruned.removed) == sorted(kept[v].name for v in "56")
    for v in "56":
        assert not kept[v].exists()
    for v in "12347":  # named by a published run (relative or absolute), model.json, the champion, the last used
        assert kept[v].exists(), v
    assert pruned.kept[kept["1"].name] == ["a published run names it"]
    assert pruned.kept[kept["2"].name] == ["a published run names it"]
    assert pruned.kept[kept["3"].name] == ["the workspace's model.json names it"]
    assert pruned.kept[kept["4"].name] == ["it holds champion.joblib's model"]
    assert pruned.kept[kept["7"].name] == ["among the 1 used last"]
    # a published run's copy stays however old, and whatever the number of recent copies kept
    _keep(ws, "8", 1_800_000_000), _keep(ws, "9", 1_800_000_001)
    pruned, _ = prune_scored_models(Workspace(ws), _settings(home), keep_recent=1)
    assert kept["1"].exists() and kept["2"].exists() and not kept["7"].exists()


def test_prune_command_dry_run_lists_and_removes_nothing_then_removes(copies):
    ws, home, kept = copies
    env = {**ENV, "WATERWATCH_HOME": str(home), "WATERWATCH_MODEL__SCORED_COPIES_KEPT": "1"}
    dry = CliRunner().invoke(cli, ["prune-scored", "--workspace", str(ws), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert f"would remove {kept['5'].name}" in dry.output and f"would remove {kept['6'].name}" in dry.output
    assert f"keep    {kept['1'].name}: a published run names it" in dry.output
    assert all(p.exists() for p in kept.values())
    done = CliRunner().invoke(cli, ["prune-scored", "--workspace", str(ws)], env=env)
    assert done.exit_code == 0, done.output
    assert f"removed {kept['5'].name}" in done.output and "removed 2" in done.output
    assert {p.name for p in (ws / "models" / "scored").iterdir()} == {kept[v].name for v in "12347"}


def test_nothing_is_removed_when_the_store_cannot_be_read(copies, tmp_path):
    """Another WATERWATCH_HOME (no store there) or a database that is not reachable: a copy a run published there
    names may be among them, so every copy stays (and the command says so, exit 2)."""
    from features.workspace import Workspace
    from waterwatch.scored_models import prune_scored_models

    ws, _, kept = copies
    pruned, store = prune_scored_models(Workspace(ws), _settings(tmp_path / "elsewhere"), keep_recent=1)
    assert pruned.removed == [] and "no store at" in store
    down = Settings(home=tmp_path / "var", database_url="postgresql+psycopg://nobody@127.0.0.1:9/none")
    pruned, store = prune_scored_models(Workspace(ws), down, keep_recent=1)
    assert pruned.removed == [] and "cannot be read" in store
    refused = CliRunner().invoke(cli, ["prune-scored", "--workspace", str(ws)],
                                 env={**ENV, "WATERWATCH_HOME": str(tmp_path / "elsewhere")})
    assert refused.exit_code == 2 and "nothing removed: no store at" in refused.output
    assert all(p.exists() for p in kept.values())


def _deployment(root: Path, version: str = "3") -> tuple[Path, Path]:
    """A run folder (its workspace inside it, holding the kept copy it names relatively) published into the store
    of the home beside it: root/out, root/var."""
    out, home = root / "out", root / "var"
    run = make_run(out, n=20, version=version)
    bundle = load_bundle(run / "champion.joblib")
    kept = keep_scored(out / "workspace", bundle, (run / "champion.joblib").read_bytes())
    (run / "champion.joblib").unlink()
    _set_artifact(run, f"models/scored/{kept.name}")
    _, sessions = open_store(_settings(home).resolved_database_url())
    publish_run(run, sessions, _settings(home))
    return out, home


def test_a_relative_artifact_survives_moving_the_deployment_and_an_absolute_one_still_loads(tmp_path):
    out, home = _deployment(tmp_path / "here")
    _, sessions = open_store(_settings(home).resolved_database_url())
    assert ModelHolder(sessions, home=home).reload().champion.version == "3"
    shutil.move(tmp_path / "here", tmp_path / "there")  # home, store, run and workspace moved together
    home = tmp_path / "there" / "var"
    _, sessions = open_store(_settings(home).resolved_database_url())
    with sessions() as s:
        assert s.query(Run).one().model_info["artifact"].startswith("models/scored/champion-v3-")
    info = ModelHolder(sessions, home=home).reload()
    assert info.champion is not None and info.champion.version == "3", info.champion_error
    # a service that does not know its home looks only where the workspace was: it names what to do
    lost = ModelHolder(sessions).reload()
    assert lost.champion is None and "publish the run again" in lost.champion_error

    # the home moved alone (another WATERWATCH_HOME): the workspace is where it was published from
    out, home = _deployment(tmp_path / "stay")
    shutil.move(home, tmp_path / "new-home")
    _, sessions = open_store(_settings(tmp_path / "new-home").resolved_database_url())
    assert ModelHolder(sessions, home=tmp_path / "new-home").reload().champion.version == "3"

    # a run published before artifacts were relative names an absolute path, and no workspace: it loads as it did
    old = make_run(tmp_path / "old" / "out", n=20, version="5")
    assert Path(json.loads((old / "model.json").read_text(encoding="utf-8"))["artifact"]).is_absolute()
    _, sessions = open_store(_settings(tmp_path / "old" / "var").resolved_database_url())
    publish_run(old, sessions, _settings(tmp_path / "old" / "var"))
    with sessions() as s:
        assert "workspace" not in s.query(Run).one().model_info
    assert ModelHolder(sessions, home=tmp_path / "old" / "var").reload().champion.version == "5"


def _count(monkeypatch, module, name: str) -> dict:
    calls = {"n": 0}
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.slow
def test_score_builds_the_snapshot_once_when_the_workspace_has_none(small_city_run, tmp_path, monkeypatch):
    """A workspace without the profile stage's files (the notebooks: ingest, link, train, score): the snapshot is
    built once and both scored and explained from it; the leads are those of the saved snapshot's."""
    import features.profiles
    from serving.scoring import score
    from training.artifacts import load_champion

    copy_run(small_city_run, tmp_path)
    ws = tmp_path / "out" / "workspace"
    bundle, settings = load_champion(ws), _settings(tmp_path / "var")
    saved = score(ws, settings, bundle=bundle)
    shutil.rmtree(ws / "profiles")
    snapshots = _count(monkeypatch, features.profiles, "entity_snapshot")
    profiles = _count(monkeypatch, features.profiles, "build_profiles")
    built = score(ws, settings, bundle=bundle)
    assert snapshots["n"] == 1 and profiles["n"] == 1
    pd.testing.assert_series_equal(built["risk_score"], saved["risk_score"], rtol=1e-9)
    assert built["uscc"].tolist() == saved["uscc"].tolist() and built["reasons"].tolist() == saved["reasons"].tolist()


@pytest.mark.slow
def test_score_prunes_and_a_moved_pipeline_run_still_serves_its_model(small_city_run, tmp_path):
    """The pipeline's run names its copy relative to its workspace; published, scored again (the copies no run
    names removed, the published one kept), then moved whole with its home: the service predicts with it."""
    from fastapi.testclient import TestClient

    from serving.api import create_app
    from serving.settings import AuthSettings
    from serving.store import User
    from test_api import SECRET, bearer

    copy_run(small_city_run, tmp_path / "a")
    out, home = tmp_path / "a" / "out", tmp_path / "a" / "var"
    scored = out / "workspace" / "models" / "scored"
    artifact = json.loads((out / "model.json").read_text(encoding="utf-8"))["artifact"]
    assert artifact.startswith("models/scored/champion-v1-") and (out / "workspace" / artifact).exists()
    env = {**ENV, "WATERWATCH_HOME": str(home), "WATERWATCH_MODEL__SCORED_COPIES_KEPT": "1"}
    stale = []
    for i, name in enumerate(("champion-v0-0000000000000000.joblib", "champion-v0-1111111111111111.joblib")):
        stale.append(scored / name)
        shutil.copyfile(out / "workspace" / artifact, stale[-1])
        os.utime(stale[-1], (1_600_000_000 + i, 1_600_000_000 + i))
    published = CliRunner().invoke(cli, ["publish", "--out", str(out)], env=env)
    assert published.exit_code == 0, published.output
    again = CliRunner().invoke(cli, ["score", "--workspace", str(out / "workspace"), "--out", str(out / "leads.csv")],
                               env=env)
    assert again.exit_code == 0, again.output
    assert "removed 2" in again.output and not any(p.exists() for p in stale)
    assert (out / "workspace" / artifact).exists()

    shutil.move(tmp_path / "a", tmp_path / "b")
    out, home = tmp_path / "b" / "out", tmp_path / "b" / "var"
    settings = Settings(home=home, show_progress=False, auth=AuthSettings(secret_key=SECRET))
    _, sessions = open_store(settings.resolved_database_url())
    with sessions() as s, s.begin():
        s.add(User(username="ana", role="analyst"))
    snapshot = pd.read_parquet(out / "workspace" / "profiles" / "snapshot.parquet").set_index("uscc")
    leads = pd.read_csv(out / "leads.csv", dtype={"uscc": str}).head(3)
    with TestClient(create_app(settings, sessions, demo_users=False)) as client:
        ana = bearer(sessions, "ana")
        model = client.get("/api/v1/model", headers=ana).json()
        assert model["champion_loaded"] and model["champion_version"] == "1", model
        rows = [{"id": u, "features": {k: (None if pd.isna(v) else v if isinstance(v, str) else float(v))
                                       for k, v in snapshot.loc[u, model["champion_features"]].items()}}
                for u in leads["uscc"]]
        answer = client.post("/api/v1/scores/predict", headers=ana, json={"rows": rows})
    assert answer.status_code == 200, answer.text
    got = {s["id"]: s["risk_score"] for s in answer.json()["scores"]}
    assert got == pytest.approx(dict(zip(leads["uscc"], leads["risk_score"])), rel=1e-9)
