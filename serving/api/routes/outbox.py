"""The SMS outbox: messages for the gateway to send, and the delivery states it reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serving import roles
from serving.api.params import City, MessageId, PageNo, PageSize
from serving.identity import Principal
from serving.deps import RequireRole, SessionDep
from serving.schemas import CONFLICT, FailedCreate, OutboxPagePublic, OutboxPublic, OutboxStatus
from serving.services import outbox as service
from serving.services.query import paginate
from serving.services.scope import caller_scope

router = APIRouter(prefix="/outbox", tags=["outbox"])
Reader = Annotated[Principal, RequireRole(*roles.OUTBOX_READ)]
Gateway = Annotated[Principal, RequireRole(*roles.OUTBOX_WRITE)]


@router.get("", response_model=OutboxPagePublic)
def outbox(session: SessionDep, principal: Reader,
           status_: Annotated[OutboxStatus | None, Query(alias="status")] = None, city: City = None,
           page: PageNo = 1, page_size: PageSize = 50):
    """Text messages to entities, for the SMS gateway to send: the caller's city's (a caller bound to no city:
    ``city``'s, or every city's)."""
    query = service.select_messages(status_, caller_scope(principal, city))
    total, rows = paginate(query, session, page, page_size, service.OUTBOX_ORDER)
    return OutboxPagePublic(total=total, page=page, page_size=page_size,
                            items=[OutboxPublic.model_validate(m) for m in rows])


@router.post("/{message_id}/sent", response_model=OutboxPublic, responses=CONFLICT)
def sent(message_id: MessageId, session: SessionDep, principal: Gateway):
    """The gateway delivered the message (idempotent)."""
    return OutboxPublic.model_validate(service.mark_message(session, message_id, principal, "sent",
                                                             area=caller_scope(principal)))


@router.post("/{message_id}/failed", response_model=OutboxPublic, responses=CONFLICT)
def failed(message_id: MessageId, body: FailedCreate, session: SessionDep, principal: Gateway):
    """The gateway could not deliver the message."""
    return OutboxPublic.model_validate(service.mark_message(session, message_id, principal, "failed", body.error,
                                                             caller_scope(principal)))
