"""Permits keyed by (city, permit id): two cities of a province number their permits alike, and with the permit id
alone one city's publish overwrote the other's permit of the same number.

Existing rows: a permit's city comes from the runs that scored the entity it belongs to ("" where none names a
city: a city run's permits), as c003 did for the linked accounts.

Revision ID: c004
Revises: c003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c004"
down_revision = "c003"
branch_labels = None
depends_on = None

PERMIT_KEY = ["city", "permit_id"]
COLUMNS = "city, permit_id, uscc, source, purpose, annual_quota_m3, valid_from, valid_to, status, wells"


def _backfill(bind) -> None:
    runs = sa.table("runs", sa.column("run_id", sa.String), sa.column("city", sa.String))
    permits = sa.table("permits", sa.column("uscc", sa.String), sa.column("city", sa.String))
    scores = sa.table("scores", sa.column("uscc", sa.String), sa.column("run_id", sa.String))
    city = (sa.select(sa.func.max(runs.c.city)).select_from(scores.join(runs, runs.c.run_id == scores.c.run_id))
            .where(scores.c.uscc == permits.c.uscc, runs.c.city.is_not(None)))
    bind.execute(permits.update().where(city.scalar_subquery().is_not(None)).values(city=city.scalar_subquery()))


def _permit_key(columns: list[str]) -> None:
    """Key the permits by ``columns`` (on SQLite, which cannot change a key, by copying to a new table)."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("permits_pkey", "permits", type_="primary")
        op.create_primary_key("permits_pkey", "permits", columns)
        return
    op.drop_index("ix_permits_uscc", "permits")
    op.rename_table("permits", "permits_old")
    op.create_table(
        "permits", sa.Column("city", sa.String(64), nullable=False, server_default=""),
        sa.Column("permit_id", sa.String(64), nullable=False), sa.Column("uscc", sa.String(32)),
        sa.Column("source", sa.String(16)), sa.Column("purpose", sa.String(32)),
        sa.Column("annual_quota_m3", sa.Float()), sa.Column("valid_from", sa.Date()),
        sa.Column("valid_to", sa.Date()), sa.Column("status", sa.String(16)), sa.Column("wells", sa.Integer()),
        sa.PrimaryKeyConstraint(*columns))
    op.execute(f"INSERT INTO permits ({COLUMNS}) SELECT {COLUMNS} FROM permits_old")
    op.drop_table("permits_old")
    op.create_index("ix_permits_uscc", "permits", ["uscc"])


def upgrade() -> None:
    with op.batch_alter_table("permits") as b:
        b.add_column(sa.Column("city", sa.String(64), nullable=False, server_default=""))
    _backfill(op.get_bind())
    _permit_key(PERMIT_KEY)


def downgrade() -> None:
    permits = sa.table("permits", sa.column("city", sa.String), sa.column("permit_id", sa.String))
    other = permits.alias("other")
    op.get_bind().execute(permits.delete().where(sa.exists().where(  # one row per old key: the first city's
        other.c.permit_id == permits.c.permit_id, other.c.city < permits.c.city)))
    _permit_key(["permit_id"])
    with op.batch_alter_table("permits") as b:
        b.drop_column("city")
