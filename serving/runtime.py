"""What the running service serves: the live run and the champion model that scored it.

``ModelHolder`` keeps one immutable ``ModelInfo``; a reload builds the next one aside and swaps the
reference, so requests in flight finish on the one they started with and none waits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import sessionmaker

from serving.publish import current_run
from serving.store import utcnow


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

    def __init__(self, sessions: sessionmaker):
        self._sessions = sessions
        self._lock = threading.Lock()
        self.info = ModelInfo()

    def reload(self) -> ModelInfo:
        with self._sessions() as session:
            run = current_run(session)
            new = ModelInfo() if run is None else _info_of(run)
        with self._lock:
            self.info = new
        return new


def _info_of(run) -> ModelInfo:
    meta = run.model_info or {}
    backtest = meta.get("backtest") or meta.get("metrics") or {}
    champion, error = load_champion(meta.get("artifact"))
    return ModelInfo(
        run_id=run.run_id, version=None if run.model_version is None else str(run.model_version),
        trained_at=meta.get("trained_at"), as_of=None if run.as_of is None else run.as_of.isoformat(),
        published_at=run.published_at, backtest=backtest if isinstance(backtest, dict) else {},
        champion=champion, champion_error=error,
    )
