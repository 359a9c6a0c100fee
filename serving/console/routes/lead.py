"""The lead page: the entity's facts, chart, reasons, alerts and past verdicts; the forms to take or
assign the lead and to record a verdict (the same service functions the API calls)."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import ValidationError

from serving import roles
from serving.console.charts import QUOTA_COLOUR, SERIES_COLOURS, monthly_chart_pair, monthly_quota
from serving.console.lists import is_number
from serving.console.render import PageContext, PageDep, check_csrf, display_zone, page_for, page_router, render
from serving.deps import SessionDep
from serving.errors import Invalid, NotFound
from serving.evidence import EvidenceSettings, add_evidence, evidence_file, lead_evidence
from serving.evidence_settings import UPLOAD_BODY_LIMIT
from serving.history import inspection_history
from serving.console.reasons import lead_reasons
from serving.i18n import t
from serving.industries import industry_name
from serving.schemas import AssignCreate, ReopenCreate, Text, VerdictAmend, VerdictCreate
from serving.services import leads as service
from serving.services import verdicts
from serving.settings import bureau_today
from serving.store import OUTCOMES, VIOLATION_TYPES

MAX_ID = 2**31 - 1

router = page_router()
WorkerPage = Annotated[PageContext, page_for(*roles.LEAD_WORK)]
SupervisorPage = Annotated[PageContext, page_for(*roles.SUPERVISE)]


def lead_id_of(text: str | int) -> int:
    """A lead (or evidence) id from the path; anything else is a 404 page, not a validation error in JSON nor a
    500 from the database (an id beyond its integer column)."""
    value = str(text)
    if not is_number(value) or not 1 <= int(value) <= MAX_ID:
        raise NotFound()
    return int(value)


def lead_chart(series: dict, permits, lang: str, accounts=()) -> dict | None:
    """The monthly chart of a lead's series with its quota line and shift marker, and its legend; None without
    data. A series is drawn, and listed, only where the entity has its record: metered abstraction with a permit
    in the register (the meters are the permits'), supply and discharge with an account of that source; or where
    it holds a non-zero value. Profiles store 0 where there is no record: a flat 0 line would claim a measurement."""
    months = list(series.get("month") or [])
    if not months:
        return None
    sources = {"abstraction_m3"} if permits else set()
    sources |= {f"{a.source}_m3" for a in accounts}
    lines = []
    for key, colour in SERIES_COLOURS.items():
        values = (list(series.get(key) or []) + [None] * len(months))[:len(months)]
        if (key in sources or any(values)) and any(v is not None for v in values):  # a line to draw
            lines.append((key.removesuffix("_m3"), t(f"chart.{key.removesuffix('_m3')}", lang), values, colour))
    quota = monthly_quota(months, permits)
    legend = [(label, colour, "") for _, label, _, colour in lines]
    if any(v is not None for v in quota):
        legend.append((t("chart.quota", lang), QUOTA_COLOUR, "dashed"))
    if not legend:
        return None
    svg = monthly_chart_pair(
        months, lines, quota, series.get("shift_since"),
        {"unit": t("chart.unit", lang), "quota": t("chart.quota", lang), "since": t("chart.since", lang),
         "title": t("lead.chart", lang)})
    return {"svg": svg, "legend": legend}


def lead_page(ctx: PageContext, session, lead_id: int, status_code: int = 200, form_error: str | None = None,
              form_values: dict | None = None, assigned: bool = False,
              correction_error: str | None = None) -> HTMLResponse:
    p = ctx.principal
    lead = service.load_lead(session, lead_id, p)
    facts = service.lead_facts(session, lead, ctx.request.app.state.model.info.live_runs)
    officers = [] if p.is_officer else service.district_officers(session, lead)
    may_record = (p.role in roles.LEAD_WORK and lead.status != "closed"
                  and not (p.is_officer and lead.assigned_officer not in (None, p.username)))
    may_assign = p.role in roles.LEAD_WORK and lead.status != "closed" and (
        not p.is_officer or lead.assigned_officer is None)
    may_start = (p.role in roles.LEAD_WORK and lead.status == "assigned"
                 and not (p.is_officer and lead.assigned_officer != p.username))
    may_attach = p.role in roles.LEAD_WORK and not (p.is_officer and lead.assigned_officer not in (None, p.username))
    code = (facts.entity.industry_code if facts.entity else None) or lead.industry_code
    today = bureau_today(display_zone(ctx.request))
    current = next((v for v in reversed(facts.verdicts)
                    if v.round == lead.round and not v.superseded and v.outcome != "unreachable"), None)
    return render(
        ctx, "lead.html", status_code=status_code, lead=lead, entity=facts.entity, permits=facts.permits,
        industry=industry_name(code, ctx.lang), industry_code=code, history=inspection_history(session, lead),
        evidence=lead_evidence(session, lead.id), may_start=may_start, may_attach=may_attach,
        evidence_max_mb=evidence_settings(ctx.request).max_bytes // (1024 * 1024),
        flash=ctx.request.query_params.get("done"), correction_error=correction_error,
        may_correct=p.role in roles.SUPERVISE and lead.status == "closed", current_verdict=current,
        accounts=facts.accounts, chart=lead_chart(facts.series, facts.permits, ctx.lang, facts.accounts),
        since=facts.series.get("shift_since") if facts.series.get("month") else None,
        reasons=lead_reasons(lead, ctx.lang), alerts=facts.alerts, verdicts=facts.verdicts[::-1],
        may_record=may_record, may_assign=may_assign, officers=officers, assigned=assigned, outcomes=OUTCOMES,
        violation_types=VIOLATION_TYPES, form_error=form_error, form=form_values or {},
        today=today.isoformat(), today_date=today, show_score=not p.is_officer,
    )


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
def lead(request: Request, lead_id: str, ctx: PageDep, session: SessionDep):
    return lead_page(ctx, session, lead_id_of(lead_id), assigned=request.query_params.get("assigned") == "1")


@router.post("/leads/{lead_id}/assign", response_class=HTMLResponse)
def assign(lead_id: str, ctx: WorkerPage, session: SessionDep, csrf: Annotated[Text, Form()] = "",
           officer: Annotated[Text, Form()] = ""):
    check_csrf(ctx, csrf)
    lid = lead_id_of(lead_id)
    officer = ctx.principal.username if ctx.principal.is_officer else officer.strip()
    try:
        body = AssignCreate(officer=officer)
    except ValidationError:
        raise Invalid(t("lead.assign_choose", ctx.lang)) from None
    service.assign_lead(session, lid, body.officer, ctx.principal)
    return RedirectResponse(f"/leads/{lid}?assigned=1", status_code=303)


@router.post("/leads/{lead_id}/verdict", response_class=HTMLResponse)
def verdict(lead_id: str, ctx: WorkerPage, session: SessionDep, csrf: Annotated[Text, Form()] = "",
            outcome: Annotated[Text, Form()] = "", violation_type: Annotated[Text, Form()] = "",
            note: Annotated[Text, Form()] = "", visited_on: Annotated[Text, Form()] = ""):
    check_csrf(ctx, csrf)
    lid = lead_id_of(lead_id)
    values = {"outcome": outcome or None, "violation_type": (violation_type or None) if outcome == "violation" else None,
              "note": note.strip() or None, "visited_on": visited_on or None}
    try:
        body = VerdictCreate(**values)
    except ValidationError as exc:
        return lead_page(ctx, session, lid, status_code=422, form_values=values,
                         form_error=verdict_error(exc, ctx.lang))
    verdicts.record_verdict(session, lid, body, ctx.principal)
    kept = "&unreachable=1" if body.outcome == "unreachable" else ""  # the lead stays in the queue
    return RedirectResponse(f"/queue?recorded={lid}{kept}", status_code=303)


@router.post("/leads/{lead_id}/amend", response_class=HTMLResponse)
def amend(lead_id: str, ctx: SupervisorPage, session: SessionDep, csrf: Annotated[Text, Form()] = "",
          outcome: Annotated[Text, Form()] = "", violation_type: Annotated[Text, Form()] = "",
          note: Annotated[Text, Form()] = "", visited_on: Annotated[Text, Form()] = "",
          reason: Annotated[Text, Form()] = ""):
    """A supervisor corrects a recorded verdict, with the reason (the service audits before and after)."""
    check_csrf(ctx, csrf)
    lid = lead_id_of(lead_id)
    try:
        body = VerdictAmend(outcome=outcome or None, violation_type=(violation_type or None) if outcome == "violation"
                            else None, note=note.strip() or None, visited_on=visited_on or None, reason=reason.strip())
    except ValidationError as exc:
        return lead_page(ctx, session, lid, status_code=422, correction_error=verdict_error(exc, ctx.lang))
    verdicts.amend_verdict(session, lid, body, ctx.principal)
    return RedirectResponse(f"/leads/{lid}?done=amended#history", status_code=303)


@router.post("/leads/{lead_id}/reopen", response_class=HTMLResponse)
def reopen(lead_id: str, ctx: SupervisorPage, session: SessionDep, csrf: Annotated[Text, Form()] = "",
           reason: Annotated[Text, Form()] = ""):
    """A supervisor sends a closed lead back to the field (its verdict is kept, superseded)."""
    check_csrf(ctx, csrf)
    lid = lead_id_of(lead_id)
    try:
        body = ReopenCreate(reason=reason.strip())
    except ValidationError as exc:
        return lead_page(ctx, session, lid, status_code=422, correction_error=verdict_error(exc, ctx.lang))
    verdicts.reopen_lead(session, lid, body.reason, ctx.principal)
    return RedirectResponse(f"/leads/{lid}?done=reopened", status_code=303)


def evidence_settings(request: Request) -> EvidenceSettings:
    return getattr(request.app.state.settings, "evidence", None) or EvidenceSettings()


@router.post("/leads/{lead_id}/start", response_class=HTMLResponse)
def start(lead_id: str, ctx: WorkerPage, session: SessionDep, csrf: Annotated[Text, Form()] = ""):
    """The officer sets out: the lead is in progress (the same service the API's POST .../start calls)."""
    check_csrf(ctx, csrf)
    lid = lead_id_of(lead_id)
    service.start_lead(session, lid, ctx.principal)
    return RedirectResponse(f"/leads/{lid}?done=started#verdict", status_code=303)


@router.post("/leads/{lead_id}/evidence", response_class=HTMLResponse, max_body_size=UPLOAD_BODY_LIMIT)
async def upload_evidence(lead_id: str, request: Request, ctx: WorkerPage, session: SessionDep,
                          file: Annotated[UploadFile | None, File()] = None, csrf: Annotated[Text, Form()] = "",
                          note: Annotated[Text, Form()] = ""):
    check_csrf(ctx, csrf)
    lid = lead_id_of(lead_id)
    limits = evidence_settings(request)
    data = await file.read(limits.max_bytes + 1) if file is not None else b""
    from fastapi.concurrency import run_in_threadpool

    await run_in_threadpool(add_evidence, session, request.app.state.settings.home, lid, ctx.principal,
                            file.filename if file is not None else None, data, note, limits)
    return RedirectResponse(f"/leads/{lid}?done=evidence#evidence", status_code=303)


@router.get("/leads/{lead_id}/evidence/{evidence_id}")
def evidence_download(lead_id: str, evidence_id: str, request: Request, ctx: PageDep, session: SessionDep):
    """One attached file, to whoever may see the lead; photos inline, PDFs as a download."""
    path, row = evidence_file(session, request.app.state.settings.home, lead_id_of(lead_id), lead_id_of(evidence_id),
                              ctx.principal)
    inline = row.kind == "photo"
    return FileResponse(path, media_type=row.content_type, filename=row.filename,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"Cache-Control": "private, max-age=3600"})


def verdict_error(exc: ValidationError, lang: str) -> str:
    """One line a person can act on, from the request model's validation errors."""
    messages = []
    for err in exc.errors():
        msg = str(err.get("msg", ""))
        if "violation_type is required" in msg:
            messages.append(t("lead.need_type", lang))
        elif "only goes with" in msg:
            messages.append(t("lead.type_only_violation", lang))
        elif "future" in msg:
            messages.append(t("lead.future_date", lang))
        else:
            field = ".".join(str(x) for x in err.get("loc", ()))
            messages.append(f"{t('lead.' + field, lang) if field else ''} {msg}".strip())
    return t("lead.invalid", lang, msg="；".join(messages))
