"""The SMS outbox page: every message with its delivery state, attempts and errors, a resend for those that
failed or could not be delivered, a button that sends what is due now, and the list as CSV/XLSX."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import and_, func, or_, select

from serving import roles
from serving.console.alert_text import alert_text
from serving.console.export import export_response
from serving.console.lists import Listing, choice_param, city_area, text_param
from serving.console.render import PageContext, check_csrf, display_zone, page_for, page_router, render
from serving.deps import SessionDep
from serving.i18n import t
from serving.schemas import Text
from serving.services.outbox import in_area, resend_message
from serving.services.scope import Scope, caller_scope
from serving.store import Alert, Entity, OutboxMessage, Run, utcnow

router = page_router()
Reader = Annotated[PageContext, page_for(*roles.OUTBOX_READ)]
Writer = Annotated[PageContext, page_for(*roles.OUTBOX_WRITE)]
STATES = ("queued", "retrying", "sent", "delivered", "failed", "undeliverable")


def state_of(msg: OutboxMessage, now: datetime) -> str:
    """One word for where a message is: queued, sending, retrying, sent, delivered, failed, undeliverable."""
    if msg.status == "queued":
        if msg.claimed_until is not None and msg.claimed_until > now:
            return "sending"
        return "retrying" if (msg.attempts or 0) > 0 else "queued"
    if msg.status == "sent" and msg.delivery in ("delivered", "undeliverable"):
        return msg.delivery
    return msg.status


def _state_filter(state: str):
    m = OutboxMessage
    return {
        "queued": and_(m.status == "queued", m.attempts == 0),
        "retrying": and_(m.status == "queued", m.attempts > 0),
        "sent": and_(m.status == "sent", or_(m.delivery.is_(None), m.delivery == "accepted")),
        "delivered": and_(m.status == "sent", m.delivery == "delivered"),
        "undeliverable": and_(m.status == "sent", m.delivery == "undeliverable"),
        "failed": m.status == "failed",
    }[state]


def outbox_query(state: str, kind: str, district: str, text: str, area: Scope = Scope()):
    q = (select(OutboxMessage, Alert.kind, Alert.level, Entity.district)
         .outerjoin(Alert, Alert.alert_id == OutboxMessage.alert_id)
         .outerjoin(Entity, Entity.uscc == OutboxMessage.uscc)
         .where(*in_area(area)))
    if state:
        q = q.where(_state_filter(state))
    if kind:
        q = q.where(Alert.kind == kind)
    if district:
        q = q.where(Entity.district == district)
    if text:
        q = q.where(or_(OutboxMessage.recipient.contains(text, autoescape=True),
                        OutboxMessage.text.contains(text, autoescape=True),
                        OutboxMessage.uscc.contains(text, autoescape=True)))
    return q


def outbox_tiles(session, area: Scope = Scope()) -> dict[str, int]:
    mine = in_area(area)
    counts = {s: session.scalar(select(func.count()).select_from(OutboxMessage).where(_state_filter(s), *mine)) or 0
              for s in STATES}
    counts["total"] = session.scalar(select(func.count()).select_from(OutboxMessage).where(*mine)) or 0
    return counts


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request, ctx: Reader, session: SessionDep):
    lang, listing = ctx.lang, Listing.of(request)
    state, area = choice_param(request, "state", STATES), city_area(request, ctx.principal)
    kind, district, text = text_param(request, "kind", 32), text_param(request, "district"), text_param(request, "q")
    total, rows, pages = listing.rows(session, outbox_query(state, kind, district, text, area),
                                      (OutboxMessage.status != "failed", OutboxMessage.created_at.desc(),
                                       OutboxMessage.message_id))
    now = utcnow()
    alerts = {a.alert_id: a for a in session.scalars(
        select(Alert).where(Alert.alert_id.in_([m.alert_id for m, *_ in rows if m.alert_id])))} if lang == "en" else {}
    items = [{
        "id": m.message_id, "state": state_of(m, now), "recipient": m.recipient, "uscc": m.uscc,
        "district": d, "kind": k, "level": lv, "text": m.text,
        "text_en": alert_text(alerts.get(m.alert_id), "en") if m.alert_id in alerts else None,
        "attempts": m.attempts or 0, "last_attempt_at": m.last_attempt_at, "next_attempt_at": m.next_attempt_at,
        "sent_at": m.sent_at, "delivered_at": m.delivered_at, "gateway_id": m.gateway_id, "error": m.error,
        "resend_round": m.resend_round or 0,
        "may_resend": m.status == "failed" or (m.status == "sent" and m.delivery == "undeliverable"),
    } for m, k, lv, d in rows]
    if listing.fmt:
        columns = [("id", t("outbox.id", lang)), ("state", t("queue.status", lang)),
                   ("recipient", t("dash.recipient", lang)), ("uscc", t("lead.uscc", lang)),
                   ("district", t("queue.district", lang)), ("kind", t("alerts.kind", lang)),
                   ("level", t("alerts.level", lang)), ("text", t("dash.text", lang)),
                   ("attempts", t("outbox.attempts", lang)), ("last_attempt_at", t("outbox.last_attempt", lang)),
                   ("next_attempt_at", t("outbox.next_attempt", lang)), ("sent_at", t("outbox.sent_at", lang)),
                   ("delivered_at", t("outbox.delivered_at", lang)), ("error", t("dash.error", lang))]
        for item in items:
            item["state"] = t(f"outbox.{item['state']}", lang)
            item["kind"] = t(f"kind.{item['kind']}", lang) if item["kind"] else None
            item["level"] = t(f"level.{item['level']}", lang) if item["level"] else None
        return export_response(listing.fmt, "outbox", columns, items, t("dash.outbox", lang),
                               zone=display_zone(request))
    settings = request.app.state.settings
    from serving.sms import signature_of

    kinds = sorted(k for k in session.scalars(select(Alert.kind).join(
        OutboxMessage, OutboxMessage.alert_id == Alert.alert_id).where(*in_area(area)).distinct()) if k)
    districts = sorted(d for d in session.scalars(select(Entity.district).join(
        OutboxMessage, OutboxMessage.uscc == Entity.uscc).where(*in_area(area)).distinct()) if d)
    cities = [] if ctx.principal.city else sorted(c for c in session.scalars(select(Run.city).where(
        Run.run_id.in_(select(OutboxMessage.run_id))).distinct()) if c)
    return render(ctx, "outbox.html", items=items, total=total, page=listing.page, pages=pages, state=state,
                  states=STATES, kind=kind, kinds=kinds, district=district, districts=districts, q=text,
                  city=area.city, cities=cities, tiles=outbox_tiles(session, area),
                  may_send=ctx.principal.role in roles.OUTBOX_WRITE,
                  sender=getattr(getattr(settings, "sms", None), "sender", "file"), signature=signature_of(settings),
                  flash=request.query_params.get("done"), flash_counts={
                      k: request.query_params.get(k) for k in ("sent", "retrying", "failed", "resent")})


@router.post("/outbox/send", response_class=HTMLResponse)
async def send_now(request: Request, ctx: Writer, csrf: Annotated[Text, Form()] = ""):
    """Send the messages due now through the configured sender (as `waterwatch send` does): the caller's city's
    (a province role's: every city's)."""
    check_csrf(ctx, csrf)
    from serving.sms import sender_from
    from serving.sms.dispatch import send_due

    settings = request.app.state.settings
    counts = await run_in_threadpool(send_due, request.app.state.sessions, sender_from(settings), settings.sms,
                                     where=tuple(in_area(caller_scope(ctx.principal))))
    c = counts.as_dict()
    return RedirectResponse(f"/outbox?done=send&sent={c['sent']}&retrying={c['retrying']}&failed={c['failed']}",
                            status_code=303)


@router.post("/outbox/{message_id}/resend", response_class=HTMLResponse)
def resend(message_id: str, ctx: Writer, session: SessionDep, csrf: Annotated[Text, Form()] = ""):
    check_csrf(ctx, csrf)
    resend_message(session, message_id[:64], ctx.principal, caller_scope(ctx.principal))
    return RedirectResponse("/outbox?done=resend&resent=1", status_code=303)
