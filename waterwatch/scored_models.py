"""The kept copies of scored models pruned after a score, and by ``waterwatch prune-scored``: the rule is
``training.scored_copies``'; the runs published to the store the settings point at (the service's, when both share
WATERWATCH_HOME or WATERWATCH_DATABASE_URL) are read here, without creating or migrating anything. When there is no
store there, or it cannot be read, nothing is removed: a copy a run published elsewhere names is never lost to it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from features.workspace import Workspace
from training.scored_copies import Pruned, prune_scored
from waterwatch.settings import Settings

LOG = logging.getLogger("waterwatch")


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def published_names(settings: Settings) -> Iterator[tuple[set[str] | None, str]]:
    """The file names of the models the store's runs name, and which store that is; None (and why) when there
    is no store at the settings' URL or it cannot be read. The runs are held until the block ends
    (``serving.run_models.hold_runs``): a publish naming a copy waits for the removals, or they for it."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    import serving.run_models as run_models
    from serving.store import make_engine

    url = settings.resolved_database_url()
    parsed, shown = make_url(url), _shown(url)
    if parsed.get_backend_name() == "sqlite" and (not parsed.database or parsed.database == ":memory:"
                                                  or not Path(parsed.database).exists()):
        yield None, f"no store at {shown} (WATERWATCH_HOME={settings.home})"
        return
    engine = make_engine(url)
    session = Session(engine)
    try:
        try:
            with engine.connect() as conn:
                tables = inspect(conn).get_table_names()
            if "runs" in tables:
                run_models.hold_runs(session)
                found: tuple[set[str] | None, str] = run_models.published_names(session), shown
            else:
                found = None, f"{shown} holds no WaterWatch store"
        except Exception as exc:  # noqa: BLE001 - a server down, a refused login: nothing is removed
            found = None, f"the store at {shown} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        yield found
    finally:
        session.rollback()
        session.close()
        engine.dispose()


def prune_scored_models(ws: Workspace, settings: Settings, dry_run: bool = False,
                        keep_recent: int | None = None) -> tuple[Pruned, str]:
    """Prune ``ws``'s kept copies (``training.scored_copies.prune_scored``) against the store's runs; returns what
    was removed and kept, and the store read (or why none was)."""
    keep = settings.model.scored_copies_kept if keep_recent is None else keep_recent
    with published_names(settings) as (published, store):
        pruned = prune_scored(ws.root, published, keep, dry_run=dry_run)
    if pruned.skipped:
        LOG.log(logging.INFO if store.startswith("no store") else logging.WARNING,
                "kept copies of scored models in %s not pruned: %s", ws.stage("models") / "scored", store)
    elif pruned.removed:
        LOG.info("%s %d kept copies of scored models no run in %s names: %s", "would remove" if dry_run else "removed",
                 len(pruned.removed), store, ", ".join(p.name for p in pruned.removed))
    return pruned, store


def summary(pruned: Pruned, store: str, dry_run: bool = False) -> str:
    """One line on what a prune did, for the command line."""
    folder = "models/scored"
    if pruned.skipped:
        return f"{folder}: {len(pruned.kept)} kept copies, none removed: {store}"
    verb = "would remove" if dry_run else "removed"
    gone = ", ".join(p.name for p in pruned.removed) or "none"
    return f"{folder}: {verb} {len(pruned.removed)} ({gone}); kept {len(pruned.kept)} (runs published to {store})"
