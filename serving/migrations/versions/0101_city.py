"""The city of a lead, an alert and a case, so that one store holds several cities of a province run and each
city's queue stays its own (publishing one city's run leaves the others' leads alone). NULL for a city run.

Revision ID: c002
Revises: c001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c002"
down_revision = "c001"
branch_labels = None
depends_on = None

TABLES = ("leads", "alerts", "cases")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as b:
            b.add_column(sa.Column("city", sa.String(64), nullable=True))
            b.create_index(f"ix_{table}_city", ["city"])


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as b:
            b.drop_index(f"ix_{table}_city")
            b.drop_column("city")
