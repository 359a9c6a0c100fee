"""Review of session 11's serving changes (case assignment, the console's origin check, kept copies of scored models):
the defects found, each shown by a test that failed before its fix. On SQLite and on the local PostgreSQL where the
store matters (``empty_store_url``)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from features.workspace import Workspace
from serving.publish import PublishError, publish_run
from serving.store import Run, open_store
from test_store import empty_store_url, make_run  # noqa: F401 - the fixture is used by the tests
from training.artifacts import keep_scored, load_bundle
from waterwatch.settings import Settings


def _scored_run(root: Path) -> tuple[Path, Path]:
    """A run folder whose model.json names, relative to its workspace, a kept copy last used long ago (no model.json
    nor champion in the workspace names it: only a run in the store keeps it)."""
    out = make_run(root / "out", n=20, version="2")
    kept = keep_scored(out / "workspace", load_bundle(out / "champion.joblib"), (out / "champion.joblib").read_bytes())
    os.utime(kept, (1_600_000_000, 1_600_000_000))
    info = json.loads((out / "model.json").read_text(encoding="utf-8"))
    (out / "model.json").write_text(json.dumps({**info, "artifact": f"models/scored/{kept.name}"}), encoding="utf-8")
    return out, kept


def _runs_missing_their_copy(sessions, out: Path) -> list[str]:
    with sessions() as s:
        return [r.run_id for r in s.scalars(select(Run))
                if not (out / "workspace" / r.model_info["artifact"]).exists()]


def test_a_prune_racing_a_publish_never_leaves_a_published_run_without_its_copy(empty_store_url, tmp_path,
                                                                                 monkeypatch):
    """A publish that commits while a prune is between reading the store's runs and removing the copies: the prune
    used to remove the copy the new run names (the service then answers predict with 503 for the live run). Now the
    prune holds the store's runs while it reads and removes, and a publish that comes after finds the copy gone and
    refuses: either the run keeps its copy or it is not published."""
    import serving.run_models
    from waterwatch.scored_models import prune_scored_models

    settings = Settings(home=tmp_path / "var", database_url=empty_store_url, show_progress=False)
    _, sessions = open_store(empty_store_url)
    out, kept = _scored_run(tmp_path)
    real, outcome = serving.run_models.published_names, {}

    def publish():
        try:
            outcome["published"] = publish_run(out, sessions, settings)
        except PublishError as exc:
            outcome["refused"] = str(exc)

    def racing(session):  # the store read, then a publish of a run naming the copy, before the removals
        names = real(session)
        outcome["thread"] = threading.Thread(target=publish)
        outcome["thread"].start()
        outcome["thread"].join(3)  # a publish the prune does not hold up commits within this
        return names

    monkeypatch.setattr(serving.run_models, "published_names", racing)
    prune_scored_models(Workspace(out / "workspace"), settings, keep_recent=0)
    outcome["thread"].join(60)
    assert not outcome["thread"].is_alive()
    assert _runs_missing_their_copy(sessions, out) == [], (outcome, kept.exists())
    assert "published" in outcome or "score the run again" in outcome["refused"], outcome


def test_publishing_a_run_whose_kept_copy_was_pruned_is_refused(empty_store_url, tmp_path):
    """The copy a run folder names was pruned (more scores since than are kept, none published): publishing it used
    to succeed and serve leads whose model is gone (predict 503). Now publish refuses and says what to do; a run
    naming an absolute path (runs scored before names were relative) still publishes as before."""
    from waterwatch.scored_models import prune_scored_models

    settings = Settings(home=tmp_path / "var", database_url=empty_store_url, show_progress=False)
    _, sessions = open_store(empty_store_url)
    out, kept = _scored_run(tmp_path)
    pruned, _ = prune_scored_models(Workspace(out / "workspace"), settings, keep_recent=0)
    assert pruned.removed == [kept] and not kept.exists()
    with pytest.raises(PublishError, match="score the run again") as refused:
        publish_run(out, sessions, settings)
    assert kept.name in str(refused.value)
    with sessions() as s:
        assert s.scalars(select(Run)).all() == []
