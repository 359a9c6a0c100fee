"""Risk for other systems: the live run's scores by entity code, and the champion on profiles they send."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.errors import Invalid, NotFound, Unavailable
from serving.runtime import ModelInfo
from serving.store import Entity, Score, Series

LOOKUP_CHUNK = 2000  # codes per IN (...) query


def live_run(model: ModelInfo) -> str:
    if model.run_id is None:
        raise NotFound("尚未发布任何运行结果 (no run has been published yet)")
    return model.run_id


def score_of(session: Session, run_id: str, uscc: str):
    """One entity's score row in the run, with its registration and series; NotFound when unscored."""
    row = session.execute(
        select(Score.rank, Score.risk_score, Score.reasons, Score.reason_codes, Entity.name, Entity.district, Entity.industry_code,
               Series.series)
        .select_from(Score)
        .outerjoin(Entity, Entity.uscc == Score.uscc)
        .outerjoin(Series, Series.uscc == Score.uscc)
        .where(Score.run_id == run_id, Score.uscc == uscc)
    ).first()
    if row is None:
        raise NotFound(f"{uscc} 在当前运行中没有评分 (no score for {uscc})")
    return row


def batch_scores(session: Session, run_id: str, usccs: list[str]) -> tuple[list[tuple[str, int, float]], list[str]]:
    """(uscc, rank, risk) of the codes scored in the run, in the order asked (duplicates once), and the
    codes with no score."""
    wanted = list(dict.fromkeys(usccs))
    found: dict[str, tuple[str, int, float]] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        part = wanted[start:start + LOOKUP_CHUNK]
        for row in session.execute(select(Score.uscc, Score.rank, Score.risk_score)
                                   .where(Score.run_id == run_id, Score.uscc.in_(part))):
            found[row.uscc] = (row.uscc, row.rank, row.risk_score)
    return [found[u] for u in wanted if u in found], [u for u in wanted if u not in found]


def predict(model: ModelInfo, rows: list[tuple[str, dict[str, Any]]]) -> list[float]:
    """The champion's risk for (id, features) rows another system computed; a feature left out is unknown.

    The hot path of one-row scoring: ``ModelBundle.predict_records`` reads the dicts straight into one float
    block (no DataFrame, no per-column conversion) and gives the same number as the batch score of the same
    values (tests/test_determinism.py, tests/test_feedback_loop.py)."""
    from training.artifacts import FeatureTypeError

    bundle = model.champion
    if bundle is None:
        raise Unavailable(f"模型未加载 (no champion model loaded: {model.champion_error})")
    try:
        risk = bundle.predict_records([features for _, features in rows])
    except FeatureTypeError as exc:
        raise Invalid(f"特征 {exc.feature} 须为数值 (feature {exc.feature!r} must be a number, row "
                      f"{rows[exc.row][0]!r})") from exc
    return [float(p) for p in risk]
