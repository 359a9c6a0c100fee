"""One router per resource; ``build_api_router`` mounts them all under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from serving.api.routes import admin, alerts, auth, cases, leads, model, outbox, scores, verdicts, water_rights
from serving.deps import API_PREFIX
from serving.schemas import ErrorPublic

RESOURCES = (auth, model, leads, verdicts, alerts, cases, outbox, water_rights, admin)


def build_api_router(max_batch_body_bytes: int) -> APIRouter:
    """The API; the scoring calls, which take batches, accept bodies up to ``max_batch_body_bytes``
    (the others the app's limit)."""
    router = APIRouter(prefix=API_PREFIX, responses={400: {"model": ErrorPublic}, 401: {"model": ErrorPublic},
                                                     403: {"model": ErrorPublic}, 413: {"model": ErrorPublic},
                                                     422: {"model": ErrorPublic}})
    # scores first: a request is matched against the routes in order, and other systems' scoring calls are the
    # hot path (the paths do not overlap, so the order changes nothing else)
    router.include_router(scores.router, max_body_size=max_batch_body_bytes)
    for module in RESOURCES:
        router.include_router(module.router)
    return router
