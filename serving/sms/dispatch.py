"""Sending the outbox: each due message is claimed, handed to a sender, and its outcome recorded.

Exactly once, from the store's side: a sender first *claims* a message with one conditional UPDATE (only a
queued message that is due and not claimed by another sender, or whose claim ran out), so two
``waterwatch send`` processes, or one and the service, never hand the same message over at the same time.
Every attempt carries the same idempotency key (the message id; a supervisor's resend of a message the
gateway took but could not deliver gets a new one), so an attempt that timed out after the gateway accepted
it is answered "already accepted" the next time, and not sent again. A failed attempt waits
``backoff_seconds`` (doubling, with jitter) before the next; after ``max_attempts`` the message is ``failed``
with the last error, and stays in the console for a resend. Nothing is lost: a sender that dies holding a
claim leaves the message queued, and the next sender takes it once the claim's lease ends.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import sessionmaker

from serving.audit import audit
from serving.sms.senders import Sender, SendResult, SmsMessage, own_signature
from serving.store import OutboxMessage, Run, utcnow

ACTOR = "sms-sender"
FINAL_DELIVERY = ("delivered", "undeliverable")


@dataclass
class SendCounts:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    delivered: int = 0
    undeliverable: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def message_key(message_id: str, resend_round: int) -> str:
    """The idempotency key of a message's delivery: its id, with the resend round after a resend."""
    return message_id if not resend_round else f"{message_id}.r{resend_round}"


def backoff_seconds(attempts: int, sms, rng: random.Random | None = None) -> float:
    """Wait after the ``attempts``-th failed attempt: base · 2^(attempts-1), capped, with ±20 % jitter."""
    base = min(float(sms.backoff_max_seconds), float(sms.backoff_seconds) * 2 ** max(0, attempts - 1))
    return base * (0.8 + 0.4 * (rng or random).random())


def due(now: datetime):
    """The condition of a message a sender may take now."""
    return (OutboxMessage.status == "queued",
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))


def claim(sessions: sessionmaker, message_id: str, now: datetime, lease: timedelta) -> str | None:
    """Take ``message_id`` for one attempt; the claim's token, or None when another sender has it or it is
    not due. One conditional UPDATE: atomic on SQLite and PostgreSQL alike."""
    token = secrets.token_hex(16)
    with sessions() as session, session.begin():
        taken = session.execute(
            update(OutboxMessage).where(OutboxMessage.message_id == message_id, *due(now))
            .values(claimed_until=now + lease, claim_token=token, attempts=OutboxMessage.attempts + 1,
                    last_attempt_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    return token if taken == 1 else None


def record(sessions: sessionmaker, message_id: str, token: str, result: SendResult, sender: str, sms,
           now: datetime, rng: random.Random | None = None) -> str:
    """Store what an attempt gave; returns the message's state: ``sent``, ``retrying`` or ``failed``."""
    with sessions() as session, session.begin():
        msg = session.get(OutboxMessage, message_id, with_for_update=True)
        if msg.claim_token != token and msg.status == "sent":
            return "sent"  # our lease ran out and another sender finished it meanwhile
        msg.claimed_until, msg.claim_token, msg.sender = None, None, sender
        if result.done:
            msg.status, msg.sent_at, msg.error, msg.next_attempt_at = "sent", now, None, None
            msg.gateway_id, msg.delivery = result.gateway_id, result.outcome
            msg.delivered_at = now if result.outcome == "delivered" else None
            audit(session, ACTOR, "outbox_sent", "outbox", message_id,
                  {"attempts": msg.attempts, "sender": sender, "gateway_id": result.gateway_id})
            return "sent"
        msg.error = (result.error or result.outcome)[:1000]
        if result.outcome == "rejected" or msg.attempts >= sms.max_attempts:
            msg.status, msg.next_attempt_at = "failed", None
            audit(session, ACTOR, "outbox_failed", "outbox", message_id,
                  {"attempts": msg.attempts, "sender": sender, "error": msg.error})
            return "failed"
        wait = max(backoff_seconds(msg.attempts, sms, rng), result.retry_after or 0.0)
        msg.next_attempt_at = now + timedelta(seconds=wait)
        return "retrying"


def of_city(city: str) -> tuple:
    """The condition of one city's messages (in a store a province's cities share): by the city of the run that
    wrote them."""
    return (OutboxMessage.run_id.in_(select(Run.run_id).where(Run.city == city)),)


def send_due(sessions: sessionmaker, sender: Sender, sms, limit: int | None = None,
             clock: Callable[[], datetime] = utcnow, rng: random.Random | None = None,
             where: tuple = ()) -> SendCounts:
    """One pass: every message due now (at most ``limit``; ``where``: of these only, e.g. one city's), oldest
    first, claimed and sent one by one. A province city's message keeps the signature its run wrote (its own
    city's bureau: one store and one sender may serve every city) unless ``sms.signature`` names one; a city
    run's is signed by the sender's."""
    counts = SendCounts()
    now = clock()
    with sessions() as session:
        ids = list(session.scalars(select(OutboxMessage.message_id).where(*due(now), *where)
                                   .order_by(OutboxMessage.created_at, OutboxMessage.message_id)
                                   .limit(limit or sms.batch_size)))
    lease = timedelta(seconds=float(sms.lease_seconds))
    for message_id in ids:
        token = claim(sessions, message_id, clock(), lease)
        if token is None:
            continue
        with sessions() as session:
            msg = session.get(OutboxMessage, message_id)
            city = None if msg.run_id is None else session.scalar(select(Run.city).where(Run.run_id == msg.run_id))
            signature = own_signature(msg.text) if city is not None and not sms.signature else None
            message = SmsMessage(message_key(msg.message_id, msg.resend_round or 0), msg.recipient or "",
                                 msg.uscc, msg.text or "", signature)
        state = record(sessions, message_id, token, sender.send(message), sender.name, sms, clock(), rng)
        setattr(counts, state, getattr(counts, state) + 1)
    return counts


def poll_deliveries(sessions: sessionmaker, sender: Sender, limit: int = 500,
                    clock: Callable[[], datetime] = utcnow, where: tuple = ()) -> SendCounts:
    """Ask the gateway about sent messages not yet known delivered or undeliverable (``where``: of these only,
    e.g. one city's, whose gateway sent them); record what it says."""
    counts = SendCounts()
    with sessions() as session:
        rows = session.execute(select(OutboxMessage.message_id, OutboxMessage.resend_round)
                               .where(OutboxMessage.status == "sent",
                                      or_(OutboxMessage.delivery.is_(None),
                                          OutboxMessage.delivery.not_in(FINAL_DELIVERY)), *where)
                               .order_by(OutboxMessage.sent_at, OutboxMessage.message_id).limit(limit)).all()
    for message_id, resend_round in rows:
        state = sender.delivery(message_key(message_id, resend_round or 0))
        if state not in FINAL_DELIVERY:
            continue
        with sessions() as session, session.begin():
            msg = session.get(OutboxMessage, message_id, with_for_update=True)
            msg.delivery = state
            if state == "delivered":
                msg.delivered_at = clock()
                counts.delivered += 1
            else:
                msg.error = "无法送达 (undeliverable)"
                counts.undeliverable += 1
            audit(session, ACTOR, f"outbox_{state}", "outbox", message_id, {})
    return counts
