"""A bill keyed with an extra digit is not water, and a lost bill or a reading recorded as 0 is not a month without
water: the hidden-water features read through all three."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.hidden_water import HISTORY_MONTHS, hidden_water_features
from features.profile_series import fill_gaps, interior_gaps, without_misreads, zero_bills


def test_a_tenfold_month_alone_is_replaced_by_the_usual_bill_and_peaks_steps_and_ends_are_kept():
    usual = np.array([100.0, 110, 90, 105, 95, 100, 102, 98, 100, 101, 99, 100])
    slip, season, step, ends = usual.copy(), usual.copy(), usual.copy(), usual.copy()
    slip[5] = 1000.0  # an extra digit
    season[4:8] *= 5.0  # a campaign of four months
    step[6:] *= 6.0  # a new line, for good
    ends[0], ends[-1] = 1000.0, 1000.0  # one neighbour each: left as billed
    cleaned, flags = without_misreads(np.vstack([slip, season, step, ends]))
    assert flags.sum() == 1 and flags[0, 5]
    assert 95.0 <= cleaned[0, 5] <= 105.0  # the median of the months around it
    np.testing.assert_array_equal(cleaned[1:], np.vstack([season, step, ends]))
    np.testing.assert_array_equal(cleaned[0, np.arange(12) != 5], usual[np.arange(12) != 5])


def test_nothing_billed_around_a_month_is_no_usual_level_to_replace_it_with():
    x = np.array([[0.0, 0.0, 0.0, 500.0, 0.0, 0.0, 0.0], [np.nan, 0.0, 50.0, 0.0, np.nan, 0.0, 0.0]])
    cleaned, flags = without_misreads(x)
    assert not flags.any()
    np.testing.assert_array_equal(np.nan_to_num(cleaned), np.nan_to_num(x))


def test_rows_are_read_alike_in_any_block_and_in_place():
    rng = np.random.default_rng(3)
    x = rng.lognormal(5.0, 0.3, (500, 36))
    x[rng.random(x.shape) < 0.01] *= 10.0
    whole, flags = without_misreads(x, block=10_000)
    parts, part_flags = without_misreads(x, block=7)
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(flags, part_flags)
    assert flags.sum() > 100 and not np.array_equal(whole, x)  # x itself is left as billed
    same = x.copy()
    assert without_misreads(same, copy=False)[0] is same and np.array_equal(same, whole)


def _entity(discharge: np.ndarray, months: pd.DatetimeIndex, uscc: str) -> list[dict]:
    return [{"uscc": uscc, "month": m, "active": 1, "supply_m3": 1000.0, "abstraction_m3": 0.0,
             "discharge_m3": d, "discharge_measured_share": 1.0, "planned_m3": np.nan}
            for m, d in zip(months, discharge)]


def test_a_misread_discharge_bill_is_no_surplus_and_no_step_while_a_well_still_is():
    as_of = pd.Timestamp("2026-11-01")
    months = pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS, freq="MS")
    honest = np.full(HISTORY_MONTHS, 800.0)
    misread = honest.copy()
    misread[-6] = 8000.0  # May 2026: a dry-season month of the last 12
    assert months[-6].month not in (6, 7, 8, 9)
    well = honest.copy()
    well[-14:] = 1600.0  # the sewer takes twice the bill from a well, for good
    rows = _entity(honest, months, "HONEST") + _entity(misread, months, "MISREAD") + _entity(well, months, "WELL")
    f = hidden_water_features(pd.DataFrame(rows), pd.Index(["HONEST", "MISREAD", "WELL"]), as_of)
    level, step = f["balance_dry_log_12m"], f["balance_dry_step"]
    assert level["MISREAD"] == level["HONEST"] and step["MISREAD"] == step["HONEST"]
    assert level["WELL"] > level["HONEST"] + 0.6 and step["WELL"] > 0.6


def test_a_lost_bill_between_two_bills_is_read_at_the_bills_around_it_and_a_stop_is_not():
    missing = np.array([[0, 0, 1, 1, 0, 0, 1, 1]], dtype=bool)  # a gap of two months, then the account stops
    gaps = interior_gaps(missing)
    np.testing.assert_array_equal(gaps, [[0, 0, 1, 1, 0, 0, 0, 0]])
    x = np.array([[100.0, 110.0, 0.0, 0.0, 90.0, 100.0, 0.0, 0.0]])
    filled = fill_gaps(x, gaps, unknown=missing)  # the months after the stop are no usual level either
    np.testing.assert_array_equal(filled, [[100.0, 110.0, 100.0, 100.0, 90.0, 100.0, 0.0, 0.0]])
    np.testing.assert_array_equal(x[0, 2:4], [0.0, 0.0])  # the input is left as billed
    assert fill_gaps(x, gaps, unknown=missing, copy=False) is x and np.array_equal(x, filled)


def test_months_of_lost_supply_bills_are_no_surplus_of_discharge():
    as_of = pd.Timestamp("2026-11-01")
    months = pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS, freq="MS")
    honest = _entity(np.full(HISTORY_MONTHS, 800.0), months, "HONEST")
    lost = _entity(np.full(HISTORY_MONTHS, 800.0), months, "LOST")
    for row in lost[-12:-7]:  # five dry-season months of the last 12 with no supply bill (Nov 2025 - Mar 2026)
        row["supply_m3"], row["supply_missing"] = 0.0, 1.0
    frame = pd.DataFrame(honest + lost).assign(supply_missing=lambda f: f["supply_missing"].fillna(0.0),
                                               planned_m3=12_000.0)
    f = hidden_water_features(frame, pd.Index(["HONEST", "LOST"]), as_of)
    assert f["plan_used_12m"]["HONEST"] == 1.0  # 1,000 m3 a month against 12,000 a year
    for name in ("balance_dry_log_12m", "balance_dry_step", "plan_used_12m"):
        assert f[name]["LOST"] == f[name]["HONEST"], name
    unfilled = hidden_water_features(frame.drop(columns="supply_missing"), pd.Index(["HONEST", "LOST"]), as_of)
    assert unfilled["balance_dry_log_12m"]["LOST"] > f["balance_dry_log_12m"]["LOST"] + 0.2  # read as zero


def test_plan_use_is_judged_on_the_months_the_firm_existed_from_half_a_year():
    """Three firms draw 1,000 m3 a month against a plan of 12,000 a year: one all year, one registered 8 months
    ago, one 3 months ago (too short to judge a year's plan on)."""
    as_of = pd.Timestamp("2026-11-01")
    months = pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS, freq="MS")
    rows = []
    for uscc, existed in (("YEAR", HISTORY_MONTHS), ("EIGHT", 8), ("THREE", 3)):
        for row in _entity(np.full(HISTORY_MONTHS, 800.0), months, uscc):
            alive = row["month"] >= months[-existed]
            rows.append({**row, "active": int(alive), "supply_m3": 1_000.0 if alive else 0.0, "planned_m3": 12_000.0})
    f = hidden_water_features(pd.DataFrame(rows), pd.Index(["YEAR", "EIGHT", "THREE"]), as_of)["plan_used_12m"]
    assert f["YEAR"] == 1.0 and f["EIGHT"] == 1.0  # not 8,000 / 12,000
    assert np.isnan(f["THREE"])


def test_a_lone_zero_bill_is_unknown_while_a_covered_one_a_stop_and_a_new_account_are_as_billed():
    x = np.array([
        [100, 110, 90, 0, 105, 95, 100, 102, 98, 100],  # a reading recorded as 0, the next bill as usual
        [100, 110, 90, 0, 210, 95, 100, 102, 98, 100],  # a reading skipped: the next bill covers both months
        [0, 200, 0, 200, 0, 200, 0, 200, 0, 200],  # read every second month
        [100, 110, 0, 0, 0, 95, 100, 102, 98, 100],  # a stop of three months
        [0, 0, 0, 0, 0, 0, 100, 110, 90, 100],  # a new account
        [100, 110, 90, 100, 105, 95, 100, 102, 98, 0],  # the last month: no bill after it yet
    ], dtype="float64")
    unknown = zero_bills(x)
    assert unknown.sum() == 1 and unknown[0, 3]
    active = np.ones(x.shape, dtype=bool)
    active[0, :3] = False  # before the entity was registered, its months take no part
    assert not zero_bills(x, active).any()


def test_a_reading_recorded_as_zero_is_no_surplus_of_discharge_and_no_supply_drop():
    as_of = pd.Timestamp("2026-11-01")
    months = pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS, freq="MS")
    rows = _entity(np.full(HISTORY_MONTHS, 800.0), months, "HONEST")
    zeroed = _entity(np.full(HISTORY_MONTHS, 800.0), months, "ZERO")
    for k in (-12, -9, -6):  # three dry-season months of the last 12 read as 0, each between two bills
        zeroed[k]["supply_m3"] = 0.0
    frame = pd.DataFrame(rows + zeroed).assign(planned_m3=12_000.0)
    f = hidden_water_features(frame, pd.Index(["HONEST", "ZERO"]), as_of)
    for name in ("balance_dry_log_12m", "balance_dry_step", "plan_used_12m", "inflow_step"):
        assert f[name]["ZERO"] == f[name]["HONEST"] or (np.isnan(f[name]["ZERO"]) and np.isnan(f[name]["HONEST"])), name
    stopped = _entity(np.full(HISTORY_MONTHS, 800.0), months, "STOP")
    for k in (-12, -11, -10, -9):  # four months in a row: a stop, read as billed
        stopped[k]["supply_m3"] = 0.0
    g = hidden_water_features(pd.DataFrame(rows + stopped).assign(planned_m3=12_000.0), pd.Index(["HONEST", "STOP"]),
                              as_of)
    assert g["plan_used_12m"]["STOP"] == 8 / 12
    assert g["balance_dry_log_12m"]["STOP"] > g["balance_dry_log_12m"]["HONEST"]
