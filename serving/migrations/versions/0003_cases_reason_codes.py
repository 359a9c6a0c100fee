"""The case track: documented breaches as cases that keep their status across runs; machine-readable reason codes.

- cases: one row per (entity, action) documented breach of cases.csv (issue #9); ``status`` (open ->
  in_progress -> closed | dismissed), ``assignee`` and ``updated_at`` belong to the store: a later run that
  raises the same case_id updates its facts and keeps them.
- scores.reason_codes, leads.reason_codes: leads.csv's ``reason_codes`` (JSON list of {code, value, unit,
  text_zh, text_en}); empty for runs written before it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("uscc", sa.String(32), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("district", sa.String(64), nullable=True),
        sa.Column("permit_id", sa.String(64), nullable=True),
        sa.Column("project_id", sa.String(64), nullable=True),
        sa.Column("period", sa.String(16), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("evidence_text", sa.Text(), nullable=True),
        sa.Column("evidence_text_en", sa.Text(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("volume_at_stake_m3", sa.Float(), nullable=True),
        sa.Column("tax_at_stake_yuan", sa.Float(), nullable=True),
        sa.Column("verified_m3", sa.Float(), nullable=True),
        sa.Column("alert_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("opened_as_of", sa.Date(), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cases_kind", "cases", ["kind"])
    op.create_index("ix_cases_uscc", "cases", ["uscc"])
    op.create_index("ix_cases_district_status", "cases", ["district", "status"])
    for table in ("scores", "leads"):
        with op.batch_alter_table(table) as b:
            b.add_column(sa.Column("reason_codes", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("scores", "leads"):
        with op.batch_alter_table(table) as b:
            b.drop_column("reason_codes")
    op.drop_index("ix_cases_district_status", "cases")
    op.drop_index("ix_cases_uscc", "cases")
    op.drop_index("ix_cases_kind", "cases")
    op.drop_table("cases")
