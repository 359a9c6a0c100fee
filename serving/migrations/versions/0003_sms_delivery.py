"""SMS delivery state on the outbox: attempts, backoff, the sender's claim, the gateway's answer, resends.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
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


def downgrade() -> None:
    with op.batch_alter_table("outbox") as b:
        for column in reversed(columns()):
            b.drop_column(column.name)
