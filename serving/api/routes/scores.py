"""Risk scores for other systems: lookups in the live run, and the champion on profiles they send."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from serving import roles
from serving.api.params import Uscc
from serving.identity import Principal
from serving.deps import ModelDep, RequireRole, SessionDep
from serving.schemas import (
    ERRORS,
    BatchScore,
    ErrorPublic,
    PredictCreate,
    PredictPublic,
    PredictScore,
    ProfileSummary,
    ScorePublic,
    ScoresBatchCreate,
    ScoresBatchPublic,
    split_reasons,
)
from serving.services import scores

router = APIRouter(prefix="/scores", tags=["scores"])
ScoreReader = Annotated[Principal, RequireRole(*roles.SCORES)]


@router.post("/predict", response_model=PredictPublic, responses={**ERRORS, 503: {"model": ErrorPublic}})
def predict(body: PredictCreate, model: ModelDep, _: ScoreReader):
    """Risk from the champion model for entity profiles another system computed itself (the snapshot's
    feature columns, see GET /model; a feature left out counts as unknown)."""
    risk = scores.predict(model, [(row.id, row.features) for row in body.rows])
    return PredictPublic(model_version=model.champion.version,
                         scores=[PredictScore(id=row.id, risk_score=p) for row, p in zip(body.rows, risk)])


@router.post("/batch", response_model=ScoresBatchPublic, responses={413: {"model": ErrorPublic}})
def batch(body: ScoresBatchCreate, session: SessionDep, model: ModelDep, _: ScoreReader):
    """Scores of up to 10,000 entities in one call (422 above)."""
    run_id = scores.live_run(model)
    found, missing = scores.batch_scores(session, run_id, body.usccs)
    return ScoresBatchPublic(run_id=run_id, missing=missing,
                             scores=[BatchScore(uscc=u, rank=r, risk_score=p) for u, r, p in found])


@router.get("/{uscc}", response_model=ScorePublic, responses=ERRORS)
def score(uscc: Uscc, session: SessionDep, model: ModelDep, _: ScoreReader):
    """An entity's risk in the live run: score, city-wide rank, reasons, a summary of its profile."""
    run_id = scores.live_run(model)
    row = scores.score_of(session, run_id, uscc)
    return ScorePublic(uscc=uscc, name=row.name, district=row.district, industry_code=row.industry_code,
                       run_id=run_id, rank=row.rank, risk_score=row.risk_score, reasons=split_reasons(row.reasons),
                       profile=ProfileSummary.of(row.series))
