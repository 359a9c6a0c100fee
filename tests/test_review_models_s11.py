"""Review of the meter-gap tax check and the dewatering change (efc6c4f, 0a611d7): edge cases found wanting,
each pinned by a small generated city with a known answer."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from test_profiles import links_from_accounts, meter, monthly
from test_rules import U1, U2, entity, make_tables, permit

from features.profiles import build_profiles, entity_snapshot

HIDDEN_WATER = ("balance_dry_log_12m", "balance_dry_months_12m", "balance_dry_step", "inflow_step",
                "inflow_after_share", "meter_step")


def _pit_city(as_of: pd.Timestamp, lost_month: str | None) -> dict[str, pd.DataFrame]:
    """U1 and U2 alike: supply 1,000 m³ and metered discharge 900 m³ a month, and a construction pit pumped at
    20,000 m³ a month under a dewatering permit from November to April (the pit water to a storm drain). U1's pit
    meter sent no row for ``lost_month`` (read before and after it)."""
    months = pd.date_range(as_of - pd.DateOffset(months=36), as_of - pd.DateOffset(months=1), freq="MS")
    pit = [20000.0 if pd.Timestamp("2025-11-01") <= m <= pd.Timestamp("2026-04-01") else None for m in months]
    gap = [None if lost_month is not None and m == pd.Timestamp(lost_month) else v for m, v in zip(months, pit)]
    flat = [1000.0] * len(months)
    return make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[permit("D1", U1, purpose="dewatering", quota=3e5, start="2025-10-01", end="2026-06-30"),
                 permit("D2", U2, purpose="dewatering", quota=3e5, start="2025-10-01", end="2026-06-30")],
        supply=monthly("S1", U1, flat, months) + monthly("S2", U2, flat, months),
        discharge=(monthly("W1", U1, [900.0] * len(months), months, measured=True)
                   + monthly("W2", U2, [900.0] * len(months), months, measured=True)),
        abstraction=meter("D1", "M1", gap, months) + meter("D2", "M2", pit, months),
    )


def test_a_pit_meter_s_lost_month_is_pit_water_not_water_in():
    """A month the dewatering meter lost between two readings is read at the meter's months around it (the
    hidden-water features' lost metering): that estimate is the pit's water like the months read, so the month is
    no water in and no month of the dry-season balance. Before, it counted as water in and as a balance month:
    U1 got a dry-balance step and a known-water-in step that U2, the same pit read every month, had not."""
    as_of = pd.Timestamp("2026-11-01")
    tables = _pit_city(as_of, lost_month="2026-01-01")
    snap = entity_snapshot(build_profiles(tables, links_from_accounts(tables), as_of), tables, as_of)
    for name in HIDDEN_WATER:
        a, b = snap.loc[U1, name], snap.loc[U2, name]
        assert (np.isnan(a) and np.isnan(b)) or np.isclose(a, b), (name, a, b)


def test_profiles_saved_before_the_pit_column_still_make_a_snapshot():
    """A workspace whose profiles were saved before ``abstraction_dewatering_m3`` existed (training and scoring
    reuse saved profiles: ``training.train.profiles_at_as_of``): the snapshot is built from them (no pit known,
    as before the column), not a KeyError."""
    as_of = pd.Timestamp("2026-11-01")
    tables = _pit_city(as_of, lost_month=None)
    profiles = build_profiles(tables, links_from_accounts(tables), as_of)
    old = entity_snapshot(profiles.drop(columns="abstraction_dewatering_m3"), tables, as_of)
    unknown_pit = entity_snapshot(profiles.assign(abstraction_dewatering_m3=0.0), tables, as_of)
    pd.testing.assert_frame_equal(old, unknown_pit)


def test_a_city_with_no_permit_in_the_register_makes_a_snapshot_without_warnings():
    """An empty permits table (a city whose register is not in the drop yet): ``dewatering_permits_only`` is 0 for
    every entity, with no pandas warning (filling an empty text column with False warns now and raises in a later
    pandas)."""
    as_of = pd.Timestamp("2026-11-01")
    months = pd.date_range("2025-11-01", periods=12, freq="MS")
    tables = make_tables(entities=[entity(U1)], supply=monthly("S1", U1, [1000.0] * 12, months))
    profiles = build_profiles(tables, links_from_accounts(tables), as_of)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snap = entity_snapshot(profiles, tables, as_of)
    assert snap.loc[U1, "dewatering_permits_only"] == 0.0
