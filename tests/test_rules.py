"""Supervision checks: known answers on hand-made tables at every threshold edge, the quota and
renewal alerts recomputed permit by permit with independent plain-Python code on real-looking
drops, and proof that nothing at or after as_of is used."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from features.contract import KIND_DTYPES, TABLES
from features.ingest import empty_typed, ingest
from features.workspace import Workspace
from models.rules import (
    ALERT_COLUMNS,
    expired_permit_use,
    quota_projection,
    quota_warning,
    renewal_reminder,
    run_checks,
    source_prevention,
    tax_mismatch,
    unpermitted_abstraction,
    water_rights_candidates,
)
from models.settings import RuleSettings

RULES = RuleSettings()
U1, U2, U3, U4, U5 = (f"91371402MA{i:07d}X" for i in range(1, 6))


def make_tables(**rows: list[dict]) -> dict[str, pd.DataFrame]:
    """Typed tables as ingest would give them, from a few dict rows per table."""
    out = {}
    for name, spec in TABLES.items():
        data = rows.get(name)
        if not data:
            out[name] = empty_typed(spec)
            continue
        frame = pd.DataFrame(data)
        for col in spec.columns:
            if col.name not in frame.columns:
                frame[col.name] = None
            frame[col.name] = frame[col.name].astype(KIND_DTYPES[col.kind])
        frame["source_row"] = np.arange(1, len(frame) + 1)
        if spec.has_uscc:
            frame["uscc_valid"] = pd.Series(True, index=frame.index, dtype="boolean")
        if name == "tax":
            frame["period_start"] = pd.PeriodIndex(frame["period"], freq="Q").start_time.astype("datetime64[s]")
        out[name] = frame
    return out


def entity(uscc, name="测试公司", district="德城区"):
    return {"uscc": uscc, "name": name, "industry_code": "C1713", "district": district}


def permit(pid, uscc, quota=1200.0, source="groundwater", purpose="industrial", start="2020-01-01", end="2030-12-31", status="valid"):
    return {
        "permit_id": pid, "uscc": uscc, "holder_name": "持证单位", "source": source, "purpose": purpose,
        "annual_quota_m3": quota, "valid_from": start, "valid_to": end, "status": status, "wells": 1,
    }


def meter(pid, month, volume):
    return {"permit_id": pid, "meter_id": f"M-{pid}", "month": month, "volume_m3": volume, "reading": "online"}


def levels(alerts: pd.DataFrame, key: str = "permit_id") -> dict[str, str]:
    return dict(zip(alerts[key], alerts["level"]))


# -- quota ------------------------------------------------------------------------


def test_quota_levels_at_the_exact_thresholds():
    as_of = pd.Timestamp("2026-07-01")
    ytd = {"P799": 958.8, "P800": 960.0, "P900": 1080.0, "P1000": 1200.0, "P1250": 1500.0}
    ents = [entity(U1)]
    permits = [permit(pid, U1, quota=1200.0) for pid in ytd]
    meters = []
    for pid, total in ytd.items():
        meters += [meter(pid, "2026-02-01", total / 2), meter(pid, "2026-05-01", total / 2)]
        meters += [meter(pid, "2025-12-01", 5000.0), meter(pid, "2026-07-01", 5000.0)]  # other year / not yet known
    tables = make_tables(entities=ents, permits=permits, abstraction=meters)
    alerts = quota_warning(tables, None, as_of, RULES)
    assert levels(alerts) == {"P800": "yellow", "P900": "orange", "P1000": "red", "P1250": "red"}
    assert set(alerts["basis"]) == {"permit"} and set(alerts["audience"]) == {"user"}
    red = alerts.set_index("permit_id").loc["P1250"]
    assert red["value"] == pytest.approx(125.0) and red["threshold"] == pytest.approx(100.0)
    assert red["volume_at_stake_m3"] == pytest.approx(300.0)
    assert "P1250" in red["message"] and "125%" in red["message"] and "红色预警" in red["message"]
    # 79.9 % after 6 months runs at 160 % a year: the early warning, not a level
    proj = quota_projection(tables, None, as_of, RULES)
    assert levels(proj) == {"P799": "warning"}
    assert proj["value"].iloc[0] == pytest.approx(958.8 / 6 * 12 / 1200 * 100, abs=0.1)


def test_a_completed_year_keeps_only_red():
    tables = make_tables(
        entities=[entity(U1)],
        permits=[permit("P85", U1, quota=1200.0), permit("P101", U1, quota=1200.0)],
        abstraction=[meter("P85", "2025-06-01", 1020.0), meter("P101", "2025-06-01", 1212.0)],
    )
    assert levels(quota_warning(tables, None, pd.Timestamp("2025-12-01"), RULES)) == {"P85": "yellow", "P101": "red"}
    year_end = quota_warning(tables, None, pd.Timestamp("2026-01-01"), RULES)
    assert levels(year_end) == {"P101": "red"} and set(year_end["period"]) == {"2025"}


def test_projection_needs_months_and_an_overrun():
    tables = make_tables(
        entities=[entity(U1)],
        permits=[permit("FAST", U1, quota=1200.0), permit("SLOW", U1, quota=1200.0)],
        abstraction=[meter("FAST", "2026-01-01", 250.0), meter("SLOW", "2026-01-01", 150.0)],
    )
    # Feb 1: one month elapsed (< projection_min_months): no projection however fast
    assert quota_projection(tables, None, pd.Timestamp("2026-02-01"), RULES).empty
    # Apr 1: FAST runs at 250 / 3 * 12 = 1000 (< quota), SLOW at 600: nothing
    assert quota_projection(tables, None, pd.Timestamp("2026-04-01"), RULES).empty
    tables["abstraction"].loc[0, "volume_m3"] = 301.0  # 301 / 3 * 12 = 1204 > 1200, YTD 25 %
    assert levels(quota_projection(tables, None, pd.Timestamp("2026-04-01"), RULES)) == {"FAST": "warning"}


def test_plan_counts_linked_supply_plus_abstraction_and_keeps_the_highest_level():
    as_of = pd.Timestamp("2026-10-01")
    tables = make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[permit("P1", U1, quota=100_000.0)],
        abstraction=[meter("P1", "2026-03-01", 400.0)],
        plans=[{"uscc": U1, "year": 2026, "planned_m3": 1000.0}, {"uscc": U2, "year": 2026, "planned_m3": 1000.0},
               {"uscc": U1, "year": 2025, "planned_m3": 10.0}],
        supply=[
            {"account_id": "A1", "month": "2026-04-01", "volume_m3": 500.0},
            {"account_id": "A2", "month": "2026-04-01", "volume_m3": 790.0},
            {"account_id": "A3", "month": "2026-04-01", "volume_m3": 900.0},  # linked for review only: not counted
        ],
    )
    links = pd.DataFrame(
        {"source": "supply", "account_id": ["A1", "A2", "A3"], "uscc": [U1, U2, U2], "method": "name_exact",
         "confidence": 1.0, "status": ["linked", "linked", "review"]}
    )
    alerts = quota_warning(tables, links, as_of, RULES)
    plan = alerts[alerts["basis"] == "plan"]
    assert levels(plan, "uscc") == {U1: "orange"}  # 900 / 1000; U2 has 790 / 1000 -> none
    assert len(alerts[alerts["uscc"] == U1]) == 1  # one alert per uscc and year, the highest level
    assert "自来水500m³" in plan["message"].iloc[0] and "自备水400m³" in plan["message"].iloc[0]


# -- renewal and expiry -------------------------------------------------------------------


def test_renewal_reminders_at_day_60_61_90_91():
    as_of = pd.Timestamp("2026-05-01")
    days = {"D-1": -1, "D0": 0, "D60": 60, "D61": 61, "D90": 90, "D91": 91}
    permits = [permit(pid, U1, end=(as_of + pd.Timedelta(days=d)).date().isoformat()) for pid, d in days.items()]
    permits.append(permit("GONE", U1, end=(as_of + pd.Timedelta(days=30)).date().isoformat(), status="cancelled"))
    permits.append(permit("FUTURE", U1, start="2026-05-01", end=(as_of + pd.Timedelta(days=30)).date().isoformat(),
                          source="surface"))  # not known yet (and of another source: no renewal of D0)
    alerts = renewal_reminder(make_tables(entities=[entity(U1)], permits=permits), as_of, RULES)
    assert levels(alerts) == {"D0": "reminder_60", "D60": "reminder_60", "D61": "reminder_90", "D90": "reminder_90"}
    assert dict(zip(alerts["permit_id"], alerts["value"])) == {"D0": 0, "D60": 60, "D61": 61, "D90": 90}
    assert alerts["message"].str.contains("剩余").all()


def test_no_renewal_reminder_once_the_holder_holds_the_renewal():
    """A renewal (延续) is issued before expiry and dated from the day after (or from within the reminder window):
    its holder gets no reminder. A successor after a gap, of the other source or cancelled does not count, nor a
    second permit that started long before and runs longer (another well field)."""
    as_of = pd.Timestamp("2026-05-01")
    end = (as_of + pd.Timedelta(days=50)).date()
    next_day, later = (end + pd.Timedelta(days=1)).isoformat(), (end + pd.Timedelta(days=20)).isoformat()
    permits = [permit("RENEWED", U1, end=end.isoformat()), permit("RENEWAL", U1, start=next_day, end="2031-06-20"),
               permit("GAP", U2, end=end.isoformat()), permit("GAP-NEXT", U2, start=later, end="2031-06-20"),
               permit("OTHER-SOURCE", U3, end=end.isoformat()),
               permit("SURFACE-NEXT", U3, source="surface", start=next_day, end="2031-06-20"),
               permit("CANCELLED-NEXT", U4, end=end.isoformat()),
               permit("CANC", U4, start=next_day, end="2031-06-20", status="cancelled"),
               permit("OVERLAP", U5, end=end.isoformat()), permit("EARLY", U5, start="2025-01-01", end="2031-01-01")]
    tables = make_tables(entities=[entity(u) for u in (U1, U2, U3, U4, U5)], permits=permits)
    alerts = renewal_reminder(tables, as_of, RULES)
    assert levels(alerts) == {"GAP": "reminder_60", "OTHER-SOURCE": "reminder_60", "CANCELLED-NEXT": "reminder_60",
                              "OVERLAP": "reminder_60"}
    permits.append(permit("APPROVED-EARLY", U5, start=(end - pd.Timedelta(days=20)).isoformat(), end="2031-06-20"))
    alerts = renewal_reminder(make_tables(entities=[entity(u) for u in (U1, U2, U3, U4, U5)], permits=permits),
                              as_of, RULES)
    assert "OVERLAP" not in set(alerts["permit_id"])  # a renewal dated from its approval, 20 days before expiry


def test_expired_and_withdrawn_permit_use():
    as_of = pd.Timestamp("2026-07-01")
    tables = make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[
            permit("OLD", U1, end="2026-02-15"),
            permit("CANC", U2, status="cancelled"),
            permit("CANC-EARLY", U2, status="cancelled", source="surface"),
        ],
        abstraction=[meter("OLD", m, 100.0) for m in ("2026-02-01", "2026-03-01", "2026-06-01", "2026-07-01")]
        + [meter("CANC", "2026-05-01", 70.0)]
        + [meter("CANC-EARLY", "2026-01-01", 70.0)],  # before the recent window: legal use before cancellation
    )
    alerts = expired_permit_use(tables, as_of, RULES)
    assert levels(alerts) == {"OLD": "red", "CANC": "red"}
    vol = dict(zip(alerts["permit_id"], alerts["volume_at_stake_m3"]))
    assert vol == {"OLD": pytest.approx(200.0), "CANC": pytest.approx(70.0)}  # Feb is partly valid; Jul is not yet known
    assert set(alerts["audience"]) == {"bureau"} and set(alerts["kind"]) == {"expired_permit"}


def test_unpermitted_abstraction_from_tax_and_from_unknown_meters():
    as_of = pd.Timestamp("2026-07-01")
    tables = make_tables(
        entities=[entity(U1), entity(U2), entity(U3)],
        permits=[permit("S1", U1, source="surface"), permit("G2", U2), permit("G3", U3, end="2025-12-31")],
        abstraction=[meter("NOPE", "2026-03-01", 55.0), meter("G2", "2026-03-01", 10.0)],
        tax=[
            {"uscc": U1, "period": "2026-Q1", "source": "groundwater", "declared_m3": 300.0, "tax_yuan": 900.0},
            {"uscc": U1, "period": "2026-Q1", "source": "surface", "declared_m3": 300.0, "tax_yuan": 300.0},
            {"uscc": U2, "period": "2026-Q1", "source": "groundwater", "declared_m3": 10.0, "tax_yuan": 30.0},
            {"uscc": U3, "period": "2026-Q1", "source": "groundwater", "declared_m3": 80.0, "tax_yuan": 240.0},
            {"uscc": U3, "period": "2026-Q2", "source": "groundwater", "declared_m3": 0.0, "tax_yuan": 0.0},
            {"uscc": U4, "period": "2026-Q3", "source": "groundwater", "declared_m3": 80.0, "tax_yuan": 240.0},  # not ended
        ],
    )
    alerts = unpermitted_abstraction(tables, as_of, RULES)
    found = {(r.uscc, r.permit_id, r.period): r.volume_at_stake_m3 for r in alerts.itertuples()}
    assert found == {(U1, "", "2026-Q1"): 300.0, (U3, "", "2026-Q1"): 80.0, ("", "NOPE", "2026"): 55.0}
    assert (alerts["level"] == "red").all()


def test_tax_mismatch_tolerance_edges_and_tax_at_stake():
    as_of = pd.Timestamp("2026-07-01")
    declared = {U1: 950.0, U2: 949.0, U3: 800.0, U4: 799.0}  # metered 1000 each
    ents = [entity(u) for u in (U1, U2, U3, U4, U5)]
    permits = [permit(f"P-{u}", u) for u in declared] + [permit(f"P-{U5}", U5), permit("AGRI", U5, purpose="agriculture", source="surface")]
    meters = [meter(f"P-{u}", m, v) for u in declared for m, v in (("2026-01-01", 300.0), ("2026-02-01", 300.0), ("2026-03-01", 400.0))]
    meters += [meter("AGRI", "2026-02-01", 5000.0)]  # irrigation is tax-exempt: not compared
    meters += [meter(f"P-{U5}", "2025-12-01", 1.0)]  # the meter series starts before 2026-Q1
    tax = [{"uscc": u, "period": "2026-Q1", "source": "groundwater", "declared_m3": d, "tax_yuan": d * 4.0} for u, d in declared.items()]
    tax.append({"uscc": U5, "period": "2026-Q1", "source": "groundwater", "declared_m3": 500.0, "tax_yuan": None})
    tables = make_tables(entities=ents, permits=permits, abstraction=meters, tax=tax)
    alerts = tax_mismatch(tables, as_of, RULES)
    assert levels(alerts, "uscc") == {U2: "orange", U3: "orange", U4: "red", U5: "red"}
    row = alerts.set_index("uscc")
    assert row.loc[U2, "volume_at_stake_m3"] == pytest.approx(51.0)
    assert row.loc[U2, "tax_at_stake_yuan"] == pytest.approx(51.0 * 4.0)  # the declaration's own rate
    assert row.loc[U4, "tax_at_stake_yuan"] == pytest.approx(201.0 * 4.0)
    assert row.loc[U5, "tax_at_stake_yuan"] == 0  # over-declared with no meter: volume, not tax, at stake
    assert "无计量取水记录" in row.loc[U5, "message"]


def test_tax_mismatch_fills_a_missing_meter_month_and_names_unfiled_quarters():
    as_of = pd.Timestamp("2026-07-01")
    months = ["2025-10-01", "2025-11-01", "2025-12-01", "2026-01-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01"]
    tables = make_tables(
        entities=[entity(U1), entity(U2), entity(U3)],
        permits=[permit("P1", U1), permit("P2", U2), permit("P3", U3)],
        abstraction=[meter("P1", m, 300.0) for m in months] + [meter("P2", m, 300.0) for m in months]
        + [meter("P3", m, 100.0) for m in ("2026-04-01", "2026-05-01", "2026-06-01")],
        tax=[
            {"uscc": U1, "period": "2025-Q4", "source": "groundwater", "declared_m3": 900.0, "tax_yuan": 2700.0},
            {"uscc": U1, "period": "2026-Q1", "source": "groundwater", "declared_m3": 900.0, "tax_yuan": 2700.0},  # Feb unread
            {"uscc": U2, "period": "2025-Q4", "source": "groundwater", "declared_m3": 900.0, "tax_yuan": 2700.0},
            {"uscc": U2, "period": "2026-Q1", "source": "groundwater", "declared_m3": 600.0, "tax_yuan": 1800.0},
            # U1 and U2 file nothing for 2026-Q2, while U3's filing shows the tax data covers that quarter
            {"uscc": U3, "period": "2026-Q2", "source": "groundwater", "declared_m3": 300.0, "tax_yuan": 900.0},
        ],
    )
    alerts = tax_mismatch(tables, as_of, RULES)
    found = {(r.uscc, r.period): r.level for r in alerts.itertuples()}
    assert found == {(U2, "2026-Q1"): "red", (U1, "2026-Q2"): "red", (U2, "2026-Q2"): "red"}
    row = alerts.set_index(["uscc", "period"])
    assert row.loc[(U2, "2026-Q1"), "volume_at_stake_m3"] == pytest.approx(300.0)  # 900 estimated vs 600 declared
    assert "估算" in row.loc[(U2, "2026-Q1"), "message"] and "未申报" in row.loc[(U1, "2026-Q2"), "message"]
    assert row.loc[(U1, "2026-Q2"), "tax_at_stake_yuan"] == pytest.approx(900.0 * 3.0)  # the entity's usual rate


def test_source_prevention_for_projects_without_permits():
    as_of = pd.Timestamp("2026-07-01")
    tables = make_tables(
        entities=[entity(u) for u in (U1, U2, U3, U4, U5)],
        permits=[permit("G2", U2), permit("G3", U3)],
        projects=[
            {"project_id": "NEW", "uscc": U1, "project_name": "新建厂房项目", "kind": "industrial", "approved_on": "2026-05-01", "dewatering": False},
            {"project_id": "PIT", "uscc": U2, "project_name": "住宅小区项目", "kind": "real_estate", "approved_on": "2026-06-01", "dewatering": True},
            {"project_id": "OK", "uscc": U3, "project_name": "扩建项目", "kind": "industrial", "approved_on": "2026-06-01", "dewatering": False},
            {"project_id": "OLD", "uscc": U4, "project_name": "仓储项目", "kind": "other", "approved_on": "2026-03-01"},
            {"project_id": "START", "uscc": U5, "project_name": "综合楼项目", "kind": "other", "approved_on": "2024-01-01", "construction_start_on": "2026-06-20"},
            {"project_id": "LATER", "uscc": U4, "project_name": "未来项目", "kind": "other", "approved_on": "2026-07-01"},
        ],
    )
    alerts = source_prevention(tables, as_of, RULES)
    assert set(alerts["project_id"]) == {"NEW", "PIT", "START"}  # OLD: 122 days ago; LATER: not yet known
    msg = alerts.set_index("project_id")["message"]
    assert "疏干排水取水许可" in msg["PIT"] and "三同时" in msg["NEW"] and "计划用水" in msg["NEW"] and "已开工" in msg["START"]
    assert set(alerts["level"]) == {"notice"} and set(alerts["audience"]) == {"user"}


# -- water rights -------------------------------------------------------------------------


def test_water_rights_greedy_matching_by_source_and_district():
    as_of = pd.Timestamp("2026-07-01")
    months = pd.date_range("2024-07-01", "2026-06-01", freq="MS").strftime("%Y-%m-%d")
    # monthly use against a prorated 100 m3: 25 %, 50 %, 10 % -> surplus 900, 600, 1080 m3 a year
    sellers = {"S1": (U1, 1200.0, 25.0), "S2": (U2, 1200.0, 50.0), "S3": (U5, 1200.0, 10.0)}
    ents = [entity(U1), entity(U2), entity(U3), entity(U4), entity(U5, district="陵城区")]
    permits = [permit(pid, u, quota=q, start="2020-01-01") for pid, (u, q, _) in sellers.items()]
    meters = [meter(pid, m, v) for pid, (_, _, v) in sellers.items() for m in months]
    permits += [permit("SPIKE", U3, quota=1200.0)]  # 60 % once: not a steady seller, and over quota: a buyer
    meters += [meter("SPIKE", m, 10.0) for m in months[:-1]] + [meter("SPIKE", months[-1], 60.0)]
    permits += [permit("B1", U3, quota=600.0), permit("B2", U4, quota=600.0)]
    meters += [meter("B1", "2026-01-01", 800.0), meter("B2", "2026-01-01", 650.0)]
    tables = make_tables(entities=ents, permits=permits, abstraction=meters)
    matches = water_rights_candidates(tables, None, as_of, RULES)
    # buyers: U3 needs (800 / 6 * 12 - 600) = 1000 on B1 (+ 0 on SPIKE), U4 needs 650 / 6 * 12 - 600 = 700
    got = [(r.seller_uscc, r.buyer_uscc, round(r.volume_m3, 1)) for r in matches.itertuples()]
    # largest seller to largest buyer first; S3 sits in another district
    assert got == [(U1, U3, 900.0), (U2, U3, 100.0), (U2, U4, 500.0)]
    assert matches["volume_m3"].sum() == pytest.approx(1500.0)
    assert set(matches["district"]) == {"德城区"} and set(matches["source"]) == {"groundwater"}


# -- on real-looking drops: independent recomputation ----------------------------------------


@pytest.fixture(scope="module")
def sample_tables(sample_drop, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("rules") / "ws")
    ingest(sample_drop, ws)
    return ws.typed_tables(), ws.as_of()


def hand_links(tables) -> pd.DataFrame:
    """Each supply account to the valid uscc on its latest row that carries one (plain loop)."""
    link = {}
    for r in sorted(tables["supply"].to_dict("records"), key=lambda r: r["month"]):
        if isinstance(r["uscc"], str) and r["uscc_valid"] is True:
            link[r["account_id"]] = r["uscc"]
    return pd.DataFrame({"source": "supply", "account_id": list(link), "uscc": list(link.values()),
                         "method": "uscc", "confidence": 1.0, "status": "linked"})


def hand_quota_and_renewal(tables, links, as_of, rules) -> set[tuple]:
    """The quota and renewal rules written out as loops over permits and rows, sharing no code with models.rules."""
    last_day = as_of - pd.Timedelta(days=1)
    year = last_day.year
    jan1, dec31 = pd.Timestamp(year, 1, 1), pd.Timestamp(year, 12, 31)
    holder = {p["permit_id"]: p["uscc"] for p in tables["permits"].to_dict("records")}
    by_permit, by_uscc = defaultdict(float), defaultdict(float)
    for r in tables["abstraction"].to_dict("records"):
        if jan1 <= r["month"] < as_of:
            by_permit[r["permit_id"]] += r["volume_m3"]
            if r["permit_id"] in holder:
                by_uscc[holder[r["permit_id"]]] += r["volume_m3"]
    account = dict(zip(links["account_id"], links["uscc"]))
    for r in tables["supply"].to_dict("records"):
        if jan1 <= r["month"] < as_of and r["account_id"] in account:
            by_uscc[account[r["account_id"]]] += r["volume_m3"]

    def level(used, limit):
        share = used / limit
        if share >= rules.quota_red - 1e-9:
            return "red"
        if share >= rules.quota_orange - 1e-9:
            return "orange"
        if share >= rules.quota_yellow - 1e-9:
            return "yellow"
        return None

    year_complete = as_of.month == 1

    def level_or_none(used, limit):
        lv = level(used, limit)
        return lv if (lv == "red" or not year_complete) else None

    # a renewal carries the year of the permit it replaced: each one's quota for the days it ran in the year
    known = [p for p in tables["permits"].to_dict("records") if p["valid_from"] < as_of]
    next_jan1 = pd.Timestamp(year + 1, 1, 1)

    def for_days(quota, first, last):
        days = (min(last + pd.Timedelta(days=1), next_jan1) - max(first, jan1)).days
        return quota * max(days, 0) / (next_jan1 - jan1).days

    replaced_by = {}  # old permit -> its renewal (the earliest-starting one)
    for q in known if rules.quota_year_across_renewal else []:
        renewals = [p for p in known if p["status"] == "valid" and p["uscc"] == q["uscc"]
                    and p["source"] == q["source"] and p["permit_id"] != q["permit_id"]
                    and p["valid_to"] > q["valid_to"] and -90 <= (p["valid_from"] - q["valid_to"]).days <= 1]
        if renewals:
            replaced_by[q["permit_id"]] = min(renewals, key=lambda p: (p["valid_from"], p["permit_id"]))
    carried, gone = defaultdict(list), set()
    for q in known:
        p = replaced_by.get(q["permit_id"])
        if p is None or not (p["valid_from"] <= dec31 and p["valid_to"] >= jan1 and p["annual_quota_m3"] > 0):
            continue
        last = min(q["valid_to"], p["valid_from"] - pd.Timedelta(days=1))
        if last >= jan1:
            carried[p["permit_id"]].append((q, last))
            gone.add(q["permit_id"])

    expected = set()
    for p in tables["permits"].to_dict("records"):
        if p["status"] != "valid" or not p["valid_from"] < as_of:
            continue
        if p["valid_from"] <= dec31 and p["valid_to"] >= jan1 and p["annual_quota_m3"] > 0 and p["permit_id"] not in gone:
            used, limit = by_permit[p["permit_id"]], p["annual_quota_m3"]
            if carried[p["permit_id"]]:
                limit = for_days(limit, p["valid_from"], p["valid_to"])
                for q, last in carried[p["permit_id"]]:
                    used += by_permit[q["permit_id"]]
                    limit += for_days(q["annual_quota_m3"], q["valid_from"], last)
            lv = level_or_none(used, limit)
            if lv:
                expected.add(("quota", lv, p["uscc"], p["permit_id"], str(year)))
        days = (p["valid_to"] - as_of).days
        if any(q["uscc"] == p["uscc"] and q["source"] == p["source"] and q["status"] == "valid"
               and q["permit_id"] != p["permit_id"] and q["valid_to"] > p["valid_to"]
               and -rules.renewal_first_days <= (q["valid_from"] - p["valid_to"]).days <= 1
               for q in tables["permits"].to_dict("records")):
            continue  # renewed already: no reminder
        if 0 <= days <= rules.renewal_second_days:
            expected.add(("renewal", "reminder_60", p["uscc"], p["permit_id"], p["valid_to"].strftime("%Y-%m-%d")))
        elif rules.renewal_second_days < days <= rules.renewal_first_days:
            expected.add(("renewal", "reminder_90", p["uscc"], p["permit_id"], p["valid_to"].strftime("%Y-%m-%d")))
    for plan in tables["plans"].to_dict("records"):
        if plan["year"] == year and plan["planned_m3"] > 0:
            lv = level_or_none(by_uscc[plan["uscc"]], plan["planned_m3"])
            if lv:
                expected.add(("quota", lv, plan["uscc"], "", str(year)))
    return expected


def _assert_matches_hand(tables, as_of, report_metric, label, rules=RULES):
    links = hand_links(tables)
    alerts = run_checks(tables, links, as_of, rules)
    got = alerts[alerts["kind"].isin(["quota", "renewal"])]
    got = {(r.kind, r.level, r.uscc, r.permit_id, r.period) for r in got.itertuples()}
    expected = hand_quota_and_renewal(tables, links, as_of, rules)
    assert got == expected
    assert alerts["alert_id"].is_unique
    assert list(alerts.columns) == ALERT_COLUMNS
    report_metric(f"rules {label} as_of {as_of.date()}: {len(expected)} quota+renewal alerts equal the hand count; "
                  f"{len(alerts)} alerts in all")
    return alerts


@pytest.mark.parametrize("across_renewal", [False, True], ids=["permit-basis", "across-renewal"])
@pytest.mark.parametrize("months_back", [0, 5, 10, 12])
def test_sample_quota_and_renewal_equal_hand_computation(sample_tables, months_back, across_renewal, report_metric):
    tables, last_as_of = sample_tables
    as_of = last_as_of - pd.DateOffset(months=months_back)
    rules = RULES.model_copy(update={"quota_year_across_renewal": across_renewal})
    label = "sample-city" + (" (quota_year_across_renewal)" if across_renewal else "")
    alerts = _assert_matches_hand(tables, as_of, report_metric, label, rules)
    if months_back == 0:
        assert (alerts["kind"] == "quota").sum() > 5 and (alerts["kind"] == "renewal").sum() > 0


def test_alerts_are_stable_across_reruns(sample_tables):
    tables, as_of = sample_tables
    first = run_checks(tables, None, as_of, RULES)
    second = run_checks({k: v.sample(frac=1.0, random_state=1) for k, v in tables.items()}, None, as_of, RULES)
    pd.testing.assert_frame_equal(first, second)


def test_no_data_at_or_after_as_of_is_used(sample_tables):
    tables, last_as_of = sample_tables
    as_of = last_as_of - pd.DateOffset(months=4)  # 2026-07-01 on the sample
    before = run_checks(tables, None, as_of, RULES)
    rights_before = water_rights_candidates(tables, None, as_of, RULES)
    assert len(before) > 0

    altered = {k: v.copy() for k, v in tables.items()}
    for name in ("abstraction", "supply", "discharge"):
        late = altered[name]["month"] >= as_of
        altered[name].loc[late, "volume_m3"] = altered[name].loc[late, "volume_m3"] * 10 + 999
    tax = altered["tax"]
    open_quarter = tax["period_start"] + pd.DateOffset(months=3) > as_of
    tax.loc[open_quarter, "declared_m3"] = tax.loc[open_quarter, "declared_m3"] * 10 + 999
    permits = altered["permits"]
    late_permits = permits[permits["valid_from"] >= as_of].assign(uscc=permits["uscc"].iloc[0])
    tables_future = altered["projects"]
    future_projects = tables_future.head(3).assign(project_id=lambda f: f["project_id"] + "-X", approved_on=as_of,
                                                   construction_start_on=as_of + pd.Timedelta(days=5))
    altered["projects"] = pd.concat([tables_future, future_projects], ignore_index=True)
    altered["permits"] = pd.concat([permits[permits["valid_from"] < as_of], late_permits], ignore_index=True)
    after = run_checks(altered, None, as_of, RULES)
    # renewal reminders read the whole register: it has no issue dates, and a renewal (dated from the day after
    # expiry) is issued before it starts. Every other alert ignores permits starting at or after as_of.
    others = [a[a["kind"] != "renewal"].reset_index(drop=True) for a in (before, after)]
    pd.testing.assert_frame_equal(*others)
    reminded = [set(a.loc[a["kind"] == "renewal", "permit_id"]) for a in (before, after)]
    assert reminded[0] <= reminded[1]  # moving the later permits away only takes renewals from their holders
    future = permits[permits["valid_from"] >= as_of]
    for pid in reminded[1] - reminded[0]:  # each reminder that came back was of a permit renewed in the register
        held = permits[permits["permit_id"] == pid].iloc[0]
        assert ((future["uscc"] == held["uscc"]) & (future["source"] == held["source"])).any(), pid
    # the alteration is not a no-op: a run that may see those months does change
    assert not run_checks(altered, None, last_as_of, RULES).equals(run_checks(tables, None, last_as_of, RULES))
    pd.testing.assert_frame_equal(rights_before, water_rights_candidates(altered, None, as_of, RULES))


def _synth():
    try:
        from synth import SynthConfig, generate_city
    except ImportError:
        return None
    return SynthConfig, generate_city


@pytest.mark.skipif(_synth() is None, reason="synth not available yet")
def test_generated_city_quota_and_renewal_equal_hand_computation(tmp_path, report_metric):
    SynthConfig, generate_city = _synth()
    drop = tmp_path / "city"
    generate_city(SynthConfig(entities=1000, seed=7), drop)
    ws = Workspace(tmp_path / "ws")
    ingest(drop, ws)
    tables, as_of = ws.typed_tables(), ws.as_of()
    for months_back in (0, 7):
        _assert_matches_hand(tables, as_of - pd.DateOffset(months=months_back), report_metric, "synth-1000")
