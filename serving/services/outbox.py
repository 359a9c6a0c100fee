"""The SMS outbox: messages to entities, and the delivery state the gateway reports back."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.identity import Principal
from serving.errors import Conflict, Forbidden, NotFound
from serving.services.scope import Scope
from serving.store import OutboxMessage, Run, utcnow

OUTBOX_ORDER = (OutboxMessage.created_at, OutboxMessage.message_id)


def in_area(area: Scope) -> list:
    """Conditions on the outbox: the messages of the scope's city, by the city of the run that wrote them."""
    if area.every_city:
        return []
    city = Run.city.is_(None) if area.city is None else Run.city == area.city
    return [OutboxMessage.run_id.in_(select(Run.run_id).where(city))]


def select_messages(status: str | None = None, area: Scope = Scope()) -> Select:
    q = select(OutboxMessage).where(*in_area(area))
    return q if status is None else q.where(OutboxMessage.status == status)


def _message(session: Session, message_id: str, area: Scope) -> OutboxMessage:
    """The message, locked for the change; NotFound, or Forbidden when it is another city's."""
    msg = session.get(OutboxMessage, message_id, with_for_update=True)
    if msg is None:
        raise NotFound(f"消息 {message_id} 不存在 (no message {message_id})")
    if not area.every_city and session.scalar(select(OutboxMessage.message_id).where(
            OutboxMessage.message_id == message_id, *in_area(area))) is None:
        raise Forbidden(f"只能处理本市的短信 (message {message_id} is another city's)")
    return msg


def mark_message(session: Session, message_id: str, principal: Principal, new: str,
                 error: str | None = None, area: Scope = Scope()) -> OutboxMessage:
    """Record a delivery state: ``sent`` is idempotent and final; ``failed`` records each error."""
    msg = _message(session, message_id, area)
    if msg.status == "sent" and new == "failed":
        raise Conflict(f"消息 {message_id} 已发送 (message already sent)")
    if msg.status != new or new == "failed":
        msg.status, msg.error = new, error
        msg.sent_at = utcnow() if new == "sent" else msg.sent_at
        audit(session, principal.username, f"outbox_{new}", "outbox", message_id, {"error": error} if error else {})
        session.commit()
    return msg


def resend_message(session: Session, message_id: str, principal: Principal,
                   area: Scope = Scope()) -> OutboxMessage:
    """Queue a message again (a supervisor's resend): one that failed keeps its idempotency key (the gateway
    may hold an earlier attempt, which then counts), one the gateway took but could not deliver gets a new
    key (a new resend round), so that it is really sent again. A message still queued is left as it is."""
    msg = _message(session, message_id, area)
    if msg.status == "queued":
        raise Conflict(f"消息 {message_id} 已在待发送队列中 (message is already queued)")
    if msg.status == "sent" and msg.delivery != "undeliverable":
        raise Conflict(f"消息 {message_id} 已发送 (message already sent)")
    previous = {"status": msg.status, "delivery": msg.delivery, "attempts": msg.attempts, "error": msg.error}
    if msg.status == "sent":
        msg.resend_round = (msg.resend_round or 0) + 1
    msg.status, msg.attempts, msg.next_attempt_at, msg.error = "queued", 0, None, None
    msg.claimed_until = msg.claim_token = msg.gateway_id = msg.delivery = msg.delivered_at = None
    audit(session, principal.username, "outbox_resend", "outbox", message_id,
          {**previous, "resend_round": msg.resend_round})
    session.commit()
    return msg
