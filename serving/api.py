"""The WaterWatch service: scores for other systems, lead queues and verdicts for officers, under ``/api/v1``.

``create_app(settings)`` is the one factory. The console (HTML pages) is mounted later by passing
its routers in ``routers``; its templates live in ``TEMPLATES_DIR``. Officers never learn which of
their leads were drawn for exploration: neither the flag, nor the entry probability, nor the model's
rank and score are shown to them, and their queue is ordered by the shuffled ``queue_position``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from serving import auth
from serving.publish import current_run
from serving.store import (
    Account,
    Alert,
    Assignment,
    Entity,
    Lead,
    OutboxMessage,
    Permit,
    Score,
    Series,
    User,
    Verdict,
    WaterRight,
    open_store,
    utcnow,
)

API_PREFIX = "/api/v1"
TEMPLATES_DIR = FsPath(__file__).resolve().parent / "templates"
MAX_BATCH = 10_000
REASON_SEPARATOR = "；"
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; refuse it at the edge (422), not in the database (500)

ALL_ROLES = ("officer", "supervisor", "analyst", "admin")
SCORE_ROLES = ("supervisor", "analyst", "admin")
QUEUE_ROLES = ("officer", "supervisor", "analyst", "admin")
ASSIGN_ROLES = ("officer", "supervisor", "admin")
VERDICT_ROLES = ("officer", "supervisor", "admin")
OUTBOX_ROLES = ("supervisor", "analyst", "admin")
ADMIN_ROLES = ("admin",)

LeadStatus = Literal["new", "assigned", "in_progress", "closed"]
Outcome = Literal["violation", "no_violation", "unreachable"]
ViolationType = Literal[
    "unpermitted_abstraction", "private_well", "meter_tampering", "over_permit", "expired_permit", "tax_underreport"
]
OutboxStatus = Literal["queued", "sent", "failed"]
Uscc = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$", description="统一社会信用代码")]
LeadId = Annotated[int, Path(ge=1, le=2**31 - 1, description="lead id")]
MessageId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")]
PageNo = Annotated[int, Query(ge=1, le=100_000, description="page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=500, description="rows per page")]
Filter = Annotated[str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)]


# -- model info, swapped atomically on reload ---------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """What the service serves: the live run and the model that scored it (immutable; replaced whole)."""

    run_id: str | None = None
    version: str | None = None
    trained_at: str | None = None
    as_of: str | None = None
    published_at: datetime | None = None
    backtest: dict[str, Any] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=utcnow)
    champion: Any = field(default=None, repr=False, compare=False)  # the joblib bundle, when it can be loaded
    champion_error: str | None = None


def _load_champion(artifact: str | None) -> tuple[Any, str | None]:
    """The champion's joblib bundle named by the run (no MLflow server needed); the reason when it cannot load."""
    if not artifact:
        return None, "the published run names no model artifact"
    from training.artifacts import load_bundle

    try:
        return load_bundle(artifact), None
    except Exception as exc:  # a missing or unreadable file degrades /scores/predict, never the service
        return None, f"{type(exc).__name__}: {exc}"


class ModelHolder:
    """Holds the current ``ModelInfo``; a reload builds the new one aside and swaps the reference, so
    requests in flight keep the one they started with and none waits."""

    def __init__(self, sessions: sessionmaker):
        self._sessions = sessions
        self._lock = threading.Lock()
        self.info = ModelInfo()

    def reload(self) -> ModelInfo:
        with self._sessions() as session:
            run = current_run(session)
            if run is None:
                new = ModelInfo()
            else:
                meta = run.model_info or {}
                backtest = meta.get("backtest") or meta.get("metrics") or {}
                champion, error = _load_champion(meta.get("artifact"))
                new = ModelInfo(
                    run_id=run.run_id, version=None if run.model_version is None else str(run.model_version),
                    trained_at=meta.get("trained_at"), as_of=None if run.as_of is None else run.as_of.isoformat(),
                    published_at=run.published_at, backtest=backtest if isinstance(backtest, dict) else {},
                    champion=champion, champion_error=error,
                )
        with self._lock:
            self.info = new
        return new


# -- response and request models ----------------------------------------------------------------


class ErrorOut(BaseModel):
    detail: Any = Field(description="what went wrong, in words")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    run_id: str | None
    model_version: str | None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds")
    role: str


class ModelOut(BaseModel):
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


class ScoreOut(BaseModel):
    uscc: str
    name: str | None
    district: str | None
    industry_code: str | None
    run_id: str
    rank: int = Field(description="1 = highest risk in the city")
    risk_score: float = Field(ge=0, le=1)
    reasons: list[str]
    profile: ProfileSummary | None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usccs: list[Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$")]] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"at most {MAX_BATCH:,} codes per call"
    )


class BatchScore(BaseModel):
    uscc: str
    rank: int
    risk_score: float


class BatchOut(BaseModel):
    run_id: str
    scores: list[BatchScore]
    missing: list[str] = Field(description="codes with no score in the live run")


class PredictRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=NO_NUL, description="the caller's key for the row")
    features: dict[
        Annotated[str, Field(max_length=64)],
        Annotated[float, Field(allow_inf_nan=False)] | Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None,
    ] = Field(max_length=500, description="snapshot feature name -> value (numbers; text only for text features such "
                                          "as industry_code); null or left out = unknown")


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[PredictRow] = Field(min_length=1, max_length=MAX_BATCH, description=f"at most {MAX_BATCH:,} rows")


class PredictScore(BaseModel):
    id: str
    risk_score: float


class PredictOut(BaseModel):
    model_version: str
    scores: list[PredictScore]


class LeadOut(BaseModel):
    id: int
    uscc: str
    name: str | None
    district: str | None
    industry_code: str | None
    status: LeadStatus
    assigned_officer: str | None
    queue_position: int | None = Field(description="place in the district's queue (1 = first)")
    rank: int | None = Field(None, description="city-wide risk rank; not shown to officers")
    risk_score: float | None = Field(None, description="not shown to officers")
    reasons: list[str]
    run_id: str | None
    updated_at: datetime | None


class LeadPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[LeadOut]


class PermitOut(BaseModel):
    permit_id: str
    source: str | None
    purpose: str | None
    annual_quota_m3: float | None
    valid_from: date | None
    valid_to: date | None
    status: str | None


class AccountOut(BaseModel):
    source: str
    account_id: str
    account_name: str | None
    method: str | None
    confidence: float | None
    status: str | None


class EntityOut(BaseModel):
    uscc: str
    name: str | None
    district: str | None
    industry_code: str | None
    address: str | None
    registered_on: date | None
    deregistered_on: date | None
    employees: int | None
    permits: list[PermitOut]
    accounts: list[AccountOut]


class MonthlySeries(BaseModel):
    month: list[str] = Field(description="YYYY-MM")
    supply_m3: list[float | None] = []
    abstraction_m3: list[float | None] = []
    discharge_m3: list[float | None] = []
    tax_declared_m3: list[float | None] = Field([], description="declared volume of the latest ended tax quarter")


class AlertOut(BaseModel):
    alert_id: str
    kind: str
    level: str | None
    uscc: str | None
    name: str | None
    permit_id: str | None
    district: str | None
    period: str | None
    value: float | None
    threshold: float | None
    unit: str | None
    message: str | None
    audience: str | None


class AlertPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[AlertOut]


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    violation_type: ViolationType | None = Field(None, description="required when the outcome is a violation")
    note: str | None = Field(None, max_length=2000, pattern=NO_NUL)
    visited_on: date | None = Field(None, description="default: today")

    @model_validator(mode="after")
    def _consistent(self) -> "VerdictIn":
        if self.outcome == "violation" and self.violation_type is None:
            raise ValueError("违法结论必须填写违法类型 (violation_type is required when outcome is violation)")
        if self.outcome != "violation" and self.violation_type is not None:
            raise ValueError("只有违法结论才能填写违法类型 (violation_type only goes with outcome violation)")
        if self.visited_on is not None and not (date(2000, 1, 1) <= self.visited_on <= date.today()):
            raise ValueError("核查日期不能晚于今天 (visited_on must be a past date, not in the future)")
        return self


class VerdictOut(BaseModel):
    id: int
    lead_id: int
    uscc: str
    officer: str
    outcome: str
    violation_type: str | None
    note: str | None
    visited_on: date
    recorded_at: datetime


class LeadDetail(LeadOut):
    entity: EntityOut | None
    series: MonthlySeries | None
    alerts: list[AlertOut]
    verdicts: list[VerdictOut]
    history: list[dict[str, Any]] | None = Field(None, description="queue history; not shown to officers")


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    officer: str = Field(min_length=1, max_length=64, pattern=NO_NUL, description="username of an officer")


class OutboxOut(BaseModel):
    message_id: str
    alert_id: str | None
    uscc: str | None
    recipient: str | None
    text: str | None
    segments: int | None
    status: OutboxStatus
    sent_at: datetime | None
    error: str | None


class OutboxPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[OutboxOut]


class FailedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: str = Field(min_length=1, max_length=1000, pattern=NO_NUL, description="gateway error message")


class WaterRightOut(BaseModel):
    seller_uscc: str | None
    buyer_uscc: str | None
    source: str | None
    district: str | None
    surplus_m3: float | None
    shortfall_m3: float | None
    volume_m3: float | None


class WaterRightPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[WaterRightOut]


# -- dependencies ---------------------------------------------------------------------------------

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="key of another system")


# Light dependencies are async so that a request makes one hop to the thread pool (its endpoint), not five.


async def get_session(request: Request) -> AsyncIterator[Session]:
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
API_KEY_CACHE_SECONDS = 60.0


class _KeyCache:
    """Recently seen API keys (by hash): systems call many times a second; a revoked key stops within a minute."""

    def __init__(self, ttl: float = API_KEY_CACHE_SECONDS, size: int = 1024):
        self.ttl, self.size, self._items = ttl, size, {}

    def get(self, digest: str) -> auth.Principal | None:
        hit = self._items.get(digest)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def put(self, digest: str, principal: auth.Principal) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[digest] = (principal, time.monotonic() + self.ttl)


def _lookup_key(sessions: sessionmaker, key: str) -> auth.Principal:
    with sessions() as session:
        return auth.principal_from_api_key(session, key)


async def get_principal(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> auth.Principal:
    try:
        if api_key:
            cache: _KeyCache = request.app.state.key_cache
            digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
            principal = cache.get(digest)
            if principal is None:
                principal = await run_in_threadpool(_lookup_key, request.app.state.sessions, api_key)
                cache.put(digest, principal)
            return principal
        if token:
            return auth.principal_from_token(token, request.app.state.settings.secret_key)
    except auth.AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "需要登录 (not authenticated: send a bearer token or X-API-Key)",
                        headers={"WWW-Authenticate": "Bearer"})


def require(*roles: str):
    async def _check(principal: Annotated[auth.Principal, Depends(get_principal)]) -> auth.Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"角色 {principal.role} 无权执行此操作 (role {principal.role} may not do this)")
        return principal

    return _check


async def get_model(request: Request) -> ModelInfo:
    return request.app.state.model.info


ModelDep = Annotated[ModelInfo, Depends(get_model)]


def _reasons(text_: str | None) -> list[str]:
    return [r for r in (text_ or "").split(REASON_SEPARATOR) if r]


def _page(query, session: Session, page: int, page_size: int, order_by) -> tuple[int, list]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.order_by(*order_by).offset((page - 1) * page_size).limit(page_size)).all()
    return total, rows


def _lead_out(lead: Lead, principal: auth.Principal) -> LeadOut:
    hide = principal.is_officer
    return LeadOut(
        id=lead.id, uscc=lead.uscc, name=lead.name, district=lead.district, industry_code=lead.industry_code,
        status=lead.status, assigned_officer=lead.assigned_officer, queue_position=lead.queue_position,
        rank=None if hide else lead.rank, risk_score=None if hide else lead.risk_score,
        reasons=_reasons(lead.reasons), run_id=lead.run_id, updated_at=lead.updated_at,
    )


def _officer_district(principal: auth.Principal, district: str | None) -> str | None:
    """Officers see their own district only: asking for another is refused, not silently narrowed."""
    if not principal.is_officer:
        return district
    if district is not None and district != principal.district:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"只能查看本辖区（{principal.district}）的数据 "
                                                       f"(officers see only their own district)")
    return principal.district


def _load_lead(session: Session, lead_id: int, principal: auth.Principal, for_update: bool = False) -> Lead:
    lead = session.get(Lead, lead_id, with_for_update=for_update)
    if lead is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"线索 {lead_id} 不存在 (no lead {lead_id})")
    if principal.is_officer and lead.district != principal.district:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"线索 {lead_id} 不在本辖区 (lead {lead_id} is in another district)")
    return lead


def _lead_order(principal: auth.Principal):
    if principal.is_officer:
        return (Lead.queue_position.is_(None), Lead.queue_position, Lead.id)
    return (Lead.rank.is_(None), Lead.rank, Lead.id)


def _verdict_out(v: Verdict) -> VerdictOut:
    return VerdictOut(id=v.id, lead_id=v.lead_id, uscc=v.uscc, officer=v.officer, outcome=v.outcome,
                      violation_type=v.violation_type, note=v.note, visited_on=v.visited_on, recorded_at=v.recorded_at)


def _alert_out(a: Alert) -> AlertOut:
    return AlertOut.model_validate(a, from_attributes=True)


def _series_out(series: Series | None) -> MonthlySeries | None:
    if series is None or not series.series:
        return None
    return MonthlySeries(**{k: v for k, v in series.series.items() if k in MonthlySeries.model_fields})


def _profile_summary(s: dict | None) -> ProfileSummary | None:
    if not s or not s.get("month"):
        return None

    def last12(key: str) -> float | None:
        vals = [v for v in (s.get(key) or [])[-12:] if v is not None]
        return round(float(sum(vals)), 1) if vals else None

    return ProfileSummary(months=len(s["month"]), last_month=s["month"][-1], supply_m3_12m=last12("supply_m3"),
                          abstraction_m3_12m=last12("abstraction_m3"), discharge_m3_12m=last12("discharge_m3"))


def _model_out(model: ModelInfo) -> ModelOut:
    bundle = model.champion
    return ModelOut(version=model.version, trained_at=model.trained_at, as_of=model.as_of, run_id=model.run_id,
                    published_at=model.published_at, backtest=model.backtest, loaded_at=model.loaded_at,
                    champion_loaded=bundle is not None, champion_version=None if bundle is None else bundle.version,
                    champion_features=[] if bundle is None else list(bundle.features),
                    champion_error=model.champion_error)


def _live_run(model: ModelInfo) -> str:
    if model.run_id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "尚未发布任何运行结果 (no run has been published yet)")
    return model.run_id


ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}}


# -- routes ---------------------------------------------------------------------------------------


# -- the two writes officers make, shared by the API and the console --------------------------------


def assign_lead(session: Session, lead_id: int, body: "AssignIn", principal: auth.Principal) -> Lead:
    """Give a lead to an officer of its district (officers may take leads of their own district)."""
    lead = _load_lead(session, lead_id, principal, for_update=True)
    if principal.is_officer and body.officer != principal.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "执法人员只能把线索分配给自己 (officers may assign only themselves)")
    officer = session.scalar(select(User).where(User.username == body.officer))
    if officer is None or officer.role != "officer" or not officer.active:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{body.officer} 不是有效的执法人员账号 (no active officer {body.officer!r})")
    if officer.district != lead.district:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{body.officer} 不负责 {lead.district} (officer works in {officer.district})")
    if lead.status == "closed":
        raise HTTPException(status.HTTP_409_CONFLICT, f"线索 {lead_id} 已结案 (lead is closed)")
    previous = lead.assigned_officer
    now = utcnow()
    lead.assigned_officer, lead.status, lead.in_queue, lead.updated_at = officer.username, "assigned", True, now
    lead.history = [*(lead.history or []), {"at": now.isoformat(timespec="seconds"), "event": "assigned",
                                            "officer": officer.username, "by": principal.username}]
    session.add(Assignment(lead_id=lead.id, officer=officer.username, assigned_by=principal.username,
                           assigned_at=now))
    auth.audit(session, principal.username, "assign", "lead", lead.id,
               {"officer": officer.username, "previous": previous, "uscc": lead.uscc})
    session.commit()
    return lead


def record_verdict(session: Session, lead_id: int, body: "VerdictIn", principal: auth.Principal) -> Verdict:
    """What the visit found; closes the lead. The verdict becomes a label of the next training."""
    lead = _load_lead(session, lead_id, principal, for_update=True)
    if principal.is_officer and lead.assigned_officer not in (None, principal.username):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"线索已分配给 {lead.assigned_officer} (lead is assigned to another officer)")
    now = utcnow()
    verdict = Verdict(lead_id=lead.id, uscc=lead.uscc, officer=principal.username, outcome=body.outcome,
                      violation_type=body.violation_type, note=body.note,
                      visited_on=body.visited_on or date.today(), queue_probability=lead.queue_probability,
                      recorded_at=now)
    session.add(verdict)
    lead.status, lead.in_queue, lead.updated_at = "closed", False, now
    if lead.assigned_officer is None:
        lead.assigned_officer = principal.username
    lead.history = [*(lead.history or []), {"at": now.isoformat(timespec="seconds"), "event": "verdict",
                                            "outcome": body.outcome, "by": principal.username}]
    session.flush()
    auth.audit(session, principal.username, "verdict", "lead", lead.id,
               {"verdict_id": verdict.id, "uscc": lead.uscc, "outcome": body.outcome,
                "violation_type": body.violation_type, "visited_on": verdict.visited_on.isoformat()})
    session.commit()
    return verdict


def api_router() -> APIRouter:
    r = APIRouter(prefix=API_PREFIX, responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut},
                                                403: {"model": ErrorOut}, 422: {"model": ErrorOut}})

    @r.post("/auth/token", response_model=TokenOut, tags=["auth"], responses={400: {"model": ErrorOut}})
    def login(request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]):
        """OAuth2 password flow: a signed token valid ``token_minutes``."""
        if len(form.username) > 64 or len(form.password) > 256:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "用户名或密码过长 (username or password too long)")
        try:
            principal = auth.authenticate(session, form.username, form.password)
        except auth.AuthError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        settings = request.app.state.settings
        token = auth.issue_token(principal, settings.secret_key, settings.token_minutes)
        return TokenOut(access_token=token, expires_in=settings.token_minutes * 60, role=principal.role)

    @r.get("/model", response_model=ModelOut, tags=["model"])
    def model_info(model: ModelDep, _: Annotated[auth.Principal, Depends(require(*ALL_ROLES))]):
        """The model behind the live run: version, when it was trained, its backtest metrics."""
        return _model_out(model)

    @r.post("/scores/predict", response_model=PredictOut, tags=["scores"],
            responses={**ERRORS, 503: {"model": ErrorOut}})
    def scores_predict(body: PredictIn, model: ModelDep, _: Annotated[auth.Principal, Depends(require(*SCORE_ROLES))]):
        """Risk from the champion model for entity profiles another system computed itself (the snapshot's
        feature columns, see GET /model; a feature left out counts as unknown)."""
        import pandas as pd

        bundle = model.champion
        if bundle is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                f"模型未加载 (no champion model loaded: {model.champion_error})")
        from training.artifacts import TEXT_COLUMNS

        frame = pd.DataFrame([row.features for row in body.rows]).reindex(columns=bundle.features)
        for column in frame.columns:
            if column in TEXT_COLUMNS:
                continue
            wrong = frame[column].map(lambda v: isinstance(v, str))
            if wrong.any():
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                    f"特征 {column} 须为数值 (feature {column!r} must be a number, row "
                                    f"{body.rows[int(wrong.to_numpy().argmax())].id!r})")
        risk = bundle.predict(frame)
        return PredictOut(model_version=bundle.version,
                          scores=[PredictScore(id=row.id, risk_score=float(p)) for row, p in zip(body.rows, risk)])

    @r.post("/scores/batch", response_model=BatchOut, tags=["scores"], responses={413: {"model": ErrorOut}})
    def scores_batch(body: BatchIn, session: SessionDep, model: ModelDep,
                     _: Annotated[auth.Principal, Depends(require(*SCORE_ROLES))]):
        """Scores of up to 10,000 entities in one call (422 above)."""
        run_id = _live_run(model)
        wanted = list(dict.fromkeys(body.usccs))
        found: dict[str, BatchScore] = {}
        for start in range(0, len(wanted), 2000):
            part = wanted[start:start + 2000]
            for row in session.execute(select(Score.uscc, Score.rank, Score.risk_score)
                                       .where(Score.run_id == run_id, Score.uscc.in_(part))):
                found[row.uscc] = BatchScore(uscc=row.uscc, rank=row.rank, risk_score=row.risk_score)
        return BatchOut(run_id=run_id, scores=[found[u] for u in wanted if u in found],
                        missing=[u for u in wanted if u not in found])

    @r.get("/scores/{uscc}", response_model=ScoreOut, tags=["scores"], responses=ERRORS)
    def score(uscc: Uscc, session: SessionDep, model: ModelDep,
              _: Annotated[auth.Principal, Depends(require(*SCORE_ROLES))]):
        """An entity's risk in the live run: score, city-wide rank, reasons, a summary of its profile."""
        run_id = _live_run(model)
        row = session.execute(
            select(Score.rank, Score.risk_score, Score.reasons, Entity.name, Entity.district, Entity.industry_code,
                   Series.series)
            .select_from(Score)
            .outerjoin(Entity, Entity.uscc == Score.uscc)
            .outerjoin(Series, Series.uscc == Score.uscc)
            .where(Score.run_id == run_id, Score.uscc == uscc)
        ).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{uscc} 在当前运行中没有评分 (no score for {uscc})")
        return ScoreOut(uscc=uscc, name=row.name, district=row.district, industry_code=row.industry_code,
                        run_id=run_id, rank=row.rank, risk_score=row.risk_score, reasons=_reasons(row.reasons),
                        profile=_profile_summary(row.series))

    @r.get("/leads", response_model=LeadPage, tags=["leads"], responses=ERRORS)
    def leads(session: SessionDep, model: ModelDep,
              principal: Annotated[auth.Principal, Depends(require(*QUEUE_ROLES))],
              district: Filter = None, status_: Annotated[LeadStatus | None, Query(alias="status")] = None,
              kind: Annotated[str | None, Query(min_length=1, max_length=32, pattern=NO_NUL,
                                                description="only leads with a live alert of this kind")] = None,
              page: PageNo = 1, page_size: PageSize = 50):
        """The ranked queue (officers: their district's, in queue order)."""
        district = _officer_district(principal, district)
        q = select(Lead)
        if status_ is None:
            q = q.where(Lead.in_queue.is_(True))
        else:
            q = q.where(Lead.status == status_)
            if status_ == "new":
                q = q.where(Lead.in_queue.is_(True))
        if district is not None:
            q = q.where(Lead.district == district)
        if kind is not None:
            q = q.where(Lead.uscc.in_(select(Alert.uscc).where(Alert.kind == kind, Alert.run_id == model.run_id)))
        total, rows = _page(q, session, page, page_size, _lead_order(principal))
        return LeadPage(total=total, page=page, page_size=page_size, items=[_lead_out(x, principal) for x in rows])

    @r.get("/me/leads", response_model=LeadPage, tags=["leads"])
    def my_leads(session: SessionDep, principal: Annotated[auth.Principal, Depends(require(*QUEUE_ROLES))],
                 page: PageNo = 1, page_size: PageSize = 50):
        """Leads assigned to the caller and not yet closed."""
        q = select(Lead).where(Lead.assigned_officer == principal.username, Lead.status != "closed")
        total, rows = _page(q, session, page, page_size, _lead_order(principal))
        return LeadPage(total=total, page=page, page_size=page_size, items=[_lead_out(x, principal) for x in rows])

    @r.get("/leads/{lead_id}", response_model=LeadDetail, tags=["leads"], responses=ERRORS)
    def lead_detail(lead_id: LeadId, session: SessionDep, model: ModelDep,
                    principal: Annotated[auth.Principal, Depends(require(*QUEUE_ROLES))]):
        """A lead with the entity's registration, permits, linked accounts, monthly series, alerts, verdicts."""
        lead = _load_lead(session, lead_id, principal)
        ent = session.get(Entity, lead.uscc)
        entity = None
        if ent is not None:
            permits = session.scalars(select(Permit).where(Permit.uscc == lead.uscc).order_by(Permit.permit_id)).all()
            accounts = session.scalars(select(Account).where(Account.uscc == lead.uscc)
                                       .order_by(Account.source, Account.account_id)).all()
            entity = EntityOut(
                uscc=ent.uscc, name=ent.name, district=ent.district, industry_code=ent.industry_code,
                address=ent.address, registered_on=ent.registered_on, deregistered_on=ent.deregistered_on,
                employees=ent.employees,
                permits=[PermitOut.model_validate(p, from_attributes=True) for p in permits],
                accounts=[AccountOut.model_validate(a, from_attributes=True) for a in accounts],
            )
        alerts = session.scalars(select(Alert).where(Alert.uscc == lead.uscc, Alert.run_id == model.run_id)
                                 .order_by(Alert.kind, Alert.alert_id)).all()
        verdicts = session.scalars(select(Verdict).where(Verdict.lead_id == lead.id).order_by(Verdict.id)).all()
        base = _lead_out(lead, principal).model_dump()
        return LeadDetail(**base, entity=entity, series=_series_out(session.get(Series, lead.uscc)),
                          alerts=[_alert_out(a) for a in alerts], verdicts=[_verdict_out(v) for v in verdicts],
                          history=None if principal.is_officer else list(lead.history or []))

    @r.post("/leads/{lead_id}/assign", response_model=LeadOut, tags=["leads"],
            responses={**ERRORS, 409: {"model": ErrorOut}})
    def assign(lead_id: LeadId, body: AssignIn, session: SessionDep,
               principal: Annotated[auth.Principal, Depends(require(*ASSIGN_ROLES))]):
        """Give a lead to an officer of its district (officers may take leads of their own district)."""
        return _lead_out(assign_lead(session, lead_id, body, principal), principal)

    @r.post("/leads/{lead_id}/start", response_model=LeadOut, tags=["leads"],
            responses={**ERRORS, 409: {"model": ErrorOut}})
    def start(lead_id: LeadId, session: SessionDep,
              principal: Annotated[auth.Principal, Depends(require(*ASSIGN_ROLES))]):
        """The assigned officer sets out on the lead (status in_progress)."""
        lead = _load_lead(session, lead_id, principal, for_update=True)
        if lead.status not in ("assigned", "in_progress"):
            raise HTTPException(status.HTTP_409_CONFLICT, f"线索 {lead_id} 状态为 {lead.status}，需先分配 "
                                                          f"(only an assigned lead can start)")
        if principal.is_officer and lead.assigned_officer != principal.username:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"线索已分配给 {lead.assigned_officer} (lead is assigned to another officer)")
        if lead.status == "assigned":
            now = utcnow()
            lead.status, lead.updated_at = "in_progress", now
            lead.history = [*(lead.history or []), {"at": now.isoformat(timespec="seconds"), "event": "started",
                                                    "by": principal.username}]
            auth.audit(session, principal.username, "start", "lead", lead.id, {"uscc": lead.uscc})
            session.commit()
        return _lead_out(lead, principal)

    @r.post("/leads/{lead_id}/verdicts", response_model=VerdictOut, status_code=201, tags=["leads"],
            responses={**ERRORS, 409: {"model": ErrorOut}})
    def post_verdict(lead_id: LeadId, body: VerdictIn, session: SessionDep,
                     principal: Annotated[auth.Principal, Depends(require(*VERDICT_ROLES))]):
        """What the visit found; closes the lead. The verdict becomes a label of the next training."""
        return _verdict_out(record_verdict(session, lead_id, body, principal))

    @r.get("/alerts", response_model=AlertPage, tags=["alerts"], responses=ERRORS)
    def alerts(session: SessionDep, model: ModelDep,
               principal: Annotated[auth.Principal, Depends(require(*ALL_ROLES))],
               kind: Filter = None, level: Filter = None, district: Filter = None,
               page: PageNo = 1, page_size: PageSize = 50):
        """Alerts of the live run's supervision checks."""
        district = _officer_district(principal, district)
        q = select(Alert).where(Alert.run_id == model.run_id)
        for col, value in ((Alert.kind, kind), (Alert.level, level), (Alert.district, district)):
            if value is not None:
                q = q.where(col == value)
        total, rows = _page(q, session, page, page_size, (Alert.kind, Alert.district, Alert.alert_id))
        return AlertPage(total=total, page=page, page_size=page_size, items=[_alert_out(a) for a in rows])

    @r.get("/outbox", response_model=OutboxPage, tags=["outbox"])
    def outbox(session: SessionDep, _: Annotated[auth.Principal, Depends(require(*OUTBOX_ROLES))],
               status_: Annotated[OutboxStatus | None, Query(alias="status")] = None,
               page: PageNo = 1, page_size: PageSize = 50):
        """Text messages to entities, for the SMS gateway to send."""
        q = select(OutboxMessage)
        if status_ is not None:
            q = q.where(OutboxMessage.status == status_)
        total, rows = _page(q, session, page, page_size, (OutboxMessage.created_at, OutboxMessage.message_id))
        return OutboxPage(total=total, page=page, page_size=page_size,
                          items=[OutboxOut.model_validate(m, from_attributes=True) for m in rows])

    def _mark(session: Session, message_id: str, principal: auth.Principal, new: str, error: str | None):
        msg = session.get(OutboxMessage, message_id, with_for_update=True)
        if msg is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"消息 {message_id} 不存在 (no message {message_id})")
        if msg.status == "sent" and new == "failed":
            raise HTTPException(status.HTTP_409_CONFLICT, f"消息 {message_id} 已发送 (message already sent)")
        if msg.status != new or new == "failed":
            msg.status, msg.error = new, error
            msg.sent_at = utcnow() if new == "sent" else msg.sent_at
            auth.audit(session, principal.username, f"outbox_{new}", "outbox", message_id,
                       {"error": error} if error else {})
            session.commit()
        return OutboxOut.model_validate(msg, from_attributes=True)

    @r.post("/outbox/{message_id}/sent", response_model=OutboxOut, tags=["outbox"],
            responses={**ERRORS, 409: {"model": ErrorOut}})
    def outbox_sent(message_id: MessageId, session: SessionDep,
                    principal: Annotated[auth.Principal, Depends(require(*OUTBOX_ROLES))]):
        """The gateway delivered the message (idempotent)."""
        return _mark(session, message_id, principal, "sent", None)

    @r.post("/outbox/{message_id}/failed", response_model=OutboxOut, tags=["outbox"],
            responses={**ERRORS, 409: {"model": ErrorOut}})
    def outbox_failed(message_id: MessageId, body: FailedIn, session: SessionDep,
                      principal: Annotated[auth.Principal, Depends(require(*OUTBOX_ROLES))]):
        """The gateway could not deliver the message."""
        return _mark(session, message_id, principal, "failed", body.error)

    @r.get("/water-rights", response_model=WaterRightPage, tags=["water rights"])
    def water_rights(session: SessionDep, model: ModelDep,
                     _: Annotated[auth.Principal, Depends(require(*SCORE_ROLES))],
                     district: Filter = None, page: PageNo = 1, page_size: PageSize = 50):
        """Candidate water-rights trades of the live run (surplus quota -> shortfall)."""
        q = select(WaterRight).where(WaterRight.run_id == model.run_id)
        if district is not None:
            q = q.where(WaterRight.district == district)
        total, rows = _page(q, session, page, page_size, (WaterRight.volume_m3.desc(), WaterRight.id))
        return WaterRightPage(total=total, page=page, page_size=page_size,
                              items=[WaterRightOut.model_validate(w, from_attributes=True) for w in rows])

    @r.post("/admin/reload-model", response_model=ModelOut, tags=["admin"], responses=ERRORS)
    def reload_model(request: Request, session: SessionDep,
                     principal: Annotated[auth.Principal, Depends(require(*ADMIN_ROLES))]):
        """Serve the latest published run and its model; requests in flight finish on the old one."""
        info = request.app.state.model.reload()
        auth.audit(session, principal.username, "reload_model", "run", info.run_id or "-", {"version": info.version})
        session.commit()
        return _model_out(info)

    return r


def create_app(
    settings,
    session_factory: sessionmaker | None = None,
    routers: Iterable[APIRouter] = (),
    demo_users: bool | None = None,
) -> FastAPI:
    """The service. ``routers`` (e.g. the console's) are mounted after the API; the store is migrated
    to the latest schema when the app opens it itself. ``demo_users`` (default: not production) creates
    the demo accounts of ``serving.auth.ensure_demo_users``; production never gets them."""
    if settings.production and (settings.secret_key in auth.DENIED_PASSWORDS or len(settings.secret_key) < 32):
        raise ValueError("production refuses the default or a short secret_key: set WATERWATCH_SECRET_KEY "
                         "to a random string of at least 32 characters")
    if session_factory is None:
        _, session_factory = open_store(settings.resolved_database_url())
    app = FastAPI(
        title="WaterWatch API", version="1",
        description="违法取水线索：风险评分、执法线索队列、核查结论、预警与短信。Scores, lead queues, verdicts, alerts.",
    )
    app.state.settings = settings
    app.state.sessions = session_factory
    app.state.templates_dir = TEMPLATES_DIR
    app.state.model = ModelHolder(session_factory)
    app.state.key_cache = _KeyCache()
    app.state.model.reload()
    if demo_users if demo_users is not None else not settings.production:
        with session_factory() as session, session.begin():
            districts = [d for d in session.scalars(select(Entity.district).distinct()) if d]
            auth.ensure_demo_users(session, settings.production, districts)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422,
                            content={"detail": errors, "message": f"请求参数无效 (invalid request): {message}"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug still answers in JSON, without internals
        return JSONResponse(status_code=500, content={"detail": "服务器内部错误 (internal server error)"})

    @app.get("/health", response_model=HealthOut, tags=["health"])
    def health(request: Request):
        """Liveness and readiness: the database answers and which run is served."""
        info = request.app.state.model.info
        try:
            with request.app.state.sessions() as session:
                session.execute(text("SELECT 1"))
            db = "ok"
        except Exception as exc:  # report, don't crash: the health check is what monitoring reads
            db = f"error: {type(exc).__name__}"
        return HealthOut(status="ok" if db == "ok" else "degraded", database=db, run_id=info.run_id,
                         model_version=info.version)

    app.include_router(api_router())
    for router in routers:
        app.include_router(router)
    return app
