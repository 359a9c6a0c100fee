"""One router per resource; ``api_router`` mounts them all under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from serving.api.routes import admin, alerts, auth, leads, model, outbox, scores, verdicts, water_rights
from serving.deps import API_PREFIX
from serving.schemas import ErrorPublic

api_router = APIRouter(prefix=API_PREFIX, responses={400: {"model": ErrorPublic}, 401: {"model": ErrorPublic},
                                                     403: {"model": ErrorPublic}, 422: {"model": ErrorPublic}})
for _module in (auth, model, scores, leads, verdicts, alerts, outbox, water_rights, admin):
    api_router.include_router(_module.router)
