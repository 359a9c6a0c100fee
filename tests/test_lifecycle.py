"""Lifecycle rules a reviewer found broken: a deactivated user's API keys stay revoked after reactivation, a
lead re-assigned to the officer who holds it changes nothing (also under concurrent posts), an unreachable
visit sends the lead back to the queue instead of closing it (schema migration c005), and an officer's
district must be one the published leads know."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from serving.labels import verdict_labels
from serving.publish import publish_run
from serving.services import users
from serving.store import (
    ApiKey,
    Assignment,
    AuditLog,
    Lead,
    LeadEvent,
    User,
    Verdict,
    make_engine,
    session_factory,
    upgrade_database,
)
from test_api import Api, template_db  # noqa: F401 - the fixture is used by ``api``
from test_security import served, store  # noqa: F401 - the fixture is used by the concurrent tests
from test_store import empty_store_url, make_run  # noqa: F401 - the fixture is used by ``store``


@pytest.fixture
def api(tmp_path, template_db):  # noqa: F811 - pytest's fixture injection
    a = Api(tmp_path, template_db)
    yield a
    a.client.__exit__(None, None, None)
    a.engine.dispose()


def _audit(api, action: str) -> list[AuditLog]:
    with api.sessions() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def _count(sessions, model, *where) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


# -- 1. deactivation revokes API keys for good -------------------------------------------------------------


def test_a_reactivated_user_does_not_get_its_old_api_keys_back(api):
    key = {"X-API-Key": api.gateway_key}
    assert api.client.get("/api/v1/model", headers=key).status_code == 200
    with api.sessions() as s, s.begin():
        users.set_active(s, "gateway", False)
    assert api.client.get("/api/v1/model", headers=key).status_code == 401
    with api.sessions() as s, s.begin():
        users.set_active(s, "gateway", True)
    assert api.client.get("/api/v1/model", headers=key).status_code == 401  # a leaked key stays shut off
    with api.sessions() as s, s.begin():
        fresh = {"X-API-Key": users.create_api_key(s, "gateway", "after reactivation")}
        assert [r.keys for r in users.list_users(s) if r.username == "gateway"] == [1]
    assert api.client.get("/api/v1/model", headers=fresh).status_code == 200
    revoked = _audit(api, "key_revoke")
    assert [(a.actor, a.detail["user"], a.detail["reason"]) for a in revoked] == [("cli", "gateway", "user_deactivate")]
    with api.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.id >= revoked[0].id - 1)
                                                .order_by(AuditLog.id))]
    assert actions == ["user_deactivate", "key_revoke", "user_reactivate", "key_create"]


def test_reactivation_revokes_keys_an_older_deactivation_left_live(api):
    """A store deactivated before keys were revoked with the user (or by SQL) still holds live keys: they are
    revoked when the user comes back, not revived."""
    with api.sessions() as s, s.begin():
        s.execute(text("UPDATE users SET active = false WHERE username = 'gateway'"))
    with api.sessions() as s, s.begin():
        users.set_active(s, "gateway", True)
    assert api.client.get("/api/v1/model", headers={"X-API-Key": api.gateway_key}).status_code == 401
    assert _count(api.sessions, ApiKey, ApiKey.revoked.is_(False)) == 0
    assert [a.detail["reason"] for a in _audit(api, "key_revoke")] == ["user_reactivate"]


# -- 2. assigning a lead to the officer who holds it ---------------------------------------------------------


def test_re_assigning_a_lead_to_its_officer_changes_nothing(api):
    lead, me = api.lead_in("德城区"), api.h("off_dc")
    assert api.client.post(f"/api/v1/leads/{lead}/assign", headers=me, json={"officer": "off_dc"}).status_code == 200
    assert api.client.post(f"/api/v1/leads/{lead}/start", headers=me).json()["status"] == "in_progress"
    for who in (me, api.h("sup")):  # the officer again, then a supervisor giving it to the same officer
        r = api.client.post(f"/api/v1/leads/{lead}/assign", headers=who, json={"officer": "off_dc"})
        assert r.status_code == 200 and (r.json()["status"], r.json()["assigned_officer"]) == ("in_progress", "off_dc")
    assert _count(api.sessions, Assignment, Assignment.lead_id == lead) == 1
    assert _count(api.sessions, LeadEvent, LeadEvent.lead_id == lead, LeadEvent.event == "assigned") == 1
    assert len(_audit(api, "assign")) == 1
    r = api.client.post(f"/api/v1/leads/{lead}/assign", headers=api.h("sup"), json={"officer": "off_dc2"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["assigned_officer"]) == ("assigned", "off_dc2")
    assert _count(api.sessions, Assignment, Assignment.lead_id == lead) == 2


def test_concurrent_assigns_write_once(store, report_metric):  # noqa: F811 - pytest's fixture injection
    """Ten concurrent self-assigns by one officer: one assignment; then officers racing for another lead: one
    gets it, the others are refused (never two owners, never an event for a refused post)."""
    mine, raced = store.leads("德城区", n=2)
    headers = {name: store.h(name) for name in ("off_dc", "off_dc2")}
    barrier = threading.Barrier(10)
    with served(store.app) as base, httpx.Client(base_url=base, timeout=60) as client:
        def take(lead: int, officer: str) -> tuple[int, str | None]:
            barrier.wait()
            r = client.post(f"/api/v1/leads/{lead}/assign", headers=headers[officer], json={"officer": officer})
            return r.status_code, r.json().get("assigned_officer")

        with ThreadPoolExecutor(10) as pool:
            same = list(pool.map(lambda _: take(mine, "off_dc"), range(10)))
            racing = list(pool.map(lambda i: (i % 2, *take(raced, ("off_dc", "off_dc2")[i % 2])), range(10)))
    assert same == [(200, "off_dc")] * 10
    [winner] = {who for _, code, who in racing if code == 200}
    mine_or_not = {(("off_dc", "off_dc2")[i] == winner, code) for i, code, _ in racing}
    assert mine_or_not == {(True, 200), (False, 403)}  # the winner's other posts change nothing; the loser's: 403
    codes = [c for _, c, _ in racing]
    report_metric(f"10 concurrent self-assigns of one lead ({store.engine.dialect.name}): "
                  f"{[c for c, _ in same].count(200)} x 200, one assignment; two officers racing, 10 posts: "
                  f"{codes.count(200)} x 200 (the winner's), {codes.count(403)} x 403, one assignment")
    for lead in (mine, raced):
        assert _count(store.sessions, Assignment, Assignment.lead_id == lead) == 1
        assert _count(store.sessions, LeadEvent, LeadEvent.lead_id == lead, LeadEvent.event == "assigned") == 1
        assert _count(store.sessions, AuditLog, AuditLog.action == "assign", AuditLog.object_id == str(lead)) == 1


# -- 3. an unreachable visit goes back to the queue ------------------------------------------------------------


def test_an_unreachable_visit_is_recorded_and_the_lead_stays_in_the_queue(api):
    lead, me = api.lead_in("德城区"), api.h("off_dc")
    api.client.post(f"/api/v1/leads/{lead}/assign", headers=me, json={"officer": "off_dc"})
    api.client.post(f"/api/v1/leads/{lead}/start", headers=me)
    visit = {"outcome": "unreachable", "note": "大门紧锁，无人应答", "visited_on": date.today().isoformat()}
    first = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=me, json=visit)
    assert first.status_code == 201 and first.json()["outcome"] == "unreachable"
    again = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=me, json=visit)  # the form sent twice
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    detail = api.client.get(f"/api/v1/leads/{lead}", headers=api.h("sup")).json()
    assert (detail["status"], detail["assigned_officer"]) == ("assigned", "off_dc")
    queue = api.client.get("/api/v1/leads", headers=me, params={"page_size": 100}).json()["items"]
    assert lead in [x["id"] for x in queue]
    assert [x["id"] for x in api.client.get("/api/v1/me/leads", headers=me).json()["items"]] == [lead]
    [logged] = _audit(api, "verdict")
    assert logged.detail["outcome"] == "unreachable" and logged.detail["lead_status"] == "assigned"
    # tried again: a conclusive verdict closes the lead in the same round; a second one is refused
    done = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=me, json={"outcome": "no_violation"})
    assert done.status_code == 201 and done.json()["round"] == first.json()["round"]
    assert api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=me,
                           json={"outcome": "unreachable"}).status_code == 409
    detail = api.client.get(f"/api/v1/leads/{lead}", headers=api.h("sup")).json()
    assert detail["status"] == "closed" and [v["outcome"] for v in detail["verdicts"]] == ["unreachable", "no_violation"]
    with api.sessions() as s:
        assert verdict_labels(s)["outcome"].tolist() == ["unreachable", "no_violation"]  # training drops unreachable
    amend = {"outcome": "unreachable", "reason": "其实没见到人"}
    assert api.client.post(f"/api/v1/leads/{lead}/verdict/amend", headers=api.h("sup"), json=amend).status_code == 422


def test_an_unreachable_lead_keeps_its_queue_slot_at_the_next_publish(api):
    lead = api.lead_in("禹城市")
    r = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=api.h("sup"), json={"outcome": "unreachable"})
    assert r.status_code == 201
    with api.sessions() as s:
        row = s.get(Lead, lead)
        assert (row.status, row.assigned_officer, row.in_queue) == ("new", None, True)  # nobody took it: open to all
    counts = publish_run(make_run(api.tmp / "run2", version="4", as_of="2026-08-01"), api.sessions, api.settings)
    assert counts["closed_kept_out"] == 0  # re-ranked as an open lead, not kept out nor replaced
    with api.sessions() as s:
        row = s.get(Lead, lead)
        assert (row.status, row.in_queue, row.run_id) == ("new", True, counts["run_id"])
        assert s.scalar(select(func.count()).where(Lead.uscc == row.uscc)) == 1


def test_the_store_holds_one_conclusive_verdict_per_round_and_any_number_of_visits(api):
    lead = api.lead_in("陵城区")
    with api.sessions() as s:
        uscc = s.get(Lead, lead).uscc

    def add(outcome: str) -> None:
        with api.sessions() as s, s.begin():
            s.add(Verdict(lead_id=lead, uscc=uscc, officer="off_x", outcome=outcome, visited_on=date(2026, 7, 3)))

    add("unreachable")
    add("unreachable")
    add("violation")
    with pytest.raises(IntegrityError):
        add("no_violation")


def test_a_closed_leads_visit_date_is_its_verdicts_not_an_earlier_unreachable_visits(api):
    """Evidence after the visit re-raises a closed entity: the visit is the one that closed the lead."""
    from serving.publish import _closed_visits

    lead, me = api.lead_in("德城区"), api.h("off_dc")
    for outcome, on in (("unreachable", "2026-07-10"), ("no_violation", "2026-07-05")):
        r = api.client.post(f"/api/v1/leads/{lead}/verdicts", headers=me, json={"outcome": outcome, "visited_on": on})
        assert r.status_code == 201
    with api.sessions() as s:
        uscc = s.get(Lead, lead).uscc
        assert _closed_visits(s, {uscc: lead}) == {uscc: date(2026, 7, 5)}


def test_concurrent_posts_with_unreachable_visits_store_one_conclusive_verdict(store, report_metric):  # noqa: F811
    lead = store.leads("德城区")[0]
    headers = [store.h("sup"), store.h("adm"), store.h("off_dc")]
    bodies = [{"outcome": "unreachable"}, {"outcome": "no_violation"},
              {"outcome": "violation", "violation_type": "private_well"}]
    barrier = threading.Barrier(12)
    with served(store.app) as base, httpx.Client(base_url=base, timeout=60) as client:
        def post(i: int) -> tuple[int, str, int | None]:
            barrier.wait()
            r = client.post(f"/api/v1/leads/{lead}/verdicts", headers=headers[i % 3], json=bodies[(i // 3) % 3])
            return r.status_code, bodies[(i // 3) % 3]["outcome"], r.json().get("id")

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(post, range(12)))
    conclusive = [code for code, outcome, _ in results if outcome != "unreachable"]
    assert sorted(conclusive) == [201] + [409] * (len(conclusive) - 1)
    assert {code for code, _, _ in results} <= {201, 409}
    with store.sessions() as s:
        stored = dict(s.execute(select(Verdict.id, Verdict.outcome).where(Verdict.lead_id == lead)).all())
        assert s.get(Lead, lead).status == "closed"
    assert len([o for o in stored.values() if o != "unreachable"]) == 1
    assert set(stored) == {vid for code, _, vid in results if code == 201}  # each one stored was answered 201
    report_metric(f"12 concurrent posts on one lead, 6 unreachable ({store.engine.dialect.name}): "
                  f"{len(stored) - 1} unreachable visit(s) and 1 conclusive verdict stored, "
                  f"{sorted(conclusive).count(409)} of 6 conclusive posts 409")


def test_migration_c005_sends_leads_closed_by_an_unreachable_visit_back(empty_store_url):  # noqa: F811
    """A store from before c005: the latest lead of an entity closed by an unreachable visit goes back to its
    officer's queue (event and audit by system); one whose entity has an open lead stays closed. Down to c004
    and up again: rounds are renumbered so that each verdict has its own, and the schema matches the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from serving.store import Base, downgrade_database

    upgrade_database(empty_store_url, "c004")
    engine = make_engine(empty_store_url)
    leads = [(1, "U1", "closed", "wang"), (2, "U2", "closed", None), (3, "U2", "new", None), (4, "U3", "closed", "li")]
    verdicts = [(1, "U1", "unreachable"), (2, "U2", "unreachable"), (4, "U3", "no_violation")]
    with engine.begin() as c:
        for lid, uscc, status, officer in leads:
            c.execute(text("INSERT INTO leads (id, uscc, status, in_queue, assigned_officer, queue_probability, "
                           "exploratory, round, created_at, updated_at) VALUES (:i, :u, :s, :q, :o, 1.0, false, 1, "
                           "'2026-07-01 08:00:00', '2026-07-01 08:00:00')"),
                      {"i": lid, "u": uscc, "s": status, "q": status != "closed", "o": officer})
        for lid, uscc, outcome in verdicts:  # ids from the database's own sequence (the model adds one later)
            c.execute(text("INSERT INTO verdicts (lead_id, uscc, officer, outcome, visited_on, queue_probability, "
                           "recorded_at, round, superseded) VALUES (:l, :u, 'wang', :o, '2026-07-03', 1.0, "
                           "'2026-07-03 10:00:00', 1, false)"), {"l": lid, "u": uscc, "o": outcome})
        visit = c.execute(text("SELECT id FROM verdicts WHERE lead_id = 1")).scalar()
    upgrade_database(empty_store_url)
    sessions = session_factory(engine)
    with sessions() as s:
        state = {x.id: (x.status, x.in_queue) for x in s.scalars(select(Lead))}
        assert state == {1: ("assigned", True), 2: ("closed", False), 3: ("new", True), 4: ("closed", False)}
        events = s.execute(select(LeadEvent.lead_id, LeadEvent.event, LeadEvent.actor)).all()
        assert events == [(1, "reopened", "system")]
        [logged] = s.scalars(select(AuditLog).where(AuditLog.action == "reopen")).all()
        assert (logged.actor, logged.object_id, logged.detail["verdict_id"]) == ("system", "1", visit)
        verdict = Verdict(lead_id=1, uscc="U1", officer="wang", outcome="violation", visited_on=date(2026, 8, 1),
                          round=1)  # the lead's verdict, in the round of its unreachable visit
        s.add(verdict)
        s.commit()
    downgrade_database(empty_store_url, "c004")
    with engine.begin() as c:
        rounds = c.execute(text("SELECT id, round FROM verdicts WHERE lead_id = 1 ORDER BY id")).all()
        assert rounds == [(visit, 1), (verdict.id, 2)]
        assert c.execute(text("SELECT round FROM leads WHERE id = 1")).scalar() == 3  # open: its next verdict's
    upgrade_database(empty_store_url)
    with engine.connect() as c:
        assert [d for d in compare_metadata(MigrationContext.configure(c), Base.metadata) if "verdicts" in repr(d)] == []
    engine.dispose()


# -- 4. an officer's district is one the published leads know --------------------------------------------------


def test_an_officer_needs_a_district_the_store_knows(api):
    with api.sessions() as s, s.begin():
        with pytest.raises(ValueError, match="district"):
            users.create_user(s, "blank", "a-long-enough-password", "officer", "  ")
        with pytest.raises(ValueError, match="德城区, 禹城市, 陵城区") as refused:
            users.create_user(s, "typo", "a-long-enough-password", "officer", "德城")
        assert "'德城'" in str(refused.value)
        assert users.create_user(s, "trim", "a-long-enough-password", "officer", " 德城区 ").district == "德城区"
        with pytest.raises(ValueError, match="unknown district"):
            users.set_city(s, "trim", None, "德城")
        assert users.known_districts(s, "聊城市") == []  # no leads of that city: nothing to check against
        users.create_user(s, "lc", "a-long-enough-password", "officer", "东昌府区", city="聊城市")


def test_users_add_refuses_an_unknown_district_and_warns_where_it_cannot_check(tmp_path):
    from waterwatch.cli import app

    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false"}
    runner = CliRunner()
    assert runner.invoke(app, ["publish", "--out", str(make_run(tmp_path / "run", n=12))], env=env).exit_code == 0
    add = ["users", "add", "typo", "--role", "officer", "--password", "a-long-enough-password", "--district"]
    typo = runner.invoke(app, [*add, "德城"], env=env)
    assert typo.exit_code == 2 and "德城区, 禹城市, 陵城区" in typo.output
    assert runner.invoke(app, [*add, " "], env=env).exit_code == 2
    unchecked = runner.invoke(app, [*add, "东昌府区", "--city", "聊城市"], env=env)
    assert unchecked.exit_code == 0 and "warning" in unchecked.output and "东昌府区" in unchecked.output
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'waterwatch.db'}")
    with session_factory(engine)() as s:
        assert s.scalars(select(User.district)).all() == ["东昌府区"]
    engine.dispose()
