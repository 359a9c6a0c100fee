"""Running the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from serving import roles
from serving.api.routes.model import model_public
from serving.audit import audit
from serving.identity import Principal
from serving.deps import RequireRole, SessionDep
from serving.schemas import ERRORS, ModelPublic

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/reload-model", response_model=ModelPublic, responses=ERRORS)
def reload_model(request: Request, session: SessionDep, principal: Annotated[Principal, RequireRole(*roles.ADMIN)]):
    """Serve the latest published run and its model; requests in flight finish on the old one."""
    info = request.app.state.model.reload()
    audit(session, principal.username, "reload_model", "run", info.run_id or "-", {"version": info.version})
    session.commit()
    return model_public(info, principal)
