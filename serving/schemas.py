"""What the API reads and answers, as pydantic models, in families named after the resource:
``XCreate`` is a request body, ``XPublic`` one object in an answer, ``XsPublic`` a page of them.

Officers never learn which of their leads were drawn for exploration: neither the flag, nor the
entry probability, nor the model's rank and score are in what they get (``LeadPublic`` leaves
rank and score empty for them).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator

from serving.scoring import REASON_SEPARATOR
from serving.settings import bureau_today

MAX_BATCH = 10_000


def clean_text(value: str) -> str:
    """Refuse what no database stores as text: NUL (PostgreSQL cannot hold it) and lone surrogates (not UTF-8)."""
    if "\x00" in value:
        raise ValueError("不能包含空字符 (must not contain a NUL byte)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("不是有效的文本 (not valid UTF-8 text)") from None
    return value


Text = Annotated[str, AfterValidator(clean_text)]  # every text a request carries: 422 at the edge, never a 500

LeadStatus = Literal["new", "assigned", "in_progress", "closed"]
Outcome = Literal["violation", "no_violation", "unreachable"]
ViolationType = Literal[
    "unpermitted_abstraction", "private_well", "meter_tampering", "over_permit", "expired_permit", "tax_underreport"
]
OutboxStatus = Literal["queued", "sent", "failed"]
CaseStatus = Literal["open", "in_progress", "closed", "dismissed"]
CaseKind = Literal["expired_permit_in_use", "unpermitted_use", "quota_red", "tax_verification", "source_prevention"]
UsccText = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$")]


def split_reasons(text: str | None) -> list[str]:
    """The reasons a run wrote as one text (``serving.scoring`` joins them), as a list."""
    return [r for r in (text or "").split(REASON_SEPARATOR) if r.strip()]


class Page(BaseModel):
    total: int
    page: int
    page_size: int


class ErrorPublic(BaseModel):
    detail: Any = Field(description="what went wrong, in words")


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    run_id: str | None
    model_version: str | None


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds")
    role: str


# -- the model and scores ----------------------------------------------------------------------------


class ModelPublic(BaseModel):
    version: str | None = Field(description="registered model version that scored the live run")
    trained_at: str | None
    as_of: str | None
    run_id: str | None
    published_at: datetime | None
    backtest: dict[str, Any] = Field(description="temporal backtest metrics of the model")
    loaded_at: datetime
    champion_loaded: bool = Field(description="the champion model itself is loaded (POST /scores/predict works)")
    champion_version: str | None = None
    champion_features: list[str] = Field(default_factory=list, description="inputs POST /scores/predict reads")
    champion_error: str | None = None


class ProfileSummary(BaseModel):
    months: int = Field(description="months of profile data")
    last_month: str | None
    supply_m3_12m: float | None = Field(description="public supply over the last 12 months, m³")
    abstraction_m3_12m: float | None
    discharge_m3_12m: float | None

    @classmethod
    def of(cls, series: dict | None) -> "ProfileSummary | None":
        if not series or not series.get("month"):
            return None

        def last12(key: str) -> float | None:
            vals = [v for v in (series.get(key) or [])[-12:] if v is not None]
            return round(float(sum(vals)), 1) if vals else None

        return cls(months=len(series["month"]), last_month=series["month"][-1], supply_m3_12m=last12("supply_m3"),
                   abstraction_m3_12m=last12("abstraction_m3"), discharge_m3_12m=last12("discharge_m3"))


class ReasonCode(BaseModel):
    """One reason in machine-readable form, in the order of ``reasons``."""

    code: str = Field(description="stable snake_case identifier (see docs/)")
    value: float | str | None = Field(None, description="the number the sentence quotes")
    unit: str | None = None
    text_zh: str | None = None
    text_en: str | None = None
    role: str | None = Field(None, description="evidence (supports the rank), caveat (argues against hidden water; "
                                               "never alone), context (an ordinary entity's records) or information "
                                               "(a documented breach); None in runs before roles")


def reason_codes(stored: list | None) -> list[ReasonCode]:
    """The stored codes that read as reason codes (runs before them have none)."""
    out = []
    for item in stored or []:
        try:
            out.append(ReasonCode.model_validate(item))
        except ValueError:
            continue
    return out


class ScorePublic(BaseModel):
    uscc: str
    name: str | None
    district: str | None
    industry_code: str | None
    run_id: str
    rank: int = Field(description="1 = highest risk in the city")
    risk_score: float = Field(ge=0, le=1)
    reasons: list[str]
    reason_codes: list[ReasonCode] = Field(default_factory=list, description="the reasons with their codes and values")
    profile: ProfileSummary | None


class ScoresBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usccs: list[UsccText] = Field(min_length=1, max_length=MAX_BATCH,
                                  description=f"at most {MAX_BATCH:,} codes per call")


class BatchScore(BaseModel):
    uscc: str
    rank: int
    risk_score: float
    run_id: str | None = Field(None, description="the live run of the entity's city that scored it")


class ScoresBatchPublic(BaseModel):
    run_id: str = Field(description="the live run of the caller's city (of every city: the run published last)")
    scores: list[BatchScore]
    missing: list[str] = Field(description="codes with no score in the live run")


class PredictRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Text = Field(min_length=1, max_length=64, description="the caller's key for the row")
    features: dict[
        Annotated[Text, Field(max_length=64)],
        Annotated[float, Strict(), Field(allow_inf_nan=False)] | Annotated[Text, Field(max_length=64)] | None,
    ] = Field(max_length=500, description="the champion's feature name (GET /model) -> value: a number (true/false "
                                          "is not one), text only for text features such as industry_code; null or "
                                          "left out = unknown; a name the champion does not use is a 422")


class PredictCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[PredictRow] = Field(min_length=1, max_length=MAX_BATCH, description=f"at most {MAX_BATCH:,} rows")


class PredictScore(BaseModel):
    id: str
    risk_score: float


class PredictPublic(BaseModel):
    model_version: str
    scores: list[PredictScore]


# -- leads, entities, verdicts -------------------------------------------------------------------------


class LeadPublic(BaseModel):
    id: int
    uscc: str
    name: str | None
    district: str | None
    city: str | None = Field(None, description="the city of a province's store (none: a city run)")
    industry_code: str | None
    status: LeadStatus
    assigned_officer: str | None
    queue_position: int | None = Field(description="place in the district's queue (1 = first)")
    rank: int | None = Field(None, description="city-wide risk rank; not shown to officers")
    risk_score: float | None = Field(None, description="not shown to officers")
    reasons: list[str]
    reason_codes: list[ReasonCode] = Field(default_factory=list, description="the reasons with their codes and values")
    run_id: str | None
    updated_at: datetime | None
    previous_lead_id: int | None = Field(None, description="the closed lead of the same entity this one follows")

    @classmethod
    def of(cls, lead, officer_view: bool) -> "LeadPublic":
        return cls(
            id=lead.id, uscc=lead.uscc, name=lead.name, district=lead.district, city=lead.city,
            industry_code=lead.industry_code,
            status=lead.status, assigned_officer=lead.assigned_officer, queue_position=lead.queue_position,
            rank=None if officer_view else lead.rank, risk_score=None if officer_view else lead.risk_score,
            reasons=split_reasons(lead.reasons), reason_codes=reason_codes(lead.reason_codes), run_id=lead.run_id,
            updated_at=lead.updated_at, previous_lead_id=lead.previous_lead_id,
        )


class LeadsPublic(Page):
    items: list[LeadPublic]


class PermitPublic(BaseModel):
    permit_id: str
    source: str | None
    purpose: str | None
    annual_quota_m3: float | None
    valid_from: date | None
    valid_to: date | None
    status: str | None


class AccountPublic(BaseModel):
    source: str
    account_id: str
    account_name: str | None
    method: str | None
    confidence: float | None
    status: str | None


class EntityPublic(BaseModel):
    uscc: str
    name: str | None
    district: str | None
    industry_code: str | None
    address: str | None
    registered_on: date | None
    deregistered_on: date | None
    employees: int | None
    permits: list[PermitPublic]
    accounts: list[AccountPublic]


class MonthlySeries(BaseModel):
    month: list[str] = Field(description="YYYY-MM")
    supply_m3: list[float | None] = []
    abstraction_m3: list[float | None] = []
    discharge_m3: list[float | None] = []
    tax_declared_m3: list[float | None] = Field([], description="declared volume of the latest ended tax quarter")
    shift_since: str | None = Field(None, description="YYYY-MM: the strongest significant level shift began then")

    @classmethod
    def of(cls, series: dict | None) -> "MonthlySeries | None":
        if not series:
            return None
        return cls(**{k: v for k, v in series.items() if k in cls.model_fields})


class AlertPublic(BaseModel):
    alert_id: str
    kind: str
    level: str | None
    uscc: str | None
    name: str | None
    permit_id: str | None
    district: str | None
    city: str | None = Field(None, description="the city of a province's store (none: a city run)")
    period: str | None
    value: float | None
    threshold: float | None
    unit: str | None
    message: str | None
    audience: str | None


class AlertsPublic(Page):
    items: list[AlertPublic]


class VerdictCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    violation_type: ViolationType | None = Field(None, description="required when the outcome is a violation")
    note: Text | None = Field(None, max_length=2000)
    visited_on: date | None = Field(None, description="default: today (Beijing time)")

    @model_validator(mode="after")
    def _consistent(self) -> "VerdictCreate":
        if self.outcome == "violation" and self.violation_type is None:
            raise ValueError("违法结论必须填写违法类型 (violation_type is required when outcome is violation)")
        if self.outcome != "violation" and self.violation_type is not None:
            raise ValueError("只有违法结论才能填写违法类型 (violation_type only goes with outcome violation)")
        if self.visited_on is not None and not (date(2000, 1, 1) <= self.visited_on <= bureau_today()):
            raise ValueError("核查日期不能晚于今天 (visited_on must be a past date, not in the future)")
        return self


class VerdictAmend(VerdictCreate):
    reason: Text = Field(min_length=2, max_length=500, description="why the verdict is corrected (audited)")


class ReopenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=2, max_length=500, description="why the lead goes back to the field (audited)")


class VerdictPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    lead_id: int
    uscc: str
    officer: str
    outcome: str
    violation_type: str | None
    note: str | None
    visited_on: date
    recorded_at: datetime
    round: int = Field(description="the lead's round this verdict closed (a reopen starts a new round)")
    superseded: bool = Field(description="the lead was reopened after it: no longer the lead's verdict nor a label")
    amended_at: datetime | None = None


class LeadDetailPublic(LeadPublic):
    entity: EntityPublic | None
    series: MonthlySeries | None
    alerts: list[AlertPublic]
    verdicts: list[VerdictPublic]
    history: list[dict[str, Any]] | None = Field(None, description="queue history; not shown to officers")


class AssignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    officer: Text = Field(min_length=1, max_length=64, description="username of an officer")


# -- outbox and water rights ---------------------------------------------------------------------------


class OutboxPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    message_id: str
    alert_id: str | None
    uscc: str | None
    recipient: str | None
    text: str | None
    segments: list[str] = Field(description="the message as SMS segments of at most 70 characters")
    segment_count: int
    status: OutboxStatus
    sent_at: datetime | None
    error: str | None


class OutboxPagePublic(Page):
    items: list[OutboxPublic]


class FailedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: Text = Field(min_length=1, max_length=1000, description="gateway error message")


class WaterRightPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seller_uscc: str | None
    buyer_uscc: str | None
    source: str | None
    district: str | None
    surplus_m3: float | None
    shortfall_m3: float | None
    volume_m3: float | None


class WaterRightsPublic(Page):
    items: list[WaterRightPublic]


# -- cases ---------------------------------------------------------------------------------------------------


class CasePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    case_id: str
    kind: str
    uscc: str | None
    name: str | None
    district: str | None
    city: str | None = Field(None, description="the city of a province's store (none: a city run)")
    permit_id: str | None
    project_id: str | None
    period: str | None = Field(description="'YYYY', 'YYYY-Qn' or 'YYYY-MM'")
    evidence: dict[str, Any] = Field(description="the numbers behind the case")
    evidence_text: str | None = Field(description="the evidence as a Chinese sentence")
    evidence_text_en: str | None
    action: str = Field(description="notice | sms | tax_quantity_correction | enforcement_file | procedure_guidance")
    volume_at_stake_m3: float | None
    tax_at_stake_yuan: float | None
    verified_m3: float | None = Field(description="tax_verification: the verified quantity for the tax department")
    alert_ids: list[str]
    status: CaseStatus
    assignee: str | None
    opened_as_of: date | None
    run_id: str | None = Field(description="the last run that raised the case")
    updated_at: datetime


class CasesPublic(Page):
    items: list[CasePublic]


class CaseStatusCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: CaseStatus
    note: Text | None = Field(None, max_length=1000,
                              description="what was done (audited); a dismissal must give its reason here")


class CaseAssigneeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: Text | None = Field(min_length=1, max_length=64,
                                  description="username of whoever is to work the case; null: nobody holds it")
    note: Text | None = Field(None, max_length=1000, description="why (audited)")


# documented error answers of the routes (the detail is a sentence, Chinese first)
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorPublic}, 403: {"model": ErrorPublic},
                                           404: {"model": ErrorPublic}}
CONFLICT: dict[int | str, dict[str, Any]] = {**ERRORS, 409: {"model": ErrorPublic}}
