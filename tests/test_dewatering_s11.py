"""A dewatering permit is temporary and its water is pumped away, not used: the records of works that dewater
under a permit that has since ended, or whose pit water went to a storm drain, are no trace of hidden water; and
works that dewater with no permit are a documented breach (a case) that never lifts an entity up the lead ranking
on its own (issue #9: a documented breach alone must not lift an entity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.compliance import dewatering_permitted
from features.hidden_water import HISTORY_MONTHS, hidden_water_features
from features.profiles import build_profiles, entity_snapshot
from models.detectors import HiddenWater
from models.rules import source_prevention
from models.settings import RuleSettings
from tests.test_profiles import links_from_accounts
from tests.test_rules import U1, U2, U3, U4, U5, entity, make_tables, permit

AS_OF = pd.Timestamp("2026-07-01")


def _project(pid, uscc, start, dewatering=True, approved="2025-01-01"):
    return {"project_id": pid, "uscc": uscc, "project_name": "住宅小区项目", "kind": "real_estate",
            "approved_on": approved, "construction_start_on": start, "dewatering": dewatering}


def _pit_tables():
    """U1: a dewatering permit from the works' start that ended with the pit; U2: a permit that ended before the
    works started; U3: no permit at all; U4: a permit still in force; U5: a water-use permit and works not started."""
    return make_tables(
        entities=[entity(u) for u in (U1, U2, U3, U4, U5)],
        permits=[
            permit("D1", U1, purpose="dewatering", start="2025-03-01", end="2026-02-28"),
            permit("D2", U2, purpose="dewatering", start="2023-01-01", end="2024-12-31"),
            permit("D4", U4, purpose="dewatering", start="2026-01-01", end="2027-12-31"),
            permit("W5", U5, purpose="industrial"),
        ],
        projects=[_project("P1", U1, "2025-03-15"), _project("P2", U2, "2025-06-01"), _project("P3", U3, "2026-05-20"),
                  _project("P4", U4, "2026-01-10"), _project("P5", U5, None, approved="2026-06-01")],
    )


def test_works_are_covered_by_a_dewatering_permit_in_force_at_any_time_since_their_start():
    tables = _pit_tables()
    projects = tables["projects"].set_index("project_id", drop=False)
    covered = dewatering_permitted(projects, tables["permits"], AS_OF)
    assert covered.to_dict() == {"P1": True, "P2": False, "P3": False, "P4": True, "P5": False}
    # a permit issued after as_of is not known yet
    assert not dewatering_permitted(projects.loc[["P4"]], tables["permits"], pd.Timestamp("2025-12-01")).iloc[0]


def test_source_prevention_does_not_ask_for_a_permit_that_ended_with_the_pit():
    tables = _pit_tables()
    alerts = source_prevention(tables, AS_OF, RuleSettings(source_prevention_days=600))
    # P4 (in force) needs nothing; P2 and P3 have no permit behind their works; P5 holds a water-use permit but
    # its dewatering works, approved, need a dewatering permit too; P1, whose pit was permitted, holds no permit
    # now: it is told what any project with none is told, not to get the dewatering permit it had
    msg = alerts.set_index("project_id")["message"]
    assert set(msg.index) == {"P1", "P2", "P3", "P5"}
    assert all("疏干排水取水许可" in msg[p] for p in ("P2", "P3", "P5"))
    assert "疏干排水" not in msg["P1"] and "需取用水的请办理取水许可申请" in msg["P1"]


def test_snapshot_flags_only_uncovered_works_and_holders_of_dewatering_permits_only():
    tables = _pit_tables()
    snap = entity_snapshot(build_profiles(tables, links_from_accounts(tables), AS_OF), tables, AS_OF)
    assert snap["dewatering_without_permit"].to_dict() == {U1: 0.0, U2: 1.0, U3: 1.0, U4: 0.0, U5: 0.0}
    assert snap["dewatering_permits_only"].to_dict() == {U1: 1.0, U2: 1.0, U3: 0.0, U4: 1.0, U5: 0.0}


def _months(as_of):
    return pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS, freq="MS")


def test_pit_water_is_no_water_in_and_its_months_say_nothing_of_the_balance():
    """An entity whose legal pit pump ran 8 months, its water to a storm drain: metered abstraction high, sewer
    discharge as usual. Read as water in, it makes a balance that steps up when the pit is done and a meter and
    known water in that fall; read as the pit's, it is the same as an entity that never had a pit."""
    as_of = pd.Timestamp("2026-11-01")
    months = _months(as_of)
    pit = np.zeros(HISTORY_MONTHS)
    pit[10:18] = 20000.0

    def rows(uscc, with_column):
        out = []
        for m, p in zip(months, pit):
            row = {"uscc": uscc, "month": m, "active": 1, "supply_m3": 1000.0, "abstraction_m3": p,
                   "discharge_m3": 900.0, "discharge_measured_share": 1.0, "planned_m3": np.nan}
            if with_column:
                row["abstraction_dewatering_m3"] = p
            out.append(row)
        return out

    plain = [{"uscc": "PLAIN", "month": m, "active": 1, "supply_m3": 1000.0, "abstraction_m3": 0.0,
              "discharge_m3": 900.0, "discharge_measured_share": 1.0, "planned_m3": np.nan,
              "abstraction_dewatering_m3": 0.0} for m in months]
    index = pd.Index(["PIT", "PLAIN"])
    read = hidden_water_features(pd.DataFrame(rows("PIT", True) + plain), index, as_of)
    for name in ("balance_dry_log_12m", "balance_dry_step", "inflow_step", "meter_step"):
        a, b = read[name]["PIT"], read[name]["PLAIN"]
        assert a == pytest.approx(b) or (np.isnan(a) and np.isnan(b)), (name, a, b)
    # the same records without knowing which meter is the pit's: the pit's end reads as a step
    unread = hidden_water_features(pd.DataFrame(rows("PIT", False) + plain).drop(
        columns="abstraction_dewatering_m3"), index, as_of)
    assert unread["balance_dry_step"]["PIT"] > 1.0 and unread["inflow_step"]["PIT"] < -1.0


def test_profiles_carry_the_pit_s_metered_water():
    tables = _pit_tables()
    meters = [{"permit_id": "D1", "meter_id": "M-D1", "month": m, "volume_m3": 5000.0, "reading": "online"}
              for m in ("2025-04-01", "2025-05-01")]
    meters += [{"permit_id": "W5", "meter_id": "M-W5", "month": "2025-04-01", "volume_m3": 300.0, "reading": "online"}]
    tables = make_tables(**{name: frame.drop(columns=[c for c in ("source_row", "uscc_valid", "period_start")
                                                      if c in frame.columns]).to_dict("records")
                            for name, frame in tables.items() if len(frame)}, abstraction=meters)
    prof = build_profiles(tables, links_from_accounts(tables), AS_OF).set_index(["uscc", "month"])
    assert prof.loc[(U1, pd.Timestamp("2025-04-01")), "abstraction_dewatering_m3"] == 5000.0
    assert prof.loc[(U1, pd.Timestamp("2025-04-01")), "abstraction_m3"] == 5000.0
    assert prof.loc[(U5, pd.Timestamp("2025-04-01")), "abstraction_dewatering_m3"] == 0.0


def _works_snapshot(n=40):
    """n entities with no trace of hidden water, two of them with dewatering works and no permit; one of those
    two also with a balance far above its peers (pit water in the sewer)."""
    rng = np.random.default_rng(0)
    snap = pd.DataFrame({
        "industry_code": ["C1713"] * n,
        "balance_dry_log_12m": rng.normal(-0.1, 0.05, n), "balance_dry_ratio_12m": 0.9,
        "balance_dry_months_12m": 8.0, "abstraction_m3_12m": 0.0, "inflow_m3_12m": 12000.0,
        "dewatering_projects": 0.0, "dewatering_without_permit": 0.0,
    }, index=[f"E{i:02d}" for i in range(n)])
    snap.loc[["E00", "E01"], ["dewatering_projects", "dewatering_without_permit"]] = 1.0
    snap.loc["E01", "balance_dry_log_12m"] = 1.0
    snap.loc["E02", "balance_dry_log_12m"] = 1.0  # the same balance, no works
    return snap


def test_works_without_a_permit_alone_do_not_lift_the_hidden_water_score():
    snap = _works_snapshot()
    det = HiddenWater().fit(snap)
    parts, score = det.contributions(snap), pd.Series(det.anomaly_score(snap), index=snap.index)
    assert parts.loc["E00", "dewatering_unpermitted"] == 0.0  # the breach alone: a case, not a lead
    assert score["E00"] == pytest.approx(score.drop(["E00", "E01", "E02"]).median(), abs=0.5)
    # beside a balance that already points to hidden water, the works count, and say so in the reasons
    assert parts.loc["E01", "dewatering_unpermitted"] > 0.0
    assert score["E01"] > score["E02"] > score["E00"]


def test_the_case_of_a_project_whose_pit_was_permitted_does_not_ask_for_a_dewatering_permit():
    from models.cases import source_prevention_cases

    tables = _pit_tables()
    alerts = source_prevention(tables, AS_OF, RuleSettings(source_prevention_days=600))
    cases = source_prevention_cases(tables, alerts, AS_OF).set_index("project_id")
    assert "疏干排水" not in cases.loc["P1", "evidence_text"] and "dewatering" not in cases.loc["P1", "evidence_text_en"]
    assert "疏干排水取水许可" in cases.loc["P3", "evidence_text"]
