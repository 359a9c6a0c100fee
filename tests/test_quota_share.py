"""Metered abstraction against what the permits allowed over the same months (``quota_used_12m``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.compliance import quota_covered, water_use_quota_share

MONTHS = pd.date_range("2025-11-01", periods=12, freq="MS")  # as of 2026-11-01


def _permits(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["permit_id", "uscc", "purpose", "source", "annual_quota_m3", "valid_from",
                                        "valid_to", "status"])
    for c in ("valid_from", "valid_to"):
        frame[c] = pd.to_datetime(frame[c])
    return frame


def _metered(permit_id: str, per_month: float, months=MONTHS) -> list[dict]:
    return [{"permit_id": permit_id, "month": m, "volume_m3": per_month} for m in months]


def test_each_holder_is_judged_on_what_its_permits_allowed_over_the_same_months():
    permits = _permits([
        # granted seven months ago (2026-04-01): 214 of the window's 365 days of its 12,000 m3 a year
        ("NEW", "A", "industrial", "groundwater", 12_000.0, "2026-04-01", "2031-03-31", "valid"),
        # renewed in May; the old permit was cancelled when the renewal was granted, but it covered the months
        ("OLD", "B", "industrial", "groundwater", 12_000.0, "2021-05-01", "2026-04-30", "cancelled"),
        ("RENEWED", "B", "industrial", "groundwater", 12_000.0, "2026-05-01", "2031-04-30", "valid"),
        # a pit's permit: pumped for three months, the permit runs on; not water the holder uses
        ("PIT", "C", "dewatering", "groundwater", 240_000.0, "2025-06-01", "2028-05-31", "valid"),
        ("WELL", "C", "industrial", "groundwater", 6_000.0, None, None, "valid"),  # open-ended
    ])
    rows = (_metered("NEW", 1_000.0, MONTHS[-7:]) + _metered("OLD", 1_000.0, MONTHS[:6])
            + _metered("RENEWED", 1_000.0, MONTHS[6:]) + _metered("PIT", 20_000.0, MONTHS[:3])
            + _metered("WELL", 250.0))
    days = np.array([214, 181, 184, 365, 365]) / 365  # Nov 2025 - Apr 2026 has 181 days, May - Oct 184
    np.testing.assert_allclose(quota_covered(permits, MONTHS).to_numpy(),
                               [12_000.0, 12_000.0, 12_000.0, 240_000.0, 6_000.0] * days)
    share = water_use_quota_share(permits, pd.DataFrame(rows), MONTHS)
    assert share["A"] == pytest.approx(7_000.0 / (12_000.0 * 214 / 365))  # about 1, not 7,000 / 12,000
    assert share["B"] == 1.0  # the renewal and the permit it replaced together allowed 12,000
    assert share["C"] == 0.5  # the well's 3,000 m3 against its 6,000; the pit neither adds use nor quota


def test_nothing_to_measure_against_for_a_new_permit_a_withdrawn_one_or_a_pit_alone():
    permits = _permits([
        ("FRESH", "D", "agriculture", "groundwater", 100_000.0, "2026-09-10", "2031-09-09", "valid"),  # 2 months
        ("GIVEN_UP", "E", "industrial", "groundwater", 50_000.0, "2021-06-01", "2026-05-31", "cancelled"),
        ("EXPIRED", "F", "agriculture", "groundwater", 50_000.0, "2016-06-01", "2026-05-31", "valid"),
        ("STRUCK", "F", "agriculture", "groundwater", 50_000.0, "2026-06-01", "2031-05-31", "revoked"),
        ("PIT", "G", "dewatering", "groundwater", 50_000.0, "2025-01-01", "2027-12-31", "valid"),
        ("WELL", "H", "industrial", "groundwater", 12_000.0, "2020-01-01", "2030-12-31", "valid"),
    ])
    before = pd.date_range("2024-11-01", periods=12, freq="MS")
    rows = (_metered("FRESH", 100.0, MONTHS[-2:]) + _metered("EXPIRED", 4_000.0, MONTHS[:7])
            + _metered("PIT", 5_000.0) + _metered("WELL", 9_000.0, before) + _metered("WELL", 500.0))
    share = water_use_quota_share(permits, pd.DataFrame(rows), MONTHS)
    assert np.isnan(share["D"])  # two months are no year to judge a year's quota on
    assert "E" not in share.index  # given up at a date the register does not tell
    assert share["F"] == pytest.approx(28_000.0 / (50_000.0 * 212 / 365))  # the revoked renewal allows nothing
    assert "G" not in share.index
    assert share["H"] == 0.5  # months before the window do not count
