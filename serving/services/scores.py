"""Risk for other systems: the live run's scores by entity code, and the champion on profiles they send."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.errors import Invalid, NotFound, Unavailable
from serving.runtime import ModelInfo
from serving.services.scope import Scope
from serving.store import Entity, Score, Series

LOOKUP_CHUNK = 2000  # codes per IN (...) query


def live_runs(model: ModelInfo, scope: Scope) -> tuple[str, ...]:
    """The live runs whose scores the scope sees: its city's latest run, or every city's."""
    runs = model.runs_of(scope)
    if not runs:
        raise NotFound("尚未发布任何运行结果 (no run has been published yet)")
    return runs


def model_of(model: ModelInfo, scope: Scope) -> ModelInfo:
    """The live run and model of the scope's city (every city: the run published last, when every city's live
    run carries that one model; Invalid when their models differ, naming the cities to choose from); NotFound
    when that city has published no run."""
    if scope.every_city and model.models_differ:
        named = "、".join(sorted(city or "-" for city in model.models_differ))
        raise Invalid(f"各市的模型不同，请用 ?city= 指定城市：{named} (the cities' live runs use different models: "
                      f"choose one with ?city=, one of {named})")
    info = model.of(scope)
    if info.run_id is None and not scope.every_city:
        raise NotFound(f"尚未发布该市的运行结果 (no run of {scope.city or 'this store'} has been published yet)")
    return info


def score_of(session: Session, run_ids: tuple[str, ...], uscc: str):
    """One entity's score row in the live run of its city (an entity is scored by its own city's runs), with
    its registration and series; NotFound when unscored."""
    row = session.execute(
        select(Score.run_id, Score.rank, Score.risk_score, Score.reasons, Score.reason_codes, Entity.name,
               Entity.district, Entity.industry_code, Series.series)
        .select_from(Score)
        .outerjoin(Entity, Entity.uscc == Score.uscc)
        .outerjoin(Series, Series.uscc == Score.uscc)
        .where(Score.run_id.in_(run_ids), Score.uscc == uscc)
        .order_by(Score.rank, Score.run_id)
    ).first()
    if row is None:
        raise NotFound(f"{uscc} 在当前运行中没有评分 (no score for {uscc})")
    return row


def batch_scores(session: Session, run_ids: tuple[str, ...],
                 usccs: list[str]) -> tuple[list[tuple[str, int, float, str]], list[str]]:
    """(uscc, rank, risk, run) of the codes scored in the live runs, in the order asked (duplicates once), and
    the codes with no score."""
    wanted = list(dict.fromkeys(usccs))
    found: dict[str, tuple[str, int, float, str]] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        part = wanted[start:start + LOOKUP_CHUNK]
        for row in session.execute(select(Score.uscc, Score.rank, Score.risk_score, Score.run_id)
                                   .where(Score.run_id.in_(run_ids), Score.uscc.in_(part))
                                   .order_by(Score.rank.desc(), Score.run_id.desc())):
            found[row.uscc] = (row.uscc, row.rank, row.risk_score, row.run_id)
    return [found[u] for u in wanted if u in found], [u for u in wanted if u not in found]


def predict(model: ModelInfo, rows: list[tuple[str, dict[str, Any]]]) -> list[float]:
    """The champion's risk for (id, features) rows another system computed; a feature left out is unknown, a name
    the champion was not fitted on is refused (a misspelt name would otherwise score as unknown, unnoticed).

    The hot path of one-row scoring: ``ModelBundle.predict_records`` reads the dicts straight into one float
    block (no DataFrame, no per-column conversion) and gives the same number as the batch score of the same
    values (tests/test_determinism.py, tests/test_feedback_loop.py)."""
    from training.artifacts import FeatureTypeError, UnknownFeatureError

    bundle = model.champion
    if bundle is None:
        # why (``champion_error``) names the server's files: GET /model tells an admin
        raise Unavailable("模型未加载，请联系系统管理员 (no champion model loaded: ask the service's admin)")
    try:
        risk = bundle.predict_records([features for _, features in rows])
    except FeatureTypeError as exc:
        zh, en = ("数值", "a number") if exc.expected == "number" else ("文本", "text")
        raise Invalid(f"特征 {exc.feature} 须为{zh} (feature {exc.feature!r} must be {en}, row "
                      f"{rows[exc.row][0]!r})") from exc
    except UnknownFeatureError as exc:
        names = ", ".join(exc.features[:20]) + (" …" if len(exc.features) > 20 else "")
        raise Invalid(f"模型没有这些特征：{names}（特征名见 GET /api/v1/model）(unknown features {names} in row "
                      f"{rows[exc.row][0]!r}; the champion's feature names: GET /api/v1/model)") from exc
    return [float(p) for p in risk]
