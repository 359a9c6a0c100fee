"""An unreachable visit (nobody found on site) no longer closes a lead: it is a visit record, and the lead stays in
the queue to be tried again. The store still holds one conclusive verdict per lead and round.

- verdicts: the unique constraint on (lead_id, round) becomes a unique index on it over conclusive verdicts only
  (outcome != 'unreachable'), so a round may hold unreachable visits before its verdict.
- leads closed by an unreachable visit (the verdict of their round is unreachable) go back to the queue in the
  same round: assigned to their officer (new when none), with a "reopened" event and an audit entry by
  ``system``. Only an entity's latest lead, and not when the entity has an open lead already (it is in play; the
  store allows one open lead per entity).

Revision ID: c005
Revises: c004
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "c005"
down_revision = "c004"
branch_labels = None
depends_on = None

INDEX, CONSTRAINT = "uq_verdicts_conclusive_lead_round", "uq_verdicts_lead_round"
CONCLUSIVE = "outcome != 'unreachable'"
REASON = "无法核查不再结案，线索回到队列 (an unreachable visit no longer closes a lead: back to the queue)"

LEADS = sa.table("leads", sa.column("id", sa.Integer), sa.column("uscc", sa.String), sa.column("status", sa.String),
                 sa.column("in_queue", sa.Boolean), sa.column("round", sa.Integer),
                 sa.column("assigned_officer", sa.String), sa.column("updated_at", sa.DateTime(timezone=True)))
VERDICTS = sa.table("verdicts", sa.column("id", sa.Integer), sa.column("lead_id", sa.Integer),
                    sa.column("round", sa.Integer), sa.column("outcome", sa.String),
                    sa.column("superseded", sa.Boolean))
EVENTS = sa.table("lead_events", sa.column("lead_id", sa.Integer), sa.column("at", sa.DateTime(timezone=True)),
                  sa.column("event", sa.String), sa.column("actor", sa.String), sa.column("detail", sa.JSON))
AUDIT = sa.table("audit_log", sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String),
                 sa.column("action", sa.String), sa.column("object_type", sa.String),
                 sa.column("object_id", sa.String), sa.column("detail", sa.JSON))


def _reopen_unreachable(bind) -> None:
    """Back to the queue: each entity's latest lead closed by an unreachable visit, unless it has an open lead."""
    latest = sa.select(sa.func.max(LEADS.c.id)).group_by(LEADS.c.uscc)
    open_ = sa.select(LEADS.c.uscc).where(LEADS.c.status != "closed")
    rows = bind.execute(
        sa.select(LEADS.c.id, LEADS.c.assigned_officer, VERDICTS.c.id)
        .join(VERDICTS, sa.and_(VERDICTS.c.lead_id == LEADS.c.id, VERDICTS.c.round == LEADS.c.round,
                                VERDICTS.c.superseded.is_(sa.false())))
        .where(LEADS.c.status == "closed", VERDICTS.c.outcome == "unreachable", LEADS.c.id.in_(latest),
               LEADS.c.uscc.not_in(open_))).all()
    now = datetime.now(timezone.utc)
    for lead_id, officer, verdict_id in rows:
        bind.execute(LEADS.update().where(LEADS.c.id == lead_id).values(
            status="assigned" if officer else "new", in_queue=True, updated_at=now))
        detail = {"verdict_id": verdict_id, "reason": REASON}
        bind.execute(EVENTS.insert().values(lead_id=lead_id, at=now, event="reopened", actor="system", detail=detail))
        bind.execute(AUDIT.insert().values(at=now, actor="system", action="reopen", object_type="lead",
                                           object_id=str(lead_id), detail=detail))


def upgrade() -> None:
    with op.batch_alter_table("verdicts") as b:
        b.drop_constraint(CONSTRAINT, type_="unique")
    op.create_index(INDEX, "verdicts", ["lead_id", "round"], unique=True, sqlite_where=sa.text(CONCLUSIVE),
                    postgresql_where=sa.text(CONCLUSIVE))
    _reopen_unreachable(op.get_bind())


def _one_verdict_per_round(bind) -> None:
    """Before c005's constraint comes back: where a lead holds several verdicts in one round (unreachable visits
    before its verdict), number the lead's verdicts 1, 2, ... in the order recorded; an open lead's next verdict
    goes in a round after its last visit's."""
    rounds: dict[int, list[tuple[int, int]]] = {}
    for vid, lead_id, round_ in bind.execute(sa.select(VERDICTS.c.id, VERDICTS.c.lead_id, VERDICTS.c.round)
                                             .order_by(VERDICTS.c.id)):
        rounds.setdefault(lead_id, []).append((vid, round_))
    statuses = dict(bind.execute(sa.select(LEADS.c.id, LEADS.c.status).where(LEADS.c.id.in_(list(rounds)))).all())
    for lead_id, verdicts in rounds.items():
        if len({r for _, r in verdicts}) < len(verdicts):
            for n, (vid, _) in enumerate(verdicts, start=1):
                bind.execute(VERDICTS.update().where(VERDICTS.c.id == vid).values(round=n))
            last = len(verdicts)
        else:
            last = max(r for _, r in verdicts)
        wanted = last if statuses.get(lead_id) == "closed" else last + 1
        bind.execute(LEADS.update().where(LEADS.c.id == lead_id, LEADS.c.round < wanted).values(round=wanted))


def downgrade() -> None:
    """The constraint on every verdict again. Leads back in the queue after an unreachable visit stay there (the
    older code closed them); the rounds of leads with several visits in one are renumbered, one verdict each."""
    op.drop_index(INDEX, "verdicts")
    _one_verdict_per_round(op.get_bind())
    with op.batch_alter_table("verdicts") as b:
        b.create_unique_constraint(CONSTRAINT, ["lead_id", "round"])
