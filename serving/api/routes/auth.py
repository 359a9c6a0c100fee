"""Logging in: the OAuth2 password flow gives a signed bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from serving import auth
from serving.deps import SessionDep
from serving.schemas import ErrorPublic, TokenPublic

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenPublic, responses={400: {"model": ErrorPublic}})
def login(request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]):
    """OAuth2 password flow: a signed token valid ``token_minutes``."""
    if len(form.username) > 64 or len(form.password) > 256:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "用户名或密码过长 (username or password too long)")
    principal = auth.authenticate(session, form.username, form.password)
    settings = request.app.state.settings
    token = auth.issue_token(principal, settings.secret_key, settings.token_minutes)
    return TokenPublic(access_token=token, expires_in=settings.token_minutes * 60, role=principal.role)
