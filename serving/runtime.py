"""What the running service serves: the live run and the champion model that scored it.

``ModelHolder`` keeps one immutable ``ModelInfo``; a reload builds the next one aside and swaps the
reference, so requests in flight finish on the one they started with and none waits. The holder follows
the store: every ``check_seconds`` one request looks up the latest published run (one small query) and,
when a run was published since, switches to it and its model, so a ``waterwatch publish`` needs no reload.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from sqlalchemy import select

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
    city: str | None = None  # the run's city (None: a city run's)
    # each city's live run and its model, the run published last first (one store may hold a province's cities)
    cities: tuple[ModelInfo, ...] = field(default=(), repr=False, compare=False)
    # the cities whose live runs carry different models (empty: one model serves every city, as a province run's
    # does): a caller of every city must then name one for predict and the model, as the run published last
    # would answer for the other cities with a model that never scored them
    models_differ: tuple[str | None, ...] = ()

    def of(self, scope) -> ModelInfo:
        """The live run and model of a ``serving.services.scope.Scope``: its city's latest run (empty when the city
        has none); for a scope of every city, the run published last."""
        if scope.every_city:
            return self
        return next((info for info in self.cities or (self,) if info.city == scope.city and info.run_id),
                    ModelInfo())

    def runs_of(self, scope) -> tuple[str, ...]:
        """The live runs a scope sees: every city's, or its one city's."""
        if scope.every_city:
            return self.live_runs
        run_id = self.of(scope).run_id
        return () if run_id is None else (run_id,)


def load_champion(meta: dict[str, Any] | str | None, home: Path | None = None) -> tuple[Any, str | None]:
    """The joblib bundle a published run names (its ``model_info``; or the ``artifact`` alone), the copy kept of the
    one that scored it (``training.artifacts.keep_scored``; no MLflow server needed), looked for where the run's
    workspace is now (``serving.run_models``, from ``home``); the reason when it cannot load."""
    from serving.run_models import model_file

    path, problem = model_file(meta if isinstance(meta, dict) else {"artifact": meta}, home)
    if path is None:
        return None, problem
    from training.artifacts import load_bundle

    try:
        data = path.read_bytes()
        if (problem := content_mismatch(path, data)) is not None:  # checked before joblib unpickles anything
            return None, problem
        return load_bundle(path, data), None
    except Exception as exc:  # a missing or unreadable file degrades /scores/predict, never the service
        return None, f"{type(exc).__name__}: {exc}"


def content_mismatch(path: Path, data: bytes) -> str | None:
    """Why a kept copy's bytes are not the model its name says (``champion-v<version>-<digest>.joblib``: the
    digest is of its bytes, ``training.artifacts.scored_name``): a file replaced or corrupted since it was kept is
    not unpickled. None for a file so named whose bytes match, and for other names (runs published before copies
    were kept name ``champion.joblib`` or an MLflow artifact)."""
    import re

    from training.artifacts import bundle_digest

    named = re.fullmatch(r"champion-v.+-([0-9a-f]{16})\.joblib", path.name)
    if named is None or bundle_digest(data) == named.group(1):
        return None
    return (f"{path} does not hold the model its name says (the digest of its bytes differs): it was replaced or "
            "corrupted after it was kept; score and publish the run again")


class ModelHolder:
    """Holds the current ``ModelInfo`` of the store behind ``sessions``."""

    def __init__(self, sessions: sessionmaker, check_seconds: float = 2.0, home: Path | None = None):
        """``home``: the service's home folder, where a run's workspace is looked for first (``serving.run_models``)."""
        self._sessions, self.check_seconds, self.home = sessions, check_seconds, home
        self._swap, self._refreshing = threading.Lock(), threading.Lock()
        self._checked = -float("inf")
        self._published: tuple | None = None  # (run_id, updated_at) of the run served
        self.info = ModelInfo()

    def reload(self) -> ModelInfo:
        """Serve the latest published run and its model (blocking)."""
        with self._sessions() as session:
            runs = latest_runs(session)
            new = ModelInfo() if not runs else _infos(runs, self.home)
            published = None if not runs else (runs[0].run_id, runs[0].updated_at)
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


def latest_runs(session) -> list[Run]:
    """Each city's latest published (or re-published) run, the latest first: one store may hold every city of
    a province, each publishing its own runs, and each city's alerts, scores and model are those of its latest run."""
    latest: dict[str | None, Run] = {}
    for run in session.scalars(select(Run).order_by(Run.updated_at.desc(), Run.published_at.desc())):
        latest.setdefault(run.city, run)
    return list(latest.values())


def live_runs(session) -> tuple[str, ...]:
    """The run ids of ``latest_runs``."""
    return tuple(run.run_id for run in latest_runs(session))


def _infos(runs: list[Run], home: Path | None = None) -> ModelInfo:
    """The run published last, with every city's live run and model; a model the cities share (a province run's
    one model) is loaded once."""
    from serving.run_models import candidates

    loaded: dict[str, tuple[Any, str | None]] = {}

    def where(meta: dict[str, Any]) -> str:  # the file a run's model is in (the same file: the same model)
        found = [p for p in candidates(meta, home) if p.exists()]
        return str(found[0]) if found else str(meta.get("artifact"))

    def champion(meta: dict[str, Any]) -> tuple[Any, str | None]:
        key = where(meta)
        if key not in loaded:
            loaded[key] = load_champion(meta, home)
        return loaded[key]

    cities = tuple(_info_of(run, champion) for run in runs)
    models = {where(run.model_info or {}) if (run.model_info or {}).get("artifact") else run.run_id for run in runs}
    return replace(cities[0], live_runs=tuple(run.run_id for run in runs), cities=cities,
                   models_differ=tuple(run.city for run in runs) if len(models) > 1 else ())


def _info_of(run, champion_of=load_champion) -> ModelInfo:
    meta = run.model_info or {}
    backtest = meta.get("backtest") or meta.get("metrics") or {}
    version = None if run.model_version is None else str(run.model_version)
    champion, error = champion_of(meta)
    if champion is not None and version is not None and champion.version != version:
        # a run published before scoring kept its model names champion.joblib, since rewritten by a training or a
        # rollback: predict would answer with a model that did not rank the run's leads
        champion, error = None, (f"{meta.get('artifact')} now holds model version {champion.version}, not version "
                                 f"{version} that scored run {run.run_id}: score the run again and publish it")
    return ModelInfo(
        run_id=run.run_id, version=version,
        trained_at=meta.get("trained_at"), as_of=None if run.as_of is None else run.as_of.isoformat(),
        published_at=run.published_at, backtest=backtest if isinstance(backtest, dict) else {},
        champion=champion, champion_error=error, live_runs=(run.run_id,), city=run.city,
    )
