"""The model behind the live run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from serving import roles
from serving.api.params import City
from serving.identity import Principal
from serving.deps import ModelDep, RequireRole
from serving.runtime import ModelInfo
from serving.schemas import ERRORS, ModelPublic
from serving.services.scope import caller_scope
from serving.services.scores import model_of

router = APIRouter(tags=["model"])


NOT_LOADED = "模型文件无法加载，请联系系统管理员 (the champion model could not be loaded: ask the service's admin)"


def model_public(model: ModelInfo, principal: Principal) -> ModelPublic:
    """The model; why the champion did not load (its text names the server's files) only to an admin, who runs
    the service: anyone else is told that it did not."""
    bundle = model.champion
    error = model.champion_error if principal.role in roles.ADMIN or model.champion_error is None else NOT_LOADED
    return ModelPublic(version=model.version, trained_at=model.trained_at, as_of=model.as_of, run_id=model.run_id,
                       published_at=model.published_at, backtest=model.backtest, loaded_at=model.loaded_at,
                       champion_loaded=bundle is not None, champion_version=None if bundle is None else bundle.version,
                       champion_features=[] if bundle is None else list(bundle.features),
                       champion_error=error)


@router.get("/model", response_model=ModelPublic, responses=ERRORS)
def model_info(model: ModelDep, principal: Annotated[Principal, RequireRole(*roles.READ)], city: City = None):
    """The model behind the live run of the caller's city (a caller bound to no city: of ``city``, else the one
    model of every city's live run; 422 when their models differ): version, when it was trained, its backtest
    metrics."""
    return model_public(model_of(model, caller_scope(principal, city)), principal)
