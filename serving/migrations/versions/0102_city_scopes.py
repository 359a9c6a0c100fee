"""A province's store keyed by city: the city of each run (so that every city's latest run is live), of each
user (a user bound to one city sees only it; an officer's district is a district of their city), and of each
linked account (two cities' companies may number accounts alike); the queue indexes lead with the city.

Existing rows: a run's city comes from its model.json (``model_info``), an account's from the runs that scored
the entity it is linked to ("" where none names a city: a city run's, and unlinked accounts, which a province
city's next run then leaves in place); users keep no city (every city).

Revision ID: c003
Revises: c002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c003"
down_revision = "c002"
branch_labels = None
depends_on = None

ACCOUNT_KEY = ["city", "source", "account_id"]


def _run_city(info) -> str | None:
    """As serving.publish.run_city (a migration keeps its own copy: the code may change after it)."""
    city = (info or {}).get("city") if isinstance(info, dict) else None
    if isinstance(city, dict):
        city = city.get("name") or city.get("folder")
    return str(city)[:64] if city else None


def _backfill(bind) -> None:
    runs = sa.table("runs", sa.column("run_id", sa.String), sa.column("model_info", sa.JSON),
                    sa.column("city", sa.String))
    for run_id, info in bind.execute(sa.select(runs.c.run_id, runs.c.model_info)).all():
        if _run_city(info):
            bind.execute(runs.update().where(runs.c.run_id == run_id).values(city=_run_city(info)))
    accounts = sa.table("accounts", sa.column("uscc", sa.String), sa.column("city", sa.String))
    scores = sa.table("scores", sa.column("uscc", sa.String), sa.column("run_id", sa.String))
    city = (sa.select(sa.func.max(runs.c.city)).select_from(scores.join(runs, runs.c.run_id == scores.c.run_id))
            .where(scores.c.uscc == accounts.c.uscc, runs.c.city.is_not(None)))
    bind.execute(accounts.update().where(city.scalar_subquery().is_not(None)).values(city=city.scalar_subquery()))


def _account_key(columns: list[str]) -> None:
    """Key the accounts by ``columns`` (on SQLite, which cannot change a key, by copying to a new table)."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("accounts_pkey", "accounts", type_="primary")
        op.create_primary_key("accounts_pkey", "accounts", columns)
        return
    op.drop_index("ix_accounts_uscc", "accounts")
    op.rename_table("accounts", "accounts_old")
    op.create_table(
        "accounts", sa.Column("city", sa.String(64), nullable=False, server_default=""),
        sa.Column("source", sa.String(16), nullable=False), sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("account_name", sa.String(200)), sa.Column("uscc", sa.String(32)), sa.Column("method", sa.String(16)),
        sa.Column("confidence", sa.Float()), sa.Column("status", sa.String(16)), sa.PrimaryKeyConstraint(*columns))
    names = "city, source, account_id, account_name, uscc, method, confidence, status"
    op.execute(f"INSERT INTO accounts ({names}) SELECT {names} FROM accounts_old")
    op.drop_table("accounts_old")
    op.create_index("ix_accounts_uscc", "accounts", ["uscc"])


def upgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("city", sa.String(64), nullable=True))
        b.create_index("ix_runs_city", ["city"])
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("city", sa.String(64), nullable=True))
    with op.batch_alter_table("accounts") as b:
        b.add_column(sa.Column("city", sa.String(64), nullable=False, server_default=""))
    _backfill(op.get_bind())
    _account_key(ACCOUNT_KEY)
    op.drop_index("ix_leads_district_status", "leads")
    op.create_index("ix_leads_city_district_status", "leads", ["city", "district", "status"])
    op.drop_index("ix_cases_district_status", "cases")
    op.create_index("ix_cases_city_district_status", "cases", ["city", "district", "status"])


def downgrade() -> None:
    op.drop_index("ix_cases_city_district_status", "cases")
    op.create_index("ix_cases_district_status", "cases", ["district", "status"])
    op.drop_index("ix_leads_city_district_status", "leads")
    op.create_index("ix_leads_district_status", "leads", ["district", "status"])
    accounts = sa.table("accounts", sa.column("city", sa.String), sa.column("source", sa.String),
                        sa.column("account_id", sa.String))
    other = accounts.alias("other")
    op.get_bind().execute(accounts.delete().where(sa.exists().where(  # one row per old key: the first city's
        other.c.source == accounts.c.source, other.c.account_id == accounts.c.account_id,
        other.c.city < accounts.c.city)))
    _account_key(["source", "account_id"])
    with op.batch_alter_table("accounts") as b:
        b.drop_column("city")
    with op.batch_alter_table("users") as b:
        b.drop_column("city")
    with op.batch_alter_table("runs") as b:
        b.drop_index("ix_runs_city")
        b.drop_column("city")
