"""The store on SQLite and on PostgreSQL (when one is reachable): migrations, publishing, labels, users."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, text

from serving.audit import audit
from serving.labels import LABEL_COLUMNS, export_labels
from serving.publish import PublishError, publish_run
from serving.security import PasswordPolicyError, key_digest
from serving.services import users
from serving.services.leads import lead_history
from serving.store import (
    Alert,
    ApiKey,
    AuditLog,
    Base,
    Case,
    Lead,
    LeadEvent,
    OutboxMessage,
    Run,
    Score,
    Series,
    User,
    Verdict,
    make_engine,
    session_factory,
    upgrade_database,
)
from waterwatch.settings import Settings

PG_URL = os.environ.get("WATERWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DISTRICTS = ("德城区", "陵城区", "禹城市")
SECTIONS = ("C1713", "F5100", "E4700", "H6110")


def make_run(out: Path, n: int = 300, version: str = "3", shift: int = 0, months: int = 6,
             as_of: str = "2026-07-01", outbox_ids=("M1", "M2"), alert_period: str = "2026-06",
             reason_codes: bool = False, city: dict | None = None) -> Path:
    """A small fake run output folder; ``shift`` rotates who ranks where, so a second run re-ranks. ``city``
    ({"folder", "name", "division"}): a province city's run, its codes and ids its own."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "" if city is None else f"{city['division']}-"
    uscc = np.array([f"9137{(city or {}).get('division', '371400')[2:]}{i:010d}" for i in range(n)])
    district = np.array([DISTRICTS[i % len(DISTRICTS)] for i in range(n)])
    industry = np.array([SECTIONS[(i // 3) % len(SECTIONS)] for i in range(n)])
    order = np.roll(np.arange(n), shift)
    pd.DataFrame({
        "rank": np.arange(1, n + 1), "uscc": uscc[order], "name": [f"德州市企业{i}有限公司" for i in order],
        "district": district[order], "industry_code": industry[order], "risk_score": np.linspace(0.99, 0.01, n),
        "reasons": "近12个月排水量是自来水供水量的3.1倍；无有效取水许可", "model_version": version,
        **({"reason_codes": json.dumps([
            {"code": "balance_excess", "value": 3.1, "unit": "ratio", "text_zh": "近12个月排水量是自来水供水量的3.1倍",
             "text_en": "Discharge was 3.1 times the supply over 12 months"},
            {"code": "no_valid_permit", "value": None, "unit": None, "text_zh": "无有效取水许可",
             "text_en": "No valid abstraction permit"}], ensure_ascii=False)} if reason_codes else {}),
    }).to_csv(out / "leads.csv", index=False)
    month = pd.date_range(end=pd.Timestamp(as_of) - pd.DateOffset(months=1), periods=months, freq="MS")
    prof = pd.DataFrame({"uscc": np.repeat(uscc, months), "month": np.tile(month, n)})
    prof["supply_m3"] = np.tile(np.arange(months, dtype=float) * 10, n)
    prof["abstraction_m3"] = 50.0
    prof["discharge_m3"] = 200.0
    prof["tax_declared_m3_q"] = np.nan
    prof.to_parquet(out / "profiles.parquet", index=False)
    pd.DataFrame({
        "alert_id": [f"{tag}A1", f"{tag}A2"], "kind": ["unpermitted", "quota"], "level": ["red", "yellow"], "uscc": uscc[:2],
        "name": ["德州市企业0有限公司", "德州市企业1有限公司"], "permit_id": [None, "P1"], "district": district[:2],
        "period": [alert_period, "2026"], "value": [1.0, 0.85], "threshold": [0.0, 0.8], "unit": ["m3", "share"],
        "message": ["无证取水", "年度取水量已达许可水量的85%"], "audience": ["bureau", "user"],
    }).to_csv(out / "alerts.csv", index=False)
    pd.DataFrame({
        "message_id": [tag + m for m in outbox_ids], "alert_id": [f"{tag}A2"] * len(outbox_ids), "uscc": [uscc[1]] * len(outbox_ids),
        "recipient": ["13800000000"] * len(outbox_ids), "text": ["【德州市水利局】提醒"] * len(outbox_ids),
        "segments": [["【德州市水利局】提醒"]] * len(outbox_ids), "segment_count": [1] * len(outbox_ids),
        "status": ["queued"] * len(outbox_ids),
    }).to_csv(out / "outbox.csv", index=False)
    pd.DataFrame({  # cases.csv as models.cases writes it (docs: INTERFACES.md)
        "case_id": [f"{tag}C-expired-1", f"{tag}C-tax-1"], "kind": ["expired_permit_in_use", "tax_verification"],
        "uscc": uscc[:2], "name": ["德州市企业0有限公司", "德州市企业1有限公司"], "district": district[:2],
        "permit_id": ["P0", ""], "project_id": ["", ""], "period": ["2026", "2026-Q2"],
        "evidence": [json.dumps({"metered_m3": 1200.0, "after_expiry": True}), json.dumps({"declared_m3": 800.0})],
        "evidence_text": ["许可证过期后仍计量取水1,200立方米", "申报水量低于核定水量"],
        "evidence_text_en": ["1,200 m3 metered after the permit expired", "declared below the verified quantity"],
        "action": ["enforcement_file", "tax_quantity_correction"], "volume_at_stake_m3": [1200.0, 400.0],
        "tax_at_stake_yuan": [3600.0, 1200.0], "verified_m3": [None, 1200.0], "alert_ids": ["A1", "A2;A9"],
        "status": ["open", "open"], "opened_as_of": [as_of, as_of],
    }).to_csv(out / "cases.csv", index=False)
    pd.DataFrame({"seller_uscc": [uscc[3]], "buyer_uscc": [uscc[6]], "source": ["groundwater"],
                  "district": [district[3]], "surplus_m3": [1000.0], "shortfall_m3": [500.0],
                  "volume_m3": [500.0]}).to_csv(out / "water_rights.csv", index=False)
    (out / "model.json").write_text(json.dumps({
        "version": version, "trained_at": "2026-11-01T00:00:00+00:00", "as_of": as_of,
        "backtest": {"precision_at_k": 0.4, "recall_at_k": 0.3},
        "artifact": str(_tiny_champion(out / "champion.joblib", version)), **({"city": city} if city else {})}),
        encoding="utf-8")
    return out


def _tiny_champion(path: Path, version) -> Path:
    """A real, small fitted model bundle, so that the service has a champion to load."""
    from models import RiskModel
    from training.artifacts import ModelBundle, save_bundle

    rng = np.random.default_rng(0)
    features = ["balance_ratio_12m", "supply_m3_12m", "discharge_m3_12m"]
    X = pd.DataFrame(rng.lognormal(size=(200, 3)), columns=features)
    y = np.full(200, -1)
    y[:3] = 1
    model = RiskModel(random_state=0, forest_trees=20).fit(X, y)
    return save_bundle(ModelBundle(model, features, {"version": str(version)}), path)


def small_settings(k: int = 20) -> Settings:
    s = Settings(database_url="sqlite://")
    s.model.officer_capacity_k = k
    return s


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=2):
            return None
    except Exception as exc:  # any failure means: no server to test against here
        return f"no PostgreSQL reachable at {PG_URL} ({type(exc).__name__}); set WATERWATCH_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_store_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a throw-away schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    why = _postgres_reachable()
    if why:
        pytest.skip(why)
    schema = f"ww_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store_url(empty_store_url):
    """A fresh database migrated to the latest schema."""
    upgrade_database(empty_store_url)
    return empty_store_url


@pytest.fixture
def sessions(store_url):
    engine = make_engine(store_url)
    yield session_factory(engine)
    engine.dispose()


def test_migrations_match_the_models(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(store_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diff == []
    from alembic.script import ScriptDirectory

    from serving.store import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()  # raises if the migrations fork
    assert version == head
    upgrade_database(store_url)  # a second upgrade is a no-op, not an error


def test_migration_0002_keeps_history_and_every_verdict(empty_store_url):
    """A store made before 0002 (history in a JSON column, an integer outbox column, two verdicts posted
    concurrently on one lead) keeps all its data: history becomes events, the later verdict is the lead's."""
    upgrade_database(empty_store_url, "0001")
    engine = make_engine(empty_store_url)
    history = [{"at": "2026-07-01T08:00:00+00:00", "event": "queued", "run_id": "r1", "rank": 3},
               {"at": "2026-07-02T09:00:00+00:00", "event": "assigned", "officer": "wang", "by": "sup"}]
    with engine.begin() as c:
        c.execute(text("INSERT INTO leads (id, uscc, status, in_queue, queue_probability, exploratory, history, "
                       "created_at, updated_at) VALUES (1, 'U1', 'closed', false, 1.0, false, :h, :t, :t)"),
                  {"h": json.dumps(history), "t": "2026-07-01 08:00:00"})
        for vid, outcome in ((1, "violation"), (2, "no_violation")):
            c.execute(text("INSERT INTO verdicts (id, lead_id, uscc, officer, outcome, visited_on, "
                           "queue_probability, recorded_at) VALUES (:i, 1, 'U1', 'wang', :o, '2026-07-03', 1.0, "
                           "'2026-07-03 10:00:00')"), {"i": vid, "o": outcome})
        c.execute(text("INSERT INTO outbox (message_id, segments, status, created_at) "
                       "VALUES ('M1', 2, 'queued', '2026-07-01 08:00:00')"))
    upgrade_database(empty_store_url)
    with session_factory(engine)() as s:
        assert [(e["event"], e.get("by"), e.get("run_id")) for e in lead_history(s, 1)] == [
            ("queued", None, "r1"), ("assigned", "sup", None)]
        verdicts = s.scalars(select(Verdict).order_by(Verdict.id)).all()
        assert [(v.round, v.superseded) for v in verdicts] == [(1, True), (2, False)]
        assert s.get(Lead, 1).round == 2
        msg = s.get(OutboxMessage, "M1")
        assert (msg.segment_count, msg.segments) == (2, [])
    engine.dispose()


def test_publish_loads_a_run(sessions, tmp_path):
    out = make_run(tmp_path / "run1")
    counts = publish_run(out, sessions, small_settings(k=20))
    assert counts["scores"] == 300 and counts["entities"] == 300
    assert counts["queue"] == 60 and counts["leads_new"] == 60  # 3 districts x capacity 20
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Lead)) == 60
        per_district = dict(s.execute(select(Lead.district, func.count()).group_by(Lead.district)).all())
        assert per_district == {d: 20 for d in DISTRICTS}
        assert s.scalar(select(func.count()).where(Lead.exploratory.is_(True))) == 3 * 2
        probs = s.scalars(select(Lead.queue_probability).where(Lead.exploratory.is_(True))).all()
        assert all(0 < p < 1 for p in probs)
        run = s.get(Run, counts["run_id"])
        assert run.model_version == "3" and run.as_of == date(2026, 7, 1)
        assert run.model_info["backtest"]["precision_at_k"] == 0.4
        series = s.get(Series, "913714000000000000").series
        assert series["month"] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
        assert series["supply_m3"] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
        assert series["tax_declared_m3"] == [None] * 6


def test_publish_keeps_the_profiles_dated_level_shift(sessions, tmp_path):
    """The lead page's shift marker is the profile stage's own dating (strongest significant shift at the
    last month), carried by publish; serving computes no feature itself."""
    out = make_run(tmp_path / "run1", n=8)
    prof = pd.read_parquet(out / "profiles.parquet")
    last = prof["month"] == prof["month"].max()
    first, second = prof["uscc"] == "913714000000000000", prof["uscc"] == "913714000000000001"
    for name in ("balance", "supply", "abstraction", "discharge"):
        prof[f"{name}_shift_score"], prof[f"{name}_shift_since"] = 0.0, pd.NaT
    prof.loc[first & last, ["balance_shift_score", "balance_shift_since"]] = [5.0, pd.Timestamp("2026-03-01")]
    prof.loc[first & last, ["discharge_shift_score", "discharge_shift_since"]] = [8.0, pd.Timestamp("2026-02-01")]
    prof.loc[second & ~last, ["discharge_shift_score", "discharge_shift_since"]] = [9.0, pd.Timestamp("2026-01-01")]
    prof.loc[second & last, ["supply_shift_score", "supply_shift_since"]] = [4.5, pd.Timestamp("2026-04-01")]
    prof.to_parquet(out / "profiles.parquet", index=False)
    publish_run(out, sessions, small_settings())
    with sessions() as s:
        since = {x.uscc: x.series["shift_since"] for x in s.scalars(select(Series))}
    assert since.pop("913714000000000000") == "2026-02" and since.pop("913714000000000001") == "2026-04"
    assert set(since.values()) == {None}


def test_publishing_the_same_run_twice_changes_nothing(sessions, tmp_path):
    out = make_run(tmp_path / "run1")
    settings = small_settings()
    first = publish_run(out, sessions, settings)

    def snapshot():
        with sessions() as s:
            leads = s.execute(select(Lead.uscc, Lead.rank, Lead.status, Lead.queue_probability, Lead.exploratory,
                                     Lead.queue_position).order_by(Lead.uscc)).all()
            return (leads, s.scalar(select(func.count()).select_from(Score)),
                    s.scalar(select(func.count()).select_from(LeadEvent)),
                    s.scalar(select(func.count()).select_from(OutboxMessage)),
                    s.scalar(select(func.count()).select_from(Run)))

    before = snapshot()
    second = publish_run(out, sessions, settings)
    assert second["run_id"] == first["run_id"]
    assert second["leads_new"] == 0 and second["outbox_new"] == 0
    assert snapshot() == before


def _close(s, lead: Lead, visited: date, officer: str = "officer_a") -> None:
    lead.status, lead.assigned_officer, lead.in_queue = "closed", officer, False
    s.add(Verdict(lead_id=lead.id, uscc=lead.uscc, officer=officer, outcome="violation", violation_type="private_well",
                  visited_on=visited, queue_probability=lead.queue_probability))


def test_republish_keeps_verdicts_statuses_and_outbox_state(sessions, tmp_path):
    settings = small_settings()
    publish_run(make_run(tmp_path / "run1"), sessions, settings)
    with sessions() as s, s.begin():
        users.create_user(s, "officer_a", "long-enough-password", "officer", "德城区")
        closed, assigned = s.scalars(select(Lead).where(Lead.district == "德城区").order_by(Lead.rank).limit(2)).all()
        _close(s, closed, date(2026, 7, 3))
        assigned.status, assigned.assigned_officer = "assigned", "officer_a"
        closed_id, assigned_id, closed_uscc = closed.id, assigned.id, closed.uscc
        s.get(OutboxMessage, "M1").status = "sent"
    # the next month's run: everyone shifts by 150 ranks, so the worked leads fall out of the top
    counts = publish_run(make_run(tmp_path / "run2", version="4", shift=150, as_of="2026-08-01",
                                  outbox_ids=("M1", "M2", "M3")), sessions, settings)
    assert counts["leads_new"] > 0 and counts["outbox_new"] == 1 and counts["closed_kept_out"] == 1
    with sessions() as s:
        closed, assigned = s.get(Lead, closed_id), s.get(Lead, assigned_id)
        assert (closed.status, closed.assigned_officer, closed.in_queue) == ("closed", "officer_a", False)
        assert (assigned.status, assigned.in_queue) == ("assigned", True)
        history = lead_history(s, assigned_id)
        assert [e["event"] for e in history] == ["queued", "re-scored"] and history[-1]["run_id"] == counts["run_id"]
        assert s.scalar(select(func.count()).select_from(Verdict)) == 1
        assert s.get(OutboxMessage, "M1").status == "sent"
        assert s.get(OutboxMessage, "M3").status == "queued" and s.get(OutboxMessage, "M3").segment_count == 1
        # the queue is this run's draw; the closed entity has no open lead and took no slot
        queued = s.scalars(select(Lead).where(Lead.in_queue.is_(True), Lead.queue_position.is_not(None))).all()
        assert len(queued) == counts["queue"] and closed_uscc not in {x.uscc for x in queued}
        assert s.scalar(select(func.count()).where(Lead.uscc == closed_uscc)) == 1
        assert s.scalar(select(func.count()).select_from(Run)) == 2


def test_closed_lead_comes_back_only_on_evidence_dated_after_the_visit(sessions, tmp_path):
    settings = small_settings()
    publish_run(make_run(tmp_path / "run1"), sessions, settings)
    top = "913714000000000000"  # rank 1 in every run below; its unpermitted alert is dated by ``alert_period``
    with sessions() as s, s.begin():
        first = s.scalars(select(Lead).where(Lead.uscc == top)).one()
        _close(s, first, date(2026, 7, 3))
        first_id = first.id
    # evidence from before the visit (June) does not bring it back
    kept = publish_run(make_run(tmp_path / "run2", as_of="2026-08-01", alert_period="2026-06"), sessions, settings)
    assert kept["leads_reraised"] == 0 and kept["closed_kept_out"] == 1
    with sessions() as s:
        assert s.scalars(select(Lead.id).where(Lead.uscc == top)).all() == [first_id]
    # an alert of August, after the July visit, does: a new lead that points back to the closed one
    back = publish_run(make_run(tmp_path / "run3", as_of="2026-09-01", alert_period="2026-08"), sessions, settings)
    assert back["leads_reraised"] == 1
    with sessions() as s:
        new = s.scalars(select(Lead).where(Lead.uscc == top, Lead.status != "closed")).one()
        assert new.previous_lead_id == first_id and new.in_queue and new.id != first_id
        assert s.get(Lead, first_id).status == "closed"
        event = lead_history(s, new.id)[0]
        assert event["event"] == "queued" and event["evidence"] == ["alert:unpermitted:2026-08"]


def test_publish_without_leads_is_a_clear_error(sessions, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PublishError, match="leads.csv"):
        publish_run(tmp_path / "empty", sessions, small_settings())


def test_export_labels_in_contract_format(sessions, tmp_path):
    publish_run(make_run(tmp_path / "run1"), sessions, small_settings())
    with sessions() as s, s.begin():
        leads = s.scalars(select(Lead).order_by(Lead.rank).limit(2)).all()
        explore = s.scalars(select(Lead).where(Lead.exploratory.is_(True)).limit(1)).one()
        for lead, outcome, vtype in ((leads[0], "violation", "meter_tampering"), (leads[1], "unreachable", None),
                                     (explore, "no_violation", None)):
            s.add(Verdict(lead_id=lead.id, uscc=lead.uscc, officer="officer_a", outcome=outcome,
                          violation_type=vtype, visited_on=date(2026, 7, 5), queue_probability=lead.queue_probability))
        explore_p = explore.queue_probability
    with sessions() as s:
        n = export_labels(s, tmp_path / "labels" / "inspections.csv")
        export_labels(s, tmp_path / "labels" / "inspections.parquet")
    assert n == 3
    csv = pd.read_csv(tmp_path / "labels" / "inspections.csv", dtype=str)
    assert list(csv.columns) == LABEL_COLUMNS
    assert csv["outcome"].tolist() == ["violation", "unreachable", "no_violation"]
    assert csv["violation_type"].tolist()[0] == "meter_tampering" and csv["violation_type"].isna().sum() == 2
    assert csv["inspected_on"].tolist() == ["2026-07-05"] * 3
    assert csv["inspection_id"].is_unique
    assert [float(p) for p in csv["queue_probability"]] == [1.0, 1.0, pytest.approx(explore_p)]
    pq = pd.read_parquet(tmp_path / "labels" / "inspections.parquet")
    assert pq["inspected_on"].dtype.kind == "M" and len(pq) == 3


def test_users_passwords_and_api_keys(sessions):
    with sessions() as s, s.begin():
        user = users.create_user(s, "sup", "correct horse battery", "supervisor")
        assert user.password_hash and "correct horse" not in user.password_hash
        key = users.create_api_key(s, "sup", label="sms gateway")
        with pytest.raises(ValueError, match="already exists"):
            users.create_user(s, "sup", "another long password", "analyst")
        with pytest.raises(ValueError, match="role"):
            users.create_user(s, "x", "another long password", "mayor")
        with pytest.raises(ValueError, match="district"):
            users.create_user(s, "y", "another long password", "officer")
        with pytest.raises(PasswordPolicyError):
            users.create_user(s, "z", "short", "analyst", production=True)
        with pytest.raises(PasswordPolicyError):
            users.create_user(s, "z", "passwordpassword", "analyst", production=True)
    with sessions() as s:
        stored = s.scalars(select(ApiKey.key_hash)).one()
        assert key not in stored and stored == key_digest(key) and len(stored) == 64
        actions = s.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
        assert actions == ["user_create", "key_create"]


def test_user_changes_revoke_and_are_audited(sessions):
    with sessions() as s, s.begin():
        users.create_user(s, "wang", "a-long-enough-password", "officer", "德城区")
        users.create_api_key(s, "wang", "tablet")
    with sessions() as s, s.begin():
        users.set_active(s, "wang", False)  # its key too, for good
        users.set_password(s, "wang", "another-long-password")
        users.set_active(s, "wang", True)
        assert users.revoke_keys(s, "wang") == 0
        users.create_api_key(s, "wang", "new tablet")
        assert users.revoke_keys(s, "wang") == 1 and users.revoke_keys(s, "wang") == 0
    with sessions() as s:
        wang = s.scalars(select(User).where(User.username == "wang")).one()
        assert wang.active and wang.token_version == 2  # deactivation and the new password each revoke tokens
        assert [r.keys for r in users.list_users(s)] == [0]
        assert s.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()[2:] == [
            "user_deactivate", "key_revoke", "user_password", "user_reactivate", "key_create", "key_revoke"]


def test_demo_users_only_outside_production(sessions):
    with sessions() as s, s.begin():
        assert users.ensure_demo_users(s, production=True, districts=["德城区"]) == []
        assert s.scalar(select(func.count()).select_from(User)) == 0
        created = users.ensure_demo_users(s, production=False, districts=["德城区", "禹城市"])
        assert {"supervisor", "officer1", "officer2"} <= set(created)
        assert users.ensure_demo_users(s, production=False, districts=["德城区", "禹城市"]) == []
        assert s.scalar(select(User.district).where(User.username == "officer1")) == "德城区"
        assert set(users.demo_logins(s)) == set(created)
        users.set_password(s, "supervisor", "a-real-password-now")
        users.set_active(s, "officer1", False)
        assert "supervisor" not in users.demo_logins(s) and "officer1" not in users.demo_logins(s)


def test_audit_detail_roundtrips_json(sessions):
    with sessions() as s, s.begin():
        audit(s, "sup", "assign", "lead", 7, {"officer": "张三", "previous": None})
    with sessions() as s:
        row = s.scalars(select(AuditLog)).one()
        assert row.detail == {"officer": "张三", "previous": None} and row.object_id == "7" and row.at is not None


DEZHOU = {"folder": "city=371400", "name": "德州市", "division": "371400"}
LIAOCHENG = {"folder": "city=371500", "name": "聊城市", "division": "371500"}


def test_a_province_store_keeps_each_citys_queue(sessions, tmp_path):
    """Two cities of a province run published into one store: each lead, alert and case carries its city, and
    publishing (or re-publishing) one city's run leaves the other's queue, register and series alone."""
    from serving.services.leads import IN_QUEUE, select_leads
    from serving.services.scope import Scope

    settings = small_settings(k=10)
    assert publish_run(make_run(tmp_path / "dz", n=120, city=DEZHOU), sessions, settings)["city"] == "德州市"

    def queue(s, city):
        return dict(s.execute(select(Lead.uscc, Lead.id).where(Lead.in_queue.is_(True), Lead.city == city)).all())

    with sessions() as s:
        dz_queue = queue(s, "德州市")
    assert len(dz_queue) == 30  # 3 districts x 10
    assert publish_run(make_run(tmp_path / "lc", n=90, city=LIAOCHENG), sessions, settings)["city"] == "聊城市"
    with sessions() as s:
        assert queue(s, "德州市") == dz_queue  # Liaocheng's run did not take Dezhou's leads out of its queue
        lc_queue = queue(s, "聊城市")
        assert len(lc_queue) == 30 and all(u.startswith("91371500") for u in lc_queue)
        assert s.scalar(select(func.count()).select_from(Lead).where(Lead.city.is_(None))) == 0
        for model in (Alert, Case):
            assert dict(s.execute(select(model.city, func.count()).group_by(model.city)).all()) == {
                "德州市": 2, "聊城市": 2}
        assert s.scalar(select(func.count()).select_from(Series)) == 120 + 90
        liaocheng = Scope("聊城市", every_city=False)
        assert s.scalar(select(func.count()).select_from(select_leads(IN_QUEUE, liaocheng).subquery())) == 30
        assert s.scalar(select(func.count()).select_from(select_leads(IN_QUEUE).subquery())) == 60

    # Dezhou's next run re-ranks Dezhou's queue only
    publish_run(make_run(tmp_path / "dz2", n=120, shift=7, city=DEZHOU), sessions, settings)
    with sessions() as s:
        assert queue(s, "聊城市") == lc_queue
        assert len(queue(s, "德州市")) == 30 and queue(s, "德州市") != dz_queue
        assert s.scalar(select(func.count()).select_from(Series)) == 120 + 90
        assert s.scalar(select(func.count()).select_from(Lead).where(Lead.in_queue.is_(True))) == 60
