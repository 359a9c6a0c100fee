"""Risk scores for other systems: lookups in the live run, and the champion on profiles they send."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from serving import roles
from serving.api.params import City, Uscc
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
    reason_codes,
    split_reasons,
)
from serving.services import scores
from serving.services.scope import caller_scope

router = APIRouter(prefix="/scores", tags=["scores"])
INLINE_ROWS = 8  # predictions of at most this many rows run on the event loop
ScoreReader = Annotated[Principal, RequireRole(*roles.SCORES)]


@router.post("/predict", response_model=PredictPublic, responses={**ERRORS, 503: {"model": ErrorPublic}})
async def predict(body: PredictCreate, model: ModelDep, principal: ScoreReader, city: City = None):
    """Risk from the champion model for entity profiles another system computed itself (the snapshot's
    feature columns, see GET /model; a feature left out counts as unknown, a name the champion does not use or a
    value of the wrong type is a 422 naming it and the row). The champion of the caller's city's
    live run (a caller bound to no city: of ``city``'s, else the one model of every city's live run; 422 when
    their models differ)."""
    model = scores.model_of(model, caller_scope(principal, city))
    rows = [(row.id, row.features) for row in body.rows]
    if len(rows) <= INLINE_ROWS:  # a millisecond or two of CPU and no I/O: on the event loop, one request after
        risk = scores.predict(model, rows)  # the other, not in threads that take the GIL from each other
    else:  # a batch: in the thread pool, so that it does not hold up other requests
        risk = await run_in_threadpool(scores.predict, model, rows)
    return PredictPublic(model_version=model.champion.version,
                         scores=[PredictScore(id=row.id, risk_score=p) for row, p in zip(body.rows, risk)])


@router.post("/batch", response_model=ScoresBatchPublic, responses={413: {"model": ErrorPublic}})
def batch(body: ScoresBatchCreate, session: SessionDep, model: ModelDep, principal: ScoreReader, city: City = None):
    """Scores of up to 10,000 entities in one call (422 above), each from its city's live run (a caller bound
    to a city: only that city's entities)."""
    scope = caller_scope(principal, city)
    runs = scores.live_runs(model, scope)
    found, missing = scores.batch_scores(session, runs, body.usccs)
    return ScoresBatchPublic(run_id=model.of(scope).run_id or runs[0], missing=missing,
                             scores=[BatchScore(uscc=u, rank=r, risk_score=p, run_id=run) for u, r, p, run in found])


@router.get("/{uscc}", response_model=ScorePublic, responses=ERRORS)
def score(uscc: Uscc, session: SessionDep, model: ModelDep, principal: ScoreReader, city: City = None):
    """An entity's risk in its city's live run: score, city-wide rank, reasons, a summary of its profile (a
    caller bound to a city finds only that city's entities)."""
    row = scores.score_of(session, scores.live_runs(model, caller_scope(principal, city)), uscc)
    return ScorePublic(uscc=uscc, name=row.name, district=row.district, industry_code=row.industry_code,
                       run_id=row.run_id, rank=row.rank, risk_score=row.risk_score, reasons=split_reasons(row.reasons),
                       reason_codes=reason_codes(row.reason_codes), profile=ProfileSummary.of(row.series))
