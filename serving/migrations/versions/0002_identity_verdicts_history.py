"""Identity checked against the store, one verdict per lead and round, append-only lead history, outbox segments.

- users: token_version (revokes earlier tokens), is_demo, updated_at; revoked_tokens (logout); login_throttle.
- outbox: segments as the list of SMS segment texts (was an integer column the pipeline's list never fitted),
  segment_count.
- leads: a lead closed by a verdict stays closed and a later run may open a new lead for the same entity
  (previous_lead_id), so uscc is unique only among open leads; round counts reopenings; the JSON history
  column moves to the append-only lead_events table.
- verdicts: round, superseded, amended_at; unique (lead_id, round). Stores that already hold several verdicts
  on one lead (posted concurrently before this constraint) keep them all: each takes its own round, the
  latest is the lead's verdict and the earlier ones are marked superseded.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _users() -> None:
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("is_demo", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE users SET updated_at = created_at")
    with op.batch_alter_table("users") as b:
        b.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_tokens_user_id", "revoked_tokens", ["user_id"])
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def _outbox() -> None:
    with op.batch_alter_table("outbox") as b:
        b.add_column(sa.Column("segment_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE outbox SET segment_count = COALESCE(segments, 0)")
    with op.batch_alter_table("outbox") as b:
        b.drop_column("segments")
    with op.batch_alter_table("outbox") as b:
        b.add_column(sa.Column("segments", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def _parse_at(value) -> datetime:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(timezone.utc)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _lead_events() -> None:
    events = op.create_table(
        "lead_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_lead_events_lead_id", "lead_events", ["lead_id"])
    leads = sa.table("leads", sa.column("id", sa.Integer()), sa.column("history", sa.JSON()))
    rows = []
    for lead_id, history in op.get_bind().execute(sa.select(leads.c.id, leads.c.history).order_by(leads.c.id)):
        for entry in history or []:
            entry = dict(entry)
            rows.append({"lead_id": lead_id, "at": _parse_at(entry.pop("at", None)),
                         "event": str(entry.pop("event", "?"))[:32], "run_id": entry.pop("run_id", None),
                         "actor": entry.pop("by", None), "detail": entry})
    if rows:
        op.bulk_insert(events, rows)


def _leads() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("leads", naming_convention=NAMING) as b:
        b.drop_constraint("leads_uscc_key" if dialect == "postgresql" else "uq_leads_uscc", type_="unique")
        b.drop_column("history")
        b.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="1"))
        b.add_column(sa.Column("previous_lead_id", sa.Integer(), nullable=True))
        b.create_foreign_key("fk_leads_previous_lead_id", "leads", ["previous_lead_id"], ["id"], ondelete="SET NULL")
        b.create_index("ix_leads_uscc", ["uscc"], unique=False)
    op.create_index("uq_leads_open_uscc", "leads", ["uscc"], unique=True,
                    sqlite_where=sa.text("status != 'closed'"), postgresql_where=sa.text("status != 'closed'"))


def _verdicts() -> None:
    with op.batch_alter_table("verdicts") as b:
        b.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="1"))
        b.add_column(sa.Column("superseded", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("amended_at", sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    verdicts = sa.table("verdicts", sa.column("id", sa.Integer()), sa.column("lead_id", sa.Integer()),
                        sa.column("round", sa.Integer()), sa.column("superseded", sa.Boolean()))
    leads = sa.table("leads", sa.column("id", sa.Integer()), sa.column("round", sa.Integer()))
    by_lead: dict[int, list[int]] = {}
    for vid, lead_id in bind.execute(sa.select(verdicts.c.id, verdicts.c.lead_id).order_by(verdicts.c.id)):
        by_lead.setdefault(lead_id, []).append(vid)
    for lead_id, ids in by_lead.items():
        if len(ids) < 2:
            continue
        for n, vid in enumerate(ids, start=1):
            bind.execute(verdicts.update().where(verdicts.c.id == vid).values(round=n, superseded=n < len(ids)))
        bind.execute(leads.update().where(leads.c.id == lead_id).values(round=len(ids)))
    with op.batch_alter_table("verdicts") as b:
        b.create_unique_constraint("uq_verdicts_lead_round", ["lead_id", "round"])


def upgrade() -> None:
    _users()
    _outbox()
    _lead_events()
    _leads()
    _verdicts()


def downgrade() -> None:
    raise NotImplementedError("0002 moves lead history into its own table; restore a backup to go back")
