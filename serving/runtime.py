"""What the running service serves: the live run and the champion model that scored it.

``ModelHolder`` keeps one immutable ``ModelInfo``; a reload builds the next one aside and swaps the
reference, so requests in flight finish on the one they started with and none waits. The holder follows
the store: every ``check_seconds`` one request looks up the latest published run (one small query) and,
when a run was published since, switches to it and its model, so a ``waterwatch publish`` needs no reload.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import sessionmaker

from sqlalchemy import select

from serving.publish import current_run
from serving.store import Run, utcnow


@dataclass(frozen=True)
class ModelInfo:
    """The live run and the model that scored it (immutable; replaced whole)."""

    run_id: str | None = None
    version: str | None = None
    trained_at: str | None = None
    as_of: str | None = None
    published_at: datetime | None = None
    backtest: dict[str, Any] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=utcnow)
    champion: Any = field(default=None, repr=False, compare=False)  # the joblib bundle, when it can be loaded
    champion_error: str | None = None
    # the latest run of each city in the store (a city run's: its latest), whose alerts the service shows
    live_runs: tuple[str, ...] = ()


def load_champion(artifact: str | None) -> tuple[Any, str | None]:
    """The champion's joblib bundle named by the run (no MLflow server needed); the reason when it cannot load."""
    if not artifact:
        return None, "the published run names no model artifact"
    from training.artifacts import load_bundle

    try:
        return load_bundle(artifact), None
    except Exception as exc:  # a missing or unreadable file degrades /scores/predict, never the service
        return None, f"{type(exc).__name__}: {exc}"


class ModelHolder:
    """Holds the current ``ModelInfo`` of the store behind ``sessions``."""

    def __init__(self, sessions: sessionmaker, check_seconds: float = 2.0):
        self._sessions, self.check_seconds = sessions, check_seconds
        self._swap, self._refreshing = threading.Lock(), threading.Lock()
        self._checked = -float("inf")
        self._published: tuple | None = None  # (run_id, updated_at) of the run served
        self.info = ModelInfo()

    def reload(self) -> ModelInfo:
        """Serve the latest published run and its model (blocking)."""
        with self._sessions() as session:
            run = current_run(session)
            new = ModelInfo() if run is None else _info_of(run, live_runs(session))
            published = None if run is None else (run.run_id, run.updated_at)
        with self._swap:
            self.info, self._published, self._checked = new, published, time.monotonic()
        return new

    def due(self) -> bool:
        return time.monotonic() - self._checked >= self.check_seconds

    def refresh(self) -> ModelInfo:
        """Switch to a run published since the last check, if any (blocking; one query when nothing changed).
        Requests that arrive while another refreshes keep the run they have."""
        if not self._refreshing.acquire(blocking=False):
            return self.info
        try:
            with self._sessions() as session:
                latest = session.execute(select(Run.run_id, Run.updated_at)
                                         .order_by(Run.updated_at.desc(), Run.published_at.desc()).limit(1)).first()
            self._checked = time.monotonic()
            if (None if latest is None else tuple(latest)) != self._published:
                self.reload()
        finally:
            self._refreshing.release()
        return self.info


def live_runs(session) -> tuple[str, ...]:
    """Each city's latest published (or re-published) run: one store may hold every city of a province, each
    publishing its own runs, and each city's alerts are those of its latest run."""
    latest: dict[str | None, str] = {}
    for run_id, city in session.execute(select(Run.run_id, Run.city)
                                        .order_by(Run.updated_at.desc(), Run.published_at.desc())):
        latest.setdefault(city, run_id)
    return tuple(latest.values())


def _info_of(run, live: tuple[str, ...] = ()) -> ModelInfo:
    meta = run.model_info or {}
    backtest = meta.get("backtest") or meta.get("metrics") or {}
    champion, error = load_champion(meta.get("artifact"))
    return ModelInfo(
        run_id=run.run_id, version=None if run.model_version is None else str(run.model_version),
        trained_at=meta.get("trained_at"), as_of=None if run.as_of is None else run.as_of.isoformat(),
        published_at=run.published_at, backtest=backtest if isinstance(backtest, dict) else {},
        champion=champion, champion_error=error, live_runs=live or (run.run_id,),
    )
