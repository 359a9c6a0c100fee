"""Metered abstraction against what the permits allowed over the same months (``quota_used_12m``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.compliance import quota_covered, water_use_quota_share

AS_OF = pd.Timestamp("2026-11-01")
MONTHS = pd.date_range("2025-11-01", periods=12, freq="MS")


def _permits(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["permit_id", "uscc", "purpose", "annual_quota_m3", "valid_from", "valid_to",
                                        "status"])
    for c in ("valid_from", "valid_to"):
        frame[c] = pd.to_datetime(frame[c])
    return frame


def _metered(permit_id: str, per_month: float, months=MONTHS) -> list[dict]:
    return [{"permit_id": permit_id, "month": m, "volume_m3": per_month} for m in months]


def test_a_new_permit_a_renewal_and_a_dewatering_pit_are_each_judged_on_what_was_allowed():
    permits = _permits([
        # granted three months ago: 92 of the window's 365 days, a quarter of its 12,000 m3 a year
        ("NEW", "A", "industrial", 12_000.0, "2026-08-01", "2031-07-31", "valid"),
        # renewed in May; the old permit was cancelled when the renewal was granted, but it covered the months
        ("OLD", "B", "industrial", 12_000.0, "2021-05-01", "2026-04-30", "cancelled"),
        ("RENEWED", "B", "industrial", 12_000.0, "2026-05-01", "2031-04-30", "valid"),
        # a pit's permit: pumped for three months, the permit runs on; not water the holder uses
        ("PIT", "C", "dewatering", 240_000.0, "2025-06-01", "2028-05-31", "valid"),
        ("WELL", "C", "industrial", 6_000.0, None, None, "valid"),  # open-ended
    ])
    rows = (_metered("NEW", 1_000.0, MONTHS[-3:]) + _metered("OLD", 1_000.0, MONTHS[:6])
            + _metered("RENEWED", 1_000.0, MONTHS[6:]) + _metered("PIT", 20_000.0, MONTHS[:3])
            + _metered("WELL", 250.0))
    covered = quota_covered(permits, MONTHS)
    days = np.array([92, 181, 184, 365, 365]) / 365  # Nov 2025 - Apr 2026 has 181 days, May - Oct 184
    np.testing.assert_allclose(covered.to_numpy(), [12_000.0, 12_000.0, 12_000.0, 240_000.0, 6_000.0] * days)
    share = water_use_quota_share(permits, pd.DataFrame(rows), MONTHS)
    assert share["A"] == pytest.approx(3_000.0 / (12_000.0 * 92 / 365))  # about 1, not 3,000 / 12,000
    assert share["B"] == 1.0  # the renewal and the permit it replaced together allowed 12,000
    assert share["C"] == 0.5  # the well's 3,000 m3 against its 6,000; the pit neither adds use nor quota


def test_a_holder_of_a_pit_permit_alone_has_no_share_and_months_outside_the_window_do_not_count():
    permits = _permits([("PIT", "C", "dewatering", 50_000.0, "2025-01-01", "2027-12-31", "valid"),
                        ("WELL", "D", "industrial", 12_000.0, "2020-01-01", "2030-12-31", "valid")])
    before = pd.date_range("2024-11-01", periods=12, freq="MS")
    rows = _metered("PIT", 5_000.0) + _metered("WELL", 9_000.0, before) + _metered("WELL", 500.0)
    share = water_use_quota_share(permits, pd.DataFrame(rows), MONTHS)
    assert "C" not in share.index
    assert share["D"] == 0.5
