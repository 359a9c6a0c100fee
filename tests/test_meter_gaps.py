"""A meter's data lost between two readings is not a month without abstraction: the hidden-water features read such
a month at the meter's months around it (``features.compliance.lost_meter_months``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.compliance import lost_meter_months
from features.hidden_water import HISTORY_MONTHS, hidden_water_features


def _rows(meter: str, permit: str, months, volumes) -> pd.DataFrame:
    return pd.DataFrame({"permit_id": permit, "meter_id": meter, "month": pd.to_datetime(months),
                         "volume_m3": np.asarray(volumes, dtype="float64")})


def test_a_month_lost_between_two_readings_is_read_at_the_meter_s_months_around_it():
    months = pd.date_range("2025-01-01", periods=10, freq="MS")
    rows = pd.concat([
        # lost in April, and in June after the permit was renewed (P1 -> P2)
        _rows("A", "P1", ["2025-01", "2025-02", "2025-03"], [100, 110, 90]),
        _rows("A", "P2", ["2025-05", "2025-07", "2025-08"], [105, 95, 100]),
        _rows("B", "Q", ["2025-03", "2025-04", "2025-05"], [50, 60, 70]),  # replaced by C: never read after May
        _rows("C", "Q", ["2025-07", "2025-08"], [80, 80]),  # new from July: no month before it is read
    ], ignore_index=True)
    lost = lost_meter_months(rows, months).sort_values("month").reset_index(drop=True)
    assert lost["meter_id"].tolist() == ["A", "A"]
    assert lost["month"].tolist() == [pd.Timestamp("2025-04-01"), pd.Timestamp("2025-06-01")]
    assert lost["permit_id"].tolist() == ["P1", "P2"]  # the permit of the reading before
    assert lost["volume_m3"].tolist() == [100.0, 100.0]  # the median of 100, 110, 90, 105, 95, 100
    assert lost_meter_months(rows[rows["meter_id"] != "A"], months).empty
    assert lost_meter_months(rows.iloc[:0], months).empty


def _entity(uscc: str, months, abstraction: np.ndarray) -> list[dict]:
    return [{"uscc": uscc, "month": m, "active": 1, "supply_m3": 200.0, "abstraction_m3": a, "discharge_m3": 900.0,
             "discharge_measured_share": 1.0, "planned_m3": np.nan} for m, a in zip(months, abstraction)]


def test_lost_meter_months_are_no_surplus_of_discharge_nor_a_meter_falling():
    as_of = pd.Timestamp("2026-11-01")
    months = pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS, freq="MS")
    metered = np.full(HISTORY_MONTHS, 800.0)
    lost_at = [-12, -9, -8, -6]  # Nov 2025, Feb, Mar and May 2026: dry-season months of the last 12
    gaps = metered.copy()
    gaps[lost_at] = 0.0  # the profile's metering of those months: no row, read as 0
    frame = pd.DataFrame(_entity("HONEST", months, metered) + _entity("GAPS", months, gaps))
    index = pd.Index(["HONEST", "GAPS"])
    lost = pd.DataFrame({"uscc": "GAPS", "month": months[lost_at], "volume_m3": 800.0})
    read = hidden_water_features(frame, index, as_of, lost_metered=lost)
    for name in ("balance_dry_log_12m", "balance_dry_step", "meter_step", "meter_unexplained_drop_share"):
        a, b = read[name]["GAPS"], read[name]["HONEST"]
        assert a == b or (np.isnan(a) and np.isnan(b)), name
    unread = hidden_water_features(frame, index, as_of)
    assert unread["balance_dry_log_12m"]["GAPS"] > read["balance_dry_log_12m"]["GAPS"] + 0.2
