"""The operational store: what officers, supervisors and other systems read and write between runs.

Runs publish into it (``serving.publish``); officers' assignments and verdicts live only here and
must survive every re-publish. SQLite is the embedded default, PostgreSQL the production database;
the schema is created and changed only by the Alembic migrations in ``serving/migrations``.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"

LEAD_STATUSES = ("new", "assigned", "in_progress", "closed")
OUTCOMES = ("violation", "no_violation", "unreachable")  # an unreachable visit is a visit record, not a verdict
VIOLATION_TYPES = (
    "unpermitted_abstraction", "private_well", "meter_tampering", "over_permit", "expired_permit", "tax_underreport",
)
OUTBOX_STATUSES = ("queued", "sent", "failed")
CASE_STATUSES = ("open", "in_progress", "closed", "dismissed")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """Timestamps in UTC, timezone-aware on the way out even where the database (SQLite) drops the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime}


class Run(Base):
    """One published pipeline run: its as-of, the model that scored it and when it went live."""

    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[date | None] = mapped_column(Date)
    model_version: Mapped[str | None] = mapped_column(String(64))
    model_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    entities: Mapped[int] = mapped_column(Integer, default=0)
    city: Mapped[str | None] = mapped_column(String(64), index=True)  # a province run's city; None: a city run
    published_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Entity(Base):
    """Registration facts of a market entity, with counts of its permits and linked accounts."""

    __tablename__ = "entities"
    uscc: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(64), index=True)
    industry_code: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(300))
    registered_on: Mapped[date | None] = mapped_column(Date)
    deregistered_on: Mapped[date | None] = mapped_column(Date)
    employees: Mapped[int | None] = mapped_column(Integer)
    permits: Mapped[int] = mapped_column(Integer, default=0)
    linked_accounts: Mapped[int] = mapped_column(Integer, default=0)


class Permit(Base):
    """An abstraction permit, keyed by its city too ("": a city run's): two cities may number permits alike."""

    __tablename__ = "permits"
    city: Mapped[str] = mapped_column(String(64), primary_key=True, default="", server_default="")
    permit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uscc: Mapped[str | None] = mapped_column(String(32), index=True)
    source: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str | None] = mapped_column(String(32))
    annual_quota_m3: Mapped[float | None] = mapped_column(Float)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str | None] = mapped_column(String(16))
    wells: Mapped[int | None] = mapped_column(Integer)


class Account(Base):
    """A water-company or sewer account and the entity it was linked to, with the linker's confidence. Keyed
    by its city too ("": a city run's), so that two cities' companies may number accounts alike."""

    __tablename__ = "accounts"
    city: Mapped[str] = mapped_column(String(64), primary_key=True, default="", server_default="")
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_name: Mapped[str | None] = mapped_column(String(200))
    uscc: Mapped[str | None] = mapped_column(String(32), index=True)
    method: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str | None] = mapped_column(String(16))


class Score(Base):
    """Every entity's risk in one run (the queue is a subset; scores answer the API for any entity)."""

    __tablename__ = "scores"
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(32), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    risk_score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[str | None] = mapped_column(Text)
    reason_codes: Mapped[list[Any] | None] = mapped_column(JSON)  # [{code, value, unit, text_zh, text_en}]
    __table_args__ = (Index("ix_scores_uscc", "uscc"),)


class Series(Base):
    """The compact monthly series behind a lead page (supply, abstraction, discharge, declared tax volume)."""

    __tablename__ = "series"
    uscc: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    series: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Lead(Base):
    """An entity in the officers' queue. While a lead is open, re-published runs re-rank it and never reset its
    work; once closed by a verdict it stays closed, and a later run that finds new evidence opens a new lead
    that points back to it (``previous_lead_id``). At most one open lead per entity."""

    __tablename__ = "leads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(String(32), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64), index=True)  # a province run's city; None: a city run
    industry_code: Mapped[str | None] = mapped_column(String(16))
    rank: Mapped[int | None] = mapped_column(Integer)
    queue_position: Mapped[int | None] = mapped_column(Integer)
    risk_score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[str | None] = mapped_column(Text)
    reason_codes: Mapped[list[Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="new")
    in_queue: Mapped[bool] = mapped_column(Boolean, default=True)
    assigned_officer: Mapped[str | None] = mapped_column(String(64), index=True)
    queue_probability: Mapped[float] = mapped_column(Float, default=1.0)
    exploratory: Mapped[bool] = mapped_column(Boolean, default=False)
    round: Mapped[int] = mapped_column(Integer, default=1)  # bumped when a supervisor reopens the lead
    previous_lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (Index("ix_leads_city_district_status", "city", "district", "status"),
                      Index("ix_leads_queue", "in_queue", "rank"),
                      Index("uq_leads_open_uscc", "uscc", unique=True, sqlite_where=text("status != 'closed'"),
                            postgresql_where=text("status != 'closed'")))


class LeadEvent(Base):
    """The history of a lead, append-only: queued by a run, re-scored, assigned, started, verdict, amended,
    reopened. Nothing rewrites it; publishing only adds rows."""

    __tablename__ = "lead_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Assignment(Base):
    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    officer: Mapped[str] = mapped_column(String(64))
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Verdict(Base):
    """What a visit found, the next model's only labels; the database holds one conclusive verdict per lead and
    round (a reopen starts a new round), while unreachable visits close nothing and a round may hold several."""

    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    uscc: Mapped[str] = mapped_column(String(32), index=True)
    officer: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    violation_type: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    visited_on: Mapped[date] = mapped_column(Date)
    queue_probability: Mapped[float] = mapped_column(Float, default=1.0)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    round: Mapped[int] = mapped_column(Integer, default=1)  # the lead's round it was recorded in
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)  # the lead was reopened after it
    amended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    __table_args__ = (Index("uq_verdicts_conclusive_lead_round", "lead_id", "round", unique=True,
                            **{f"{db}_where": text("outcome != 'unreachable'") for db in ("sqlite", "postgresql")}),)


class Alert(Base):
    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    level: Mapped[str | None] = mapped_column(String(16))
    uscc: Mapped[str | None] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    permit_id: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64), index=True)
    city: Mapped[str | None] = mapped_column(String(64), index=True)
    period: Mapped[str | None] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[str | None] = mapped_column(String(16))


class OutboxMessage(Base):
    __tablename__ = "outbox"
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    alert_id: Mapped[str | None] = mapped_column(String(64))
    uscc: Mapped[str | None] = mapped_column(String(32))
    recipient: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the texts of the SMS segments
    segment_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # delivery by ``serving.sms``: attempts so far, when the next may start, the claim of the sender now
    # holding the message (no other sender takes it before ``claimed_until``), what the gateway answered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(16))
    gateway_id: Mapped[str | None] = mapped_column(String(100))
    delivery: Mapped[str | None] = mapped_column(String(16))  # accepted | delivered | undeliverable
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resend_round: Mapped[int] = mapped_column(Integer, default=0)  # a resend sends under a new key


class DeptInspection(Base):
    """An inspection in the departments' own records (the drop's inspections table), before or beside the
    platform's verdicts: part of an entity's inspection history on its lead page."""

    __tablename__ = "dept_inspections"
    inspection_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uscc: Mapped[str | None] = mapped_column(String(32), index=True)
    inspected_on: Mapped[date | None] = mapped_column(Date)
    officer_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    violation_type: Mapped[str | None] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(64))


class Evidence(Base):
    """A photo or PDF an officer attached to a lead; the file lives under the home folder (``stored_as`` is
    relative to it) and is served only to users who may see the lead."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    uscc: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # photo | pdf
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_as: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Case(Base):
    """A documented breach (issue #9's case track): one per (entity, action), raised by runs (cases.csv) with
    a stable case_id. Runs update its facts; its status, assignee and updated_at belong to the store."""

    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    uscc: Mapped[str | None] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64), index=True)
    permit_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    period: Mapped[str | None] = mapped_column(String(16))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence_text: Mapped[str | None] = mapped_column(Text)
    evidence_text_en: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(32))
    volume_at_stake_m3: Mapped[float | None] = mapped_column(Float)
    tax_at_stake_yuan: Mapped[float | None] = mapped_column(Float)
    verified_m3: Mapped[float | None] = mapped_column(Float)
    alert_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee: Mapped[str | None] = mapped_column(String(64))
    opened_as_of: Mapped[date | None] = mapped_column(Date)
    run_id: Mapped[str | None] = mapped_column(String(64))  # the last run that raised it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (Index("ix_cases_city_district_status", "city", "district", "status"),)


class WaterRight(Base):
    """A candidate water-rights trade: an entity with surplus quota and one short of it."""

    __tablename__ = "water_rights"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    seller_uscc: Mapped[str | None] = mapped_column(String(32))
    buyer_uscc: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(64))
    surplus_m3: Mapped[float | None] = mapped_column(Float)
    shortfall_m3: Mapped[float | None] = mapped_column(Float)
    volume_m3: Mapped[float | None] = mapped_column(Float)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))  # bound to one city of a province's store; None: every city
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    token_version: Mapped[int] = mapped_column(Integer, default=0)  # bumped to revoke every token issued before
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RevokedToken(Base):
    """A login token revoked before it expired (logout); kept until then (a login or logout deletes it after)."""

    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LoginThrottle(Base):
    """Failed logins of one username (``user:<name>``) or client address (``addr:<ip>``) and its lockout."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ApiKey(Base):
    """A key for another system; only its SHA-256 is stored (keys are long random tokens, not passwords)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def make_engine(url: str, **kwargs) -> Engine:
    """An engine; SQLite gets foreign keys on and a busy timeout so that the API and a publish can share it.

    The pool can hand a connection to each of the 40 worker threads that serve FastAPI's sync endpoints,
    so a burst of slow requests queues on the database, not on a pool timeout."""
    if "poolclass" not in kwargs and url not in ("sqlite://", "sqlite:///:memory:"):
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 40)
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:  # a file: its folder may not exist yet
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - driver hook
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url and url != "sqlite://":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade_database(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the Alembic migrations (the app and CLI never use create_all).

    On SQLite, foreign keys are off while a migration recreates a table (a batch migration drops the old
    table, which with them on would cascade-delete the rows that refer to it)."""
    _migrate(url_or_engine, "upgrade", revision)


def downgrade_database(url_or_engine: str | Engine, revision: str) -> None:
    """Take the schema back to ``revision``, for an older release (what it cannot keep: each ``downgrade`` says)."""
    _migrate(url_or_engine, "downgrade", revision)


def _migrate(url_or_engine: str | Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction, where it takes effect
            connection.commit()
        with connection.begin():
            cfg.attributes["connection"] = connection
            getattr(command, direction)(cfg, revision)
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
    if isinstance(url_or_engine, str):
        engine.dispose()


def begin_write(session: Session, *lock_tables: str) -> None:
    """Start the session's transaction as a writer, before it reads what it will change, so that concurrent
    writers wait for it rather than overwrite it: SQLite takes its (database-wide) write lock now; PostgreSQL
    locks ``lock_tables`` against other writers and row locks (plain reads go on). Writes of single rows on
    PostgreSQL lock their rows with ``SELECT ... FOR UPDATE`` instead."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text("UPDATE runs SET run_id = run_id WHERE 0"))  # a write: takes the lock, changes nothing
    elif dialect == "postgresql" and lock_tables:
        session.execute(text(f"LOCK TABLE {', '.join(lock_tables)} IN EXCLUSIVE MODE"))


def open_store(url: str, migrate: bool = True) -> tuple[Engine, sessionmaker]:
    """Engine and session factory for ``url``, migrated to the latest schema first."""
    engine = make_engine(url)
    if migrate:
        upgrade_database(engine)
    return engine, session_factory(engine)
