"""A quarter a meter sent no reading for is a hole in the meter data, not water declared and never taken: the tax
check raises the yellow ``meter_data_missing`` alert for it, never a red ``tax_mismatch`` from a fake 0 m³, and no
tax-quantity case. A quarter with some readings is still gap-filled; a meter that stopped for good, a holder with
no meter and a genuine under-declaration still raise the red mismatch. Small generated tables, known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_profiles import links_from_accounts, monthly, typed
from test_profiles import meter as meter_rows
from test_rules import U1, U2, U3, U4, entity, make_tables, permit

from features.profiles import build_profiles, entity_snapshot
from models.cases import build_cases
from models.rules import run_checks
from models.settings import RuleSettings

RULES = RuleSettings()
AS_OF = pd.Timestamp("2026-07-01")
TAX_KINDS = ("tax_mismatch", "meter_data_missing")
Q4 = ["2025-10-01", "2025-11-01", "2025-12-01"]
Q1 = ["2026-01-01", "2026-02-01", "2026-03-01"]
Q2 = ["2026-04-01", "2026-05-01", "2026-06-01"]


def reads(pid: str, months: list[str], volume: float, meter_id: str | None = None) -> list[dict]:
    return [{"permit_id": pid, "meter_id": meter_id or f"M-{pid}", "month": m, "volume_m3": volume, "reading": "online"}
            for m in months]


def declared(uscc: str, period: str, m3: float) -> dict:
    return {"uscc": uscc, "period": period, "source": "groundwater", "declared_m3": m3, "tax_yuan": m3 * 3.0}


def checked(tables) -> tuple[pd.DataFrame, pd.DataFrame]:
    alerts = run_checks(tables, None, AS_OF, RULES)
    return alerts, build_cases(tables, None, alerts, AS_OF, RULES)


def found(alerts: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    """(uscc, period, kind, level) of the tax check's alerts."""
    tax = alerts[alerts["kind"].isin(TAX_KINDS)]
    return set(zip(tax["uscc"], tax["period"], tax["kind"], tax["level"]))


def test_a_quarter_a_meter_sent_no_reading_for_is_missing_data_not_a_red_tax_mismatch():
    tables = make_tables(
        entities=[entity(u) for u in (U1, U2, U3, U4)],
        permits=[permit(f"P{i}", u, quota=1e5) for i, u in enumerate((U1, U2, U3, U4), 1)],
        abstraction=(
            reads("P1", Q4 + Q2, 300.0)  # U1: read before and after 2026-Q1, nothing in it
            + reads("P2", Q4, 300.0)  # U2: stopped for good after 2025
            # U3: a taxable permit and no meter at all
            + reads("P4", Q4 + Q1 + Q2, 100.0, "M-A") + reads("P4", Q4 + Q2, 200.0, "M-B")  # U4: M-B silent in Q1
        ),
        tax=[declared(U1, "2026-Q1", 900.0), declared(U1, "2026-Q2", 900.0), declared(U2, "2026-Q1", 900.0),
             declared(U2, "2026-Q2", 900.0), declared(U3, "2026-Q1", 500.0), declared(U4, "2026-Q1", 900.0),
             declared(U4, "2026-Q2", 900.0)],
    )
    alerts, cases = checked(tables)
    assert found(alerts) == {
        (U1, "2026-Q1", "meter_data_missing", "yellow"), (U4, "2026-Q1", "meter_data_missing", "yellow"),
        # a meter gone for good, or none at all: declared water nothing measures stays red (kept on purpose)
        (U2, "2026-Q1", "tax_mismatch", "red"), (U2, "2026-Q2", "tax_mismatch", "red"),
        (U3, "2026-Q1", "tax_mismatch", "red"),
    }
    missing = alerts[alerts["kind"] == "meter_data_missing"].set_index("uscc")
    assert missing.loc[U1, "value"] == 900.0 and missing.loc[U1, "unit"] == "m³"
    assert missing["volume_at_stake_m3"].isna().all() and missing["tax_at_stake_yuan"].isna().all()
    assert (missing["audience"] == "bureau").all() and (missing["source"] == "groundwater").all()
    text = missing.loc[U1, "message"]
    assert "M-P1" in text and "无任何读数" in text and "现场核定" in text and "无计量取水记录" not in text
    assert "M-B" in missing.loc[U4, "message"] and "M-A" not in missing.loc[U4, "message"]
    assert "其余水表计量取水300m³" in missing.loc[U4, "message"]
    # no tax-quantity case from a hole in the data; the stopped meter's quarter is verified by the permit
    tax_cases = cases[cases["kind"] == "tax_verification"]
    assert set(zip(tax_cases["uscc"], tax_cases["period"])) == {(U2, "2026-Q1"), (U2, "2026-Q2"), (U3, "2026-Q1")}
    in_cases = {a for ids in cases["alert_ids"] for a in ids.split(";")}
    assert not in_cases & set(missing["alert_id"])
    u2 = tax_cases.set_index(["uscc", "period"]).loc[(U2, "2026-Q1")]
    assert json.loads(u2["evidence"])["sources"][0]["basis"] == "permit"


def test_a_quarter_with_some_readings_is_gap_filled_as_before():
    tables = make_tables(
        entities=[entity(u) for u in (U1, U2, U3)],
        permits=[permit(f"P{i}", u, quota=1e5) for i, u in enumerate((U1, U2, U3), 1)],
        abstraction=(
            reads("P1", Q4 + ["2026-01-01", "2026-03-01"] + Q2, 300.0)  # February unread
            # March to May unread: three months, but no whole quarter without a reading
            + reads("P2", Q4 + ["2026-01-01", "2026-02-01", "2026-06-01"], 300.0)
            + reads("P3", Q4 + Q2, 300.0)  # the whole of 2026-Q1 unread
        ),
        tax=[declared(U1, "2026-Q1", 600.0), declared(U1, "2026-Q2", 900.0), declared(U2, "2026-Q1", 900.0),
             declared(U2, "2026-Q2", 900.0), declared(U3, "2026-Q1", 900.0), declared(U3, "2026-Q2", 900.0)],
    )
    alerts, _ = checked(tables)
    assert found(alerts) == {(U1, "2026-Q1", "tax_mismatch", "red"), (U3, "2026-Q1", "meter_data_missing", "yellow")}
    hit = alerts[alerts["kind"] == "tax_mismatch"].iloc[0]
    assert hit["volume_at_stake_m3"] == pytest.approx(300.0)  # February at the quarter's mean: 900 against 600
    assert hit["tax_at_stake_yuan"] == pytest.approx(900.0) and "估算" in hit["message"]


def test_a_genuine_under_declaration_stays_red_beside_a_silent_meter_too():
    tables = make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[permit("P1", U1, quota=1e5), permit("P2", U2, quota=1e5)],
        abstraction=(
            reads("P1", Q4 + Q1 + Q2, 300.0)
            + reads("P2", Q4 + Q1 + Q2, 300.0, "M-A") + reads("P2", Q4 + Q2, 300.0, "M-B")  # M-B silent in Q1
        ),
        tax=[declared(U1, "2026-Q1", 600.0), declared(U2, "2026-Q1", 500.0)],
    )
    alerts, cases = checked(tables)
    # U2: M-A alone read 900 m³ against 500 declared; M-B's missing readings could only add to the gap
    assert found(alerts) == {(U1, "2026-Q1", "tax_mismatch", "red"), (U2, "2026-Q1", "tax_mismatch", "red"),
                             (U2, "2026-Q1", "meter_data_missing", "yellow")}
    hit = alerts[alerts["kind"] == "tax_mismatch"].set_index("uscc")
    assert hit.loc[U1, "volume_at_stake_m3"] == 300.0 and hit.loc[U1, "tax_at_stake_yuan"] == 900.0
    assert hit.loc[U2, "volume_at_stake_m3"] == 400.0 and hit.loc[U2, "tax_at_stake_yuan"] == 1200.0
    assert "另有水表本季度无读数，未计入" in hit.loc[U2, "message"] and "少申报" in hit.loc[U2, "message"]
    assert "未计入" not in hit.loc[U1, "message"]
    case = cases[cases["kind"] == "tax_verification"].set_index("uscc")
    assert case.loc[U1, "verified_m3"] == 900.0 and case.loc[U2, "verified_m3"] == 900.0
    source = json.loads(case.loc[U2, "evidence"])["sources"][0]
    assert source["basis"] == "meter" and source["silent_meters"] == 1 and "未计入" in case.loc[U2, "evidence_text"]


def test_the_snapshot_leaves_a_silent_quarter_out_of_the_tax_gap():
    """W declares 900 a quarter; its meter reads 900, nothing, 1200, 1200 over 2024. The silent quarter is not an
    over-declaration of 900 m³ (share -1) but unknown: 600 m³ under-declared, the median quarter 25 % short."""
    as_of, w = pd.Timestamp("2025-01-01"), "91371400SILENT000W"
    months = pd.date_range("2023-01-01", "2024-12-01", freq="MS")
    volumes = [300.0 if m < pd.Timestamp("2024-04-01") else None if m < pd.Timestamp("2024-07-01") else 400.0
               for m in months]
    tables = {name: typed(name, []) for name in ("plans", "projects", "inspections", "discharge")}
    tables.update({
        "entities": typed("entities", [{"uscc": w, "name": w, "industry_code": "C1713", "district": "德城区",
                                         "address": "x", "registered_on": pd.Timestamp("2010-01-01"),
                                         "deregistered_on": None, "employees": 10, "registered_capital_wan": 1.0}]),
        "supply": typed("supply", monthly("SW", w, [100.0] * len(months), months=months)),
        "permits": typed("permits", [{"permit_id": "PW", "uscc": w, "holder_name": "x", "source": "groundwater",
                                       "purpose": "industrial", "annual_quota_m3": 1e5,
                                       "valid_from": pd.Timestamp("2020-01-01"), "valid_to": pd.Timestamp("2030-12-31"),
                                       "status": "valid", "wells": 1}]),
        "abstraction": typed("abstraction", meter_rows("PW", "MW", volumes, months=months)),
        "tax": typed("tax", [{"uscc": w, "period": f"2024-Q{q}", "source": "groundwater", "declared_m3": 900.0,
                              "tax_yuan": 2700.0} for q in range(1, 5)]),
    })
    snap = entity_snapshot(build_profiles(tables, links_from_accounts(tables), as_of), tables, as_of)
    assert snap.loc[w, "tax_undeclared_m3_4q"] == pytest.approx(600.0)
    assert snap.loc[w, "tax_undeclared_share_4q"] == pytest.approx(0.25)  # median of 0, .25, .25
    assert not np.isnan(snap.loc[w, "tax_undeclared_m3_4q"])


def test_the_console_names_and_words_the_missing_data_alert():
    from serving.console.alert_text import KNOWN_KINDS, alert_text
    from serving.i18n import t

    assert "meter_data_missing" in KNOWN_KINDS
    assert t("kind.meter_data_missing", "zh") == "计量数据缺失" and t("kind.meter_data_missing", "en") == "Meter data missing"
    alert = {"kind": "meter_data_missing", "level": "yellow", "basis": "tax", "uscc": U1, "name": "甲", "period": "2026-Q1",
             "source": "groundwater", "value": 900.0, "unit": "m³", "message": "…本季度无任何读数…"}
    text = alert_text(alert, "en")
    assert "900 m³" in text and "no reading" in text and "on site" in text and "2026-Q1" in text
