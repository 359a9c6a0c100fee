"""SMS delivery state on the outbox (attempts, backoff, the sender's claim, the gateway's answer, resends); the
departments' inspections and the officers' evidence files, for a lead's inspection history.

Revision ID: c001 (the console's migrations are c001, c002, ...; they chain after the serving helper's last)
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c001"
down_revision = "0003"
branch_labels = None
depends_on = None


def columns() -> tuple[sa.Column, ...]:
    return (
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("sender", sa.String(16), nullable=True),
        sa.Column("gateway_id", sa.String(100), nullable=True),
        sa.Column("delivery", sa.String(16), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resend_round", sa.Integer(), nullable=False, server_default="0"),
    )


def upgrade() -> None:
    with op.batch_alter_table("outbox") as b:
        for column in columns():
            b.add_column(column)
    # messages a gateway already confirmed before this migration count as one attempt
    op.execute("UPDATE outbox SET attempts = 1 WHERE status IN ('sent', 'failed')")
    op.create_table(
        "dept_inspections",
        sa.Column("inspection_id", sa.String(64), primary_key=True),
        sa.Column("uscc", sa.String(32), nullable=True),
        sa.Column("inspected_on", sa.Date(), nullable=True),
        sa.Column("officer_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("violation_type", sa.String(32), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_dept_inspections_uscc", "dept_inspections", ["uscc"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uscc", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("stored_as", sa.String(300), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_evidence_lead_id", "evidence", ["lead_id"])
    op.create_index("ix_evidence_uscc", "evidence", ["uscc"])


def downgrade() -> None:
    op.drop_table("evidence")
    op.drop_table("dept_inspections")
    with op.batch_alter_table("outbox") as b:
        for column in reversed(columns()):
            b.drop_column(column.name)
