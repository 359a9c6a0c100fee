"""Logging in (the OAuth2 password flow gives a signed bearer token) and out (the token is revoked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from serving.deps import CurrentUser, SessionDep
from serving.schemas import ErrorPublic, Text, TokenPublic
from serving.services import login as service

router = APIRouter(prefix="/auth", tags=["auth"])
Username = Annotated[Text, Form(min_length=1, max_length=64)]
Password = Annotated[Text, Form(min_length=1, max_length=256)]


@router.post("/token", response_model=TokenPublic, responses={429: {"model": ErrorPublic}})
def login(request: Request, session: SessionDep, username: Username, password: Password):
    """OAuth2 password flow: a signed token valid ``token_minutes``. Repeated failures lock the username
    for a time that doubles with each further failure (429 with Retry-After)."""
    settings = request.app.state.settings
    done = service.login(session, username, password, request.client.host if request.client else None,
                         settings.auth, request.app.state.secret_key)
    return TokenPublic(access_token=done.token, expires_in=done.expires_in, role=done.principal.role)


@router.post("/logout", status_code=204, response_class=Response)
def logout(session: SessionDep, principal: CurrentUser):
    """Revoke the bearer token of this request, at once."""
    service.logout(session, principal)
