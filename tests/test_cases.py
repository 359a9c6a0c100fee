"""The case track: known answers on hand-made cities, stable ids across runs, every documented breach in
exactly one case, and the tax verification and expired-permit evidence recomputed on the sample drop."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_rules import U1, U2, U3, U4, U5, entity, make_tables, meter, permit

from models.cases import ACTIONS, CASE_COLUMNS, build_cases
from models.rules import run_checks
from models.settings import RuleSettings

RULES = RuleSettings()
BREACH = {"expired_permit", "unpermitted", "tax_mismatch", "source_prevention"}


def cases_at(tables, as_of) -> tuple[pd.DataFrame, pd.DataFrame]:
    alerts = run_checks(tables, None, pd.Timestamp(as_of), RULES)
    return build_cases(tables, None, alerts, pd.Timestamp(as_of), RULES), alerts


def by_kind(cases: pd.DataFrame, kind: str) -> pd.DataFrame:
    return cases[cases["kind"] == kind].reset_index(drop=True)


def monthly(pid: str, first: str, last: str, volume: float) -> list[dict]:
    return [meter(pid, m.strftime("%Y-%m-%d"), volume) for m in pd.date_range(first, last, freq="MS")]


def assert_breaches_grouped(cases: pd.DataFrame, alerts: pd.DataFrame) -> None:
    """Every documented-breach alert sits in exactly one case; no other alert is in any case."""
    breach = alerts[alerts["kind"].isin(BREACH) | ((alerts["kind"] == "quota") & (alerts["level"] == "red"))]
    grouped = [a for ids in cases["alert_ids"] for a in ids.split(";")]
    assert sorted(grouped) == sorted(breach["alert_id"])
    assert cases["case_id"].is_unique
    assert list(cases.columns) == CASE_COLUMNS
    assert (cases["action"] == cases["kind"].map(ACTIONS)).all() and (cases["status"] == "open").all()
    for text in cases["evidence"]:
        assert isinstance(json.loads(text), dict)


def test_expired_permit_in_use_is_one_case_per_permit_across_years_and_runs():
    meters = monthly("P1", "2025-01-01", "2026-03-01", 100.0) + monthly("P2", "2025-10-01", "2026-03-01", 50.0)
    tables = make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[permit("P1", U1, end="2025-06-30"), permit("P2", U2, status="revoked")],
        abstraction=meters,
    )
    cases, alerts = cases_at(tables, "2026-03-01")
    assert_breaches_grouped(cases, alerts)
    expired = by_kind(cases, "expired_permit_in_use").set_index("permit_id")
    # P1: July 2025 to February 2026, two alerts (one per calendar year), one case
    assert expired.loc["P1", "volume_at_stake_m3"] == 800.0
    assert len(expired.loc["P1", "alert_ids"].split(";")) == 2
    assert expired.loc["P1", "period"] == "2025-06" and expired.loc["P1", "action"] == "enforcement_file"
    evidence = json.loads(expired.loc["P1", "evidence"])
    assert evidence["months"] == 8 and evidence["first_month"] == "2025-07" and evidence["after_expiry"] is True
    assert "800m³" in expired.loc["P1", "evidence_text"] and "800 m³" in expired.loc["P1", "evidence_text_en"]
    # P2: revoked, the last three months count
    assert expired.loc["P2", "volume_at_stake_m3"] == 150.0
    assert json.loads(expired.loc["P2", "evidence"])["permit_status"] == "revoked"
    # a month later the same breaches keep their ids, with the new month's water added
    later, _ = cases_at(tables, "2026-04-01")
    later = by_kind(later, "expired_permit_in_use").set_index("permit_id")
    assert later.loc["P1", "case_id"] == expired.loc["P1", "case_id"]
    assert later.loc["P1", "volume_at_stake_m3"] == 900.0
    assert (later["opened_as_of"] == "2026-04-01").all()


def test_unpermitted_use_from_tax_filings_and_unknown_meters():
    tables = make_tables(
        entities=[entity(U1), entity(U3)],
        permits=[permit("S1", U1, source="surface")],
        abstraction=[meter("NOPE", "2026-03-01", 55.0), meter("NOPE", "2026-04-01", 45.0)],
        tax=[
            {"uscc": U1, "period": "2026-Q1", "source": "groundwater", "declared_m3": 300.0, "tax_yuan": 900.0},
            {"uscc": U1, "period": "2026-Q2", "source": "groundwater", "declared_m3": 200.0, "tax_yuan": 600.0},
            {"uscc": U1, "period": "2026-Q1", "source": "surface", "declared_m3": 300.0, "tax_yuan": 300.0},  # covered
            {"uscc": U3, "period": "2026-Q1", "source": "surface", "declared_m3": 80.0, "tax_yuan": 80.0},
        ],
    )
    cases, alerts = cases_at(tables, "2026-07-01")
    assert_breaches_grouped(cases, alerts)
    found = {(c.uscc, c.permit_id, c.period): c.volume_at_stake_m3 for c in by_kind(cases, "unpermitted_use").itertuples()}
    assert found == {(U1, "", "2026"): 500.0, (U3, "", "2026"): 80.0, ("", "NOPE", "2026"): 100.0}
    u1 = by_kind(cases, "unpermitted_use").set_index("uscc").loc[U1]
    assert json.loads(u1["evidence"]) == {"declared_m3": 500.0, "quarters": ["2026-Q1", "2026-Q2"],
                                          "by_source_m3": {"groundwater": 500.0}}
    assert len(u1["alert_ids"].split(";")) == 2


def test_quota_red_cases_carry_use_limit_and_excess_and_only_red_counts():
    tables = make_tables(
        entities=[entity(U1), entity(U2), entity(U3)],
        permits=[permit("RED", U1, quota=1200.0), permit("YELLOW", U2, quota=1200.0)],
        abstraction=monthly("RED", "2026-01-01", "2026-06-01", 250.0) + monthly("YELLOW", "2026-01-01", "2026-06-01", 170.0),
        plans=[{"uscc": U1, "year": 2026, "planned_m3": 1000.0}],
    )
    cases, alerts = cases_at(tables, "2026-07-01")
    assert_breaches_grouped(cases, alerts)
    red = by_kind(cases, "quota_red")
    assert set(zip(red["uscc"], red["permit_id"])) == {(U1, "RED"), (U1, "")}  # the permit and the plan
    permit_case = red.set_index("permit_id").loc["RED"]
    assert json.loads(permit_case["evidence"]) == {"basis": "permit", "used_m3": 1500.0, "limit_m3": 1200.0, "ratio": 1.25,
                                                   "excess_m3": 300.0, "months": 6}
    assert permit_case["volume_at_stake_m3"] == 300.0 and permit_case["action"] == "notice"
    plan_case = red.set_index("permit_id").loc[""]
    assert json.loads(plan_case["evidence"])["ratio"] == 1.5 and plan_case["volume_at_stake_m3"] == 500.0
    assert "累进加价" in plan_case["evidence_text"]


def test_tax_verification_by_meter_by_permit_and_per_taxpayer_quarter():
    q1 = (("2026-01-01", 300.0), ("2026-02-01", 300.0), ("2026-03-01", 400.0))
    tables = make_tables(
        entities=[entity(u) for u in (U1, U2, U3, U4)],
        permits=[permit("P1", U1), permit("P2", U2, quota=3650.0), permit("G3", U3), permit("S3", U3, source="surface"),
                 permit("P4", U4)],
        abstraction=[meter("P1", m, v) for m, v in q1] + [meter("G3", m, v) for m, v in q1]
        + [meter("S3", m, 500.0 / 3) for m, _ in q1] + [meter("P4", m, v) for m, v in q1]
        + [meter("P2", "2025-12-01", 10.0)],  # P2's meter reported once before the quarter, not in it
        tax=[
            {"uscc": U1, "period": "2026-Q1", "source": "groundwater", "declared_m3": 600.0, "tax_yuan": 2400.0},
            {"uscc": U2, "period": "2026-Q1", "source": "groundwater", "declared_m3": 500.0, "tax_yuan": 1500.0},
            {"uscc": U3, "period": "2026-Q1", "source": "groundwater", "declared_m3": 1000.0, "tax_yuan": 3000.0},
            {"uscc": U3, "period": "2026-Q1", "source": "surface", "declared_m3": 100.0, "tax_yuan": 100.0},
            {"uscc": U4, "period": "2026-Q1", "source": "groundwater", "declared_m3": 980.0, "tax_yuan": 2940.0},
        ],
    )
    cases, alerts = cases_at(tables, "2026-07-01")
    assert_breaches_grouped(cases, alerts)
    tax = by_kind(cases, "tax_verification").set_index("uscc")
    assert set(tax.index) == {U1, U2, U3}  # U4 declared within the tolerance
    assert (tax["period"] == "2026-Q1").all() and (tax["action"] == "tax_quantity_correction").all()
    # U1: a working meter: verified = metered 1,000; 400 m³ undeclared at the declaration's 4 yuan
    assert tax.loc[U1, "verified_m3"] == 1000.0
    assert tax.loc[U1, "volume_at_stake_m3"] == 400.0 and tax.loc[U1, "tax_at_stake_yuan"] == 1600.0
    # U2: no reading in the quarter: the permitted quantity, 3,650 m³ a year over the quarter's 90 days
    assert tax.loc[U2, "verified_m3"] == pytest.approx(900.0)
    source = json.loads(tax.loc[U2, "evidence"])["sources"][0]
    assert source["basis"] == "permit" and source["permitted_m3"] == 900.0 and source["metered_m3"] == 0.0
    assert tax.loc[U2, "tax_at_stake_yuan"] == 1200.0
    # U3: both sources in one case (only surface was off), verified 1,000 + 500
    assert tax.loc[U3, "verified_m3"] == pytest.approx(1500.0)
    assert len(tax.loc[U3, "alert_ids"].split(";")) == 1
    assert {s["source"]: s["verified_m3"] for s in json.loads(tax.loc[U3, "evidence"])["sources"]} == {
        "groundwater": 1000.0, "surface": 500.0}
    assert "核定水量合计1500m³" in tax.loc[U3, "evidence_text"]


def test_source_prevention_is_one_case_per_project_from_approval_to_construction():
    tables = make_tables(
        entities=[entity(U1), entity(U5)],
        permits=[permit("G5", U5)],
        projects=[
            {"project_id": "NEW", "uscc": U1, "project_name": "新建厂房项目", "kind": "industrial",
             "approved_on": "2026-05-10", "construction_start_on": "2026-07-15", "dewatering": True,
             "expected_annual_water_m3": 5000.0},
            {"project_id": "OK", "uscc": U5, "project_name": "有证单位项目", "kind": "industrial",
             "approved_on": "2026-05-10", "dewatering": False},
        ],
    )
    approved, alerts = cases_at(tables, "2026-07-01")
    assert_breaches_grouped(approved, alerts)
    case = by_kind(approved, "source_prevention")
    assert list(case["project_id"]) == ["NEW"] and case.loc[0, "action"] == "procedure_guidance"
    assert case.loc[0, "period"] == "2026-05" and case.loc[0, "volume_at_stake_m3"] == 5000.0
    assert "已立项" in case.loc[0, "evidence_text"] and "疏干排水" in case.loc[0, "evidence_text"]
    started, _ = cases_at(tables, "2026-08-01")
    started = by_kind(started, "source_prevention")
    assert started.loc[0, "case_id"] == case.loc[0, "case_id"] and "已开工" in started.loc[0, "evidence_text"]


def test_no_breach_no_case():
    tables = make_tables(entities=[entity(U1)], permits=[permit("P1", U1)],
                         abstraction=monthly("P1", "2026-01-01", "2026-06-01", 10.0))
    cases, alerts = cases_at(tables, "2026-07-01")
    assert cases.empty and list(cases.columns) == CASE_COLUMNS


# -- the sample drop: the evidence recomputed by loops that share no code with models.cases -------


def _run(drop, root):
    from features.ingest import ingest
    from features.linkage import link_accounts
    from features.settings import LinkageSettings
    from features.workspace import Workspace

    ws = Workspace(root / "ws")
    ingest(drop, ws)
    tables, as_of = ws.typed_tables(), ws.as_of()
    links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], LinkageSettings())
    alerts = run_checks(tables, links, as_of, RULES)
    return tables, as_of, alerts, build_cases(tables, links, alerts, as_of, RULES)


@pytest.fixture(scope="module", params=["sample-city", "synth-1200"])
def sample_run(request, tmp_path_factory):
    """The shared sample drop (another generator's city) and a city of our own generator."""
    root = tmp_path_factory.mktemp("cases")
    if request.param == "sample-city":
        drop = request.getfixturevalue("sample_drop")
    else:
        from synth import SynthConfig, generate_city

        drop = root / "drop"
        generate_city(SynthConfig(entities=1200, seed=5), drop)
    return (request.param, *_run(drop, root))


def _hand_metered(abstraction: pd.DataFrame, permit_ids: set, start: pd.Timestamp) -> tuple[float, bool, bool]:
    """Metered m³ of the permits' meters in the quarter starting at ``start``, each meter's skipped months
    inside its own first-to-last reading span counted at its mean for the quarter; and whether a meter read
    before and after the quarter but not in it (silent: its quarter is not verified from the others)."""
    total, reported, silent = 0.0, False, False
    months = [start + pd.DateOffset(months=i) for i in range(3)]
    for meter_id, rows in abstraction[abstraction["permit_id"].isin(permit_ids)].groupby("meter_id"):
        inside = rows[rows["month"].isin(months)]
        if inside.empty:
            silent |= bool(rows["month"].min() < start and rows["month"].max() > months[-1])
            continue
        reported = True
        span = [m for m in months if rows["month"].min() <= m <= rows["month"].max()]
        total += inside["volume_m3"].sum() * max(len(span), inside["month"].nunique()) / inside["month"].nunique()
    return total, reported, silent


def test_sample_tax_verification_recomputed_by_hand(sample_run, report_metric):
    city, tables, as_of, alerts, cases = sample_run
    assert_breaches_grouped(cases, alerts)
    permits = tables["permits"][(tables["permits"]["valid_from"] < as_of) & (tables["permits"]["purpose"] != "agriculture")]
    tax = tables["tax"]
    checked, bases = 0, {}
    for case in cases[cases["kind"] == "tax_verification"].itertuples():
        start = pd.Period(case.period, freq="Q").start_time
        end = start + pd.DateOffset(months=3)
        year_days = 366 if start.is_leap_year else 365
        total = 0.0
        for source in json.loads(case.evidence)["sources"]:
            own = permits[(permits["uscc"] == case.uscc) & (permits["source"] == source["source"])]
            declared = tax[(tax["uscc"] == case.uscc) & (tax["period"] == case.period)
                           & (tax["source"] == source["source"])]["declared_m3"].sum()
            metered, _, silent = _hand_metered(tables["abstraction"], set(own["permit_id"]), start)
            permitted = sum(
                p.annual_quota_m3 * max((min(end, p.valid_to + pd.Timedelta(days=1)) - max(start, p.valid_from)).days, 0) / year_days
                for p in own.itertuples()
            )
            plans = tables["plans"]
            planned = plans[(plans["uscc"] == case.uscc) & (plans["year"] == start.year)]["planned_m3"].sum()
            planned *= (end - start).days / year_days
            verified = (declared if silent and metered <= declared else metered if metered > 0 else permitted
                        if permitted > 0 else planned if planned > 0 else declared)
            assert source["declared_m3"] == pytest.approx(declared, abs=0.01)
            assert source["metered_m3"] == pytest.approx(metered, abs=0.01)
            assert source["permitted_m3"] == pytest.approx(permitted, abs=0.01)
            assert source["verified_m3"] == pytest.approx(verified, abs=0.01)
            total += verified
            checked += 1
            bases[source["basis"]] = bases.get(source["basis"], 0) + 1
        assert case.verified_m3 == pytest.approx(total, abs=0.05)
    assert checked > 10
    counts = cases["kind"].value_counts().to_dict()
    report_metric(f"cases {city} as_of {as_of.date()}: {len(cases)} cases from {cases['alert_ids'].str.count(';').add(1).sum()} "
                  f"breach alerts {counts}; {checked} taxpayer-source-quarter verified quantities (by basis {bases}) equal the hand "
                  "recomputation")


def test_sample_expired_permit_volumes_recomputed_by_hand(sample_run):
    _, tables, as_of, _, cases = sample_run
    expired = cases[cases["kind"] == "expired_permit_in_use"]
    assert len(expired) > 0
    window = as_of - pd.DateOffset(months=RULES.enforcement_lookback_months)
    recent = as_of - pd.DateOffset(months=RULES.cancelled_recent_months)
    for case in expired.itertuples():
        p = tables["permits"].set_index("permit_id").loc[case.permit_id]
        rows = tables["abstraction"][(tables["abstraction"]["permit_id"] == case.permit_id)
                                     & (tables["abstraction"]["month"] < as_of) & (tables["abstraction"]["volume_m3"] > 0)]
        after = rows[(rows["month"] >= window) & (rows["month"] > p["valid_to"])]
        withdrawn = rows[(rows["month"] >= recent) & (rows["month"] <= p["valid_to"])] if p["status"] != "valid" else rows.iloc[:0]
        assert case.volume_at_stake_m3 == pytest.approx(after["volume_m3"].sum() + withdrawn["volume_m3"].sum())
        assert case.period == p["valid_to"].strftime("%Y-%m")
