"""Monthly profiles and the entity snapshot: exact values on a hand-made city, causality, peers, the sample drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import TABLES
from features.dictionary import DATA_DICTIONARY, render_data_dictionary
from features.ingest import empty_typed
from features.profiles import SNAPSHOT_META, build_profiles, entity_snapshot

ROOT = Path(__file__).resolve().parents[1]
AS_OF = pd.Timestamp("2025-01-01")
MONTHS = pd.date_range("2023-01-01", "2024-12-01", freq="MS")
A, B, C, D, E = (f"91371400TEST0000{x}" for x in "ABCDE")


def typed(name: str, rows: list[dict]) -> pd.DataFrame:
    """A typed table as ingest produces it, from plain dict rows."""
    empty = empty_typed(TABLES[name])
    frame = pd.DataFrame(rows, columns=[c for c in empty.columns if c not in ("source_row", "uscc_valid", "period_start")])
    if "period" in frame.columns:
        frame["period_start"] = pd.PeriodIndex(frame["period"], freq="Q").start_time if len(frame) else pd.NaT
    frame["source_row"] = np.arange(1, len(frame) + 1)
    if "uscc_valid" in empty.columns:
        frame["uscc_valid"] = True
    return frame[empty.columns].astype(empty.dtypes.to_dict())


def links_from_accounts(tables: dict[str, pd.DataFrame], confidence: dict[str, float] | None = None) -> pd.DataFrame:
    """Links built from the clerks' own uscc column (method 'uscc')."""
    rows = []
    for source in ("supply", "discharge"):
        acc = tables[source].groupby("account_id", as_index=False)["uscc"].first()
        acc = acc[acc["uscc"].notna()]
        rows.append(acc.assign(source=source, method="uscc", confidence=1.0, status="linked"))
    links = pd.concat(rows, ignore_index=True)
    for account, conf in (confidence or {}).items():
        links.loc[links["account_id"] == account, "confidence"] = conf
    return links


def monthly(account: str, uscc: str | None, values, months=MONTHS, **extra) -> list[dict]:
    return [
        {"account_id": account, "uscc": uscc, "month": m, "volume_m3": float(v), **extra}
        for m, v in zip(months, values)
        if v is not None
    ]


def meter(permit: str, meter_id: str, values, months=MONTHS, reading="online") -> list[dict]:
    return [
        {"permit_id": permit, "meter_id": meter_id, "month": m, "volume_m3": float(v), "reading": reading}
        for m, v in zip(months, values)
        if v is not None
    ]


@pytest.fixture(scope="module")
def hand_city() -> dict[str, pd.DataFrame]:
    """A: step in discharge at 2024-07; B: meter oddities; C expiring, D expired, E revoked permit."""
    step = [150.0 if m < pd.Timestamp("2024-07-01") else 300.0 for m in MONTHS]
    b_supply = [20.0 if m == pd.Timestamp("2024-10-01") else 100.0 for m in MONTHS]
    b_meter = [float(50 + (i % 5) * 10) for i in range(len(MONTHS))]
    for i, m in enumerate(MONTHS):
        if pd.Timestamp("2024-03-01") <= m <= pd.Timestamp("2024-05-01"):
            b_meter[i] = 77.0
    b_meter[MONTHS.get_loc(pd.Timestamp("2024-08-01"))] = 0.0
    b_meter[MONTHS.get_loc(pd.Timestamp("2024-09-01"))] = None
    entity = lambda u, code, emp, **kw: {  # noqa: E731
        "uscc": u, "name": f"企业{u[-1]}", "industry_code": code, "district": "德城区", "address": "x",
        "registered_on": pd.Timestamp("2010-01-01"), "deregistered_on": None, "employees": emp,
        "registered_capital_wan": 100.0, **kw,
    }
    permit = lambda pid, u, source, quota, start, stop, status="valid": {  # noqa: E731
        "permit_id": pid, "uscc": u, "holder_name": "x", "source": source, "purpose": "industrial",
        "annual_quota_m3": quota, "valid_from": pd.Timestamp(start), "valid_to": pd.Timestamp(stop),
        "status": status, "wells": 1,
    }
    return {
        "entities": typed("entities", [
            entity(A, "C1713", 10), entity(B, "C1713", 5), entity(C, "H6110", 3), entity(D, "H6110", None),
            entity(E, "H6110", 8), entity("91371400TEST0000F", "H6110", 8, deregistered_on=pd.Timestamp("2024-06-01")),
            entity("91371400TEST0000G", "H6110", 8, registered_on=pd.Timestamp("2025-02-01")),
        ]),
        "supply": typed("supply", monthly("SA", A, [100] * 24) + monthly("SB", B, b_supply)
                        + monthly("SX", None, [9999] * 24)),
        "discharge": typed("discharge", monthly("DA", A, step, measured=True)
                           + monthly("DR", None, [5000] * 24, measured=False)),
        "permits": typed("permits", [
            permit("PA", A, "groundwater", 1200.0, "2020-01-01", "2030-12-31"),
            permit("PB", B, "surface", 5000.0, "2020-01-01", "2030-12-31"),
            permit("PC", C, "groundwater", 100.0, "2020-01-01", "2025-02-15"),
            permit("PD", D, "groundwater", 100.0, "2020-01-01", "2024-03-31"),
            permit("PE", E, "groundwater", 100.0, "2020-01-01", "2030-12-31", status="revoked"),
            permit("PFUT", C, "groundwater", 9e6, "2025-03-01", "2030-12-31"),
        ]),
        "plans": typed("plans", [{"uscc": A, "year": 2024, "planned_m3": 4800.0}]),
        "abstraction": typed("abstraction", meter("PA", "MA", [100] * 24) + meter("PB", "MB", b_meter, reading="manual")),
        "tax": typed("tax", [
            {"uscc": A, "period": "2024-Q3", "source": "groundwater", "declared_m3": 250.0, "tax_yuan": 750.0},
            {"uscc": A, "period": "2024-Q4", "source": "groundwater", "declared_m3": 240.0, "tax_yuan": 720.0},
            {"uscc": A, "period": "2025-Q1", "source": "groundwater", "declared_m3": 1.0, "tax_yuan": 3.0},
        ]),
        "projects": typed("projects", []),
        "inspections": typed("inspections", []),
    }


@pytest.fixture(scope="module")
def hand_links(hand_city) -> pd.DataFrame:
    links = links_from_accounts(hand_city, {"DA": 0.8})
    # an account under review carries volume but must not be attributed or counted
    review = pd.DataFrame([{"account_id": "DR", "uscc": A, "source": "discharge", "method": "name_fuzzy",
                            "confidence": 0.5, "status": "review"}])
    return pd.concat([links, review], ignore_index=True)


@pytest.fixture(scope="module")
def hand_profiles(hand_city, hand_links) -> pd.DataFrame:
    return build_profiles(hand_city, hand_links, AS_OF)


def row(profiles: pd.DataFrame, uscc: str, month: str) -> pd.Series:
    hit = profiles[(profiles["uscc"] == uscc) & (profiles["month"] == pd.Timestamp(month))]
    assert len(hit) == 1
    return hit.iloc[0]


def test_progress_is_reported(hand_city, hand_links):
    seen = []

    def progress(iterable, desc=None, total=None):
        for item in iterable:
            seen.append((desc, item))
            yield item

    build_profiles(hand_city, hand_links, AS_OF, progress=progress)
    assert [d for d, _ in seen] == ["profiles"] * 7


def test_grid_is_registered_entities_times_months(hand_profiles):
    assert set(hand_profiles["uscc"]) == {A, B, C, D, E, "91371400TEST0000F"}  # G registers after as_of
    assert hand_profiles["month"].min() == MONTHS[0] and hand_profiles["month"].max() == MONTHS[-1]
    assert len(hand_profiles) == 6 * 24
    assert not hand_profiles.duplicated(["uscc", "month"]).any()


def test_balance_volumes_and_wet_season_exact(hand_profiles):
    r = row(hand_profiles, A, "2024-12-01")
    assert r["supply_m3"] == 100 and r["abstraction_m3"] == 100 and r["discharge_m3"] == 300  # review account ignored
    assert r["abstraction_groundwater_m3"] == 100 and r["abstraction_surface_m3"] == 0
    assert r["balance_ratio"] == pytest.approx(1.5)
    assert r["discharge_m3_12m"] == 6 * 150 + 6 * 300
    assert r["discharge_m3_3m"] == 900
    assert r["balance_ratio_12m"] == pytest.approx(2700 / 2400)
    assert r["discharge_measured_share_12m"] == 1.0
    assert r["wet_season_discharge_share_12m"] == pytest.approx((150 + 3 * 300) / 2700)
    # wet: (150 + 900) / 800; dry: (5 * 150 + 3 * 300) / 1600
    assert r["wet_dry_ratio_excess_12m"] == pytest.approx((1050 / 800) / (1650 / 1600) - 1)
    assert np.isnan(row(hand_profiles, A, "2023-11-01")["supply_m3_12m"])  # window not inside the data yet
    assert row(hand_profiles, A, "2023-12-01")["supply_m3_12m"] == 1200


def test_quota_plan_and_tax_exact(hand_profiles):
    assert row(hand_profiles, A, "2024-06-01")["quota_used_ytd"] == pytest.approx(0.5)
    r = row(hand_profiles, A, "2024-12-01")
    assert r["quota_used_ytd"] == pytest.approx(1.0)
    assert r["plan_used_ytd"] == pytest.approx((1200 + 1200) / 4800)
    assert r["tax_declared_ratio_q"] == pytest.approx(240 / 300) and r["tax_gap_m3_q"] == pytest.approx(60)
    assert r["tax_declared_ratio_4q"] == pytest.approx((250 + 240) / 1200)  # Q1/Q2 undeclared: 0
    n = row(hand_profiles, A, "2024-11-01")  # Q4 not ended: still Q3
    assert n["tax_declared_ratio_q"] == pytest.approx(250 / 300)


def test_level_shift_dated_at_planted_step(hand_profiles):
    r = row(hand_profiles, A, "2024-12-01")
    assert r["discharge_shift_since"] == pd.Timestamp("2024-07-01")
    assert r["discharge_shift"] == pytest.approx(1.0)  # 150 -> 300
    assert r["balance_shift_since"] == pd.Timestamp("2024-07-01")
    assert r["balance_shift"] == pytest.approx(1.5 - 0.75)
    assert pd.isna(r["supply_shift_since"]) and r["supply_shift_score"] == 0
    assert pd.isna(row(hand_profiles, A, "2024-06-01")["discharge_shift_since"])


def test_level_shift_on_noisy_series():
    from features.profile_series import change_point

    rng = np.random.default_rng(3)
    x = 100 + rng.normal(0, 5, size=(50, 36))
    x[:, 20:] += 60
    shift, score, since = change_point(x, 24, 3, relative=True, sd_floor=1.0)
    assert (since[:, -1] == 20).all()
    assert np.all(score[:, -1] > 10)
    assert np.allclose(shift[:, -1], 0.6, atol=0.1)
    flat = change_point(100 + rng.normal(0, 5, size=(50, 36)), 24, 3, relative=True, sd_floor=1.0)[1]
    assert np.mean(flat[:, -1] >= 4) < 0.1


def test_meter_behaviour_flags(hand_profiles):
    flags = hand_profiles[hand_profiles["uscc"] == B].set_index("month")
    assert flags.loc["2024-05-01", "flat_reading"] == 1 and flags.loc["2024-05-01", "flat_run_months"] == 3
    assert flags.loc["2024-04-01", "flat_reading"] == 0 and flags.loc["2024-06-01", "flat_reading"] == 0
    assert flags["flat_reading"].sum() == 1
    assert flags.loc["2024-08-01", "zero_while_permitted"] == 1 and flags["zero_while_permitted"].sum() == 1
    assert flags.loc["2024-09-01", "abstraction_missing"] == 1 and flags["abstraction_missing"].sum() == 1
    assert flags.loc["2024-10-01", "supply_drop"] == 1 and flags["supply_drop"].sum() == 1
    assert flags["manual_share"].dropna().eq(1.0).all()
    assert row(hand_profiles, A, "2024-12-01")["flat_run_months"] == 24  # a meter that never moves


def test_permit_status_codes(hand_profiles):
    last = hand_profiles[hand_profiles["month"] == MONTHS[-1]].set_index("uscc")["permit_status"]
    assert last[A] == "valid" and last[C] == "expiring" and last[D] == "expired" and last[E] == "revoked"
    assert last["91371400TEST0000F"] == "none"
    assert row(hand_profiles, D, "2024-01-01")["permit_status"] == "expiring"  # 59 days left on 2024-02-01
    assert row(hand_profiles, D, "2023-06-01")["permit_status"] == "valid"
    assert row(hand_profiles, C, "2024-12-01")["quota_in_force_m3"] == 100  # the 2025 permit is not known yet
    assert row(hand_profiles, C, "2024-12-01")["permit_days_to_expiry"] == 45


def test_linkage_confidence(hand_profiles):
    r = row(hand_profiles, A, "2024-12-01")
    assert r["link_confidence_min"] == pytest.approx(0.8)
    assert r["link_confidence_mean"] == pytest.approx(0.9)
    assert r["linked_accounts"] == 2
    assert row(hand_profiles, C, "2024-12-01")["linked_accounts"] == 0


def test_snapshot_rows_meta_and_values(hand_city, hand_profiles):
    snap = entity_snapshot(hand_profiles, hand_city, AS_OF)
    assert list(snap.index) == sorted([A, B, C, D, E])  # F deregistered, G not yet registered
    assert snap.index.name == "uscc"
    assert list(snap.columns[: len(SNAPSHOT_META)]) == SNAPSHOT_META
    assert snap.loc[A, "size_band"] == "micro" and snap.loc[D, "size_band"] == "unknown"
    assert snap.loc[A, "industry_section"] == "C"
    features = snap.drop(columns=SNAPSHOT_META)
    assert (features.dtypes == "float64").all()
    assert not np.isinf(features.to_numpy()).any()
    assert snap.loc[A, "naive_discharge_supply_ratio"] == pytest.approx(2700 / 1200)
    assert np.isnan(snap.loc[C, "naive_discharge_supply_ratio"])  # no supply: NaN, not inf
    assert snap.loc[A, "months_since_discharge_shift"] == 6
    assert snap.loc[A, "quota_used_ytd"] == pytest.approx(1.0)
    assert snap.loc[A, "discharge_trend_6v12"] == pytest.approx(300 / 150 - 1)
    assert snap.loc[B, "flat_reading_months_12m"] == 1 and snap.loc[B, "supply_drop_months_12m"] == 1
    assert snap.loc[C, "permit_expiring"] == 1 and snap.loc[C, ["permit_valid", "permit_none"]].sum() == 0
    assert snap.loc[E, "permit_revoked"] == 1


# -- peers --------------------------------------------------------------------


def test_peer_z_flags_planted_outlier_and_falls_back_to_section():
    rng = np.random.default_rng(0)
    codes = [f"9137140000PEER{i:04d}" for i in range(17)]
    industry = ["C1713"] * 12 + ["C2000", "C2000", "K7010", "C1713", None]
    employees = [10] * 17
    base = 100 + rng.normal(0, 10, 17)
    base[3] = 1000  # the planted outlier: ten times the use per employee
    months = pd.date_range("2024-01-01", periods=12, freq="MS")
    ents = [{"uscc": u, "name": u, "industry_code": c, "district": "x", "address": "x",
             "registered_on": pd.Timestamp("2015-01-01"), "deregistered_on": None, "employees": e,
             "registered_capital_wan": 1.0} for u, c, e in zip(codes, industry, employees)]
    supply = sum((monthly(f"S{i}", u, [base[i]] * 12, months) for i, u in enumerate(codes)), [])
    tables = {name: typed(name, []) for name in TABLES}
    tables["entities"] = typed("entities", ents)
    tables["supply"] = typed("supply", supply)
    prof = build_profiles(tables, links_from_accounts(tables), pd.Timestamp("2025-01-01"))
    z = prof[prof["month"] == months[-1]].set_index("uscc")["use_per_employee_peer_z"]
    assert z[codes[3]] > 5
    assert abs(z[codes[0]]) < 3
    assert z.drop(codes[3]).abs().max() < 3
    assert np.isfinite(z[codes[12]])  # class C2000 has 2 members: compared with section C
    assert np.isnan(z[codes[14]])  # alone in section K: no peers, no score
    assert np.isnan(z[codes[16]])  # unknown industry: no peers


def test_use_per_employee_is_a_years_rate_from_half_a_year_on():
    """A firm registered months ago is judged on what it used while it existed, not on a year's staff."""
    months = pd.date_range("2024-01-01", periods=24, freq="MS")
    old, eight, three = (f"9137140000UPE{i:05d}" for i in range(3))
    registered = {old: "2015-01-01", eight: "2025-05-01", three: "2025-10-01"}
    ents = [{"uscc": u, "name": u, "industry_code": "C1713", "district": "x", "address": "x",
             "registered_on": pd.Timestamp(r), "deregistered_on": None, "employees": 10,
             "registered_capital_wan": 1.0} for u, r in registered.items()]
    supply = []
    for i, (u, r) in enumerate(registered.items()):
        supply += monthly(f"S{i}", u, [100.0 if m >= pd.Timestamp(r) else None for m in months], months)
    tables = {name: typed(name, []) for name in TABLES}
    tables["entities"] = typed("entities", ents)
    tables["supply"] = typed("supply", supply)
    prof = build_profiles(tables, links_from_accounts(tables), pd.Timestamp("2026-01-01"))
    last = prof[prof["month"] == months[-1]].set_index("uscc")
    assert last.loc[old, "use_per_employee_12m"] == pytest.approx(1200 / 10)
    assert last.loc[eight, "inflow_m3_12m"] == pytest.approx(800)
    assert last.loc[eight, "use_per_employee_12m"] == pytest.approx(800 * 12 / 8 / 10)  # a year's rate
    assert np.isnan(last.loc[three, "use_per_employee_12m"])  # three months: too soon to judge


# -- no feature uses data after as_of ---------------------------------------


def random_city(seed: int = 1, n: int = 40, start: str = "2022-01-01", months: int = 36) -> dict[str, pd.DataFrame]:
    """A small random city with rows on both sides of any cut: registrations, permits, tax, projects."""
    rng = np.random.default_rng(seed)
    grid = pd.date_range(start, periods=months, freq="MS")
    codes = [f"9137140000RAND{i:04d}" for i in range(n)]
    reg = pd.to_datetime(start) + pd.to_timedelta(rng.integers(-2000, months * 30, n), unit="D")
    dereg = [pd.to_datetime(start) + pd.Timedelta(days=int(d)) if rng.random() < 0.2 else None
             for d in rng.integers(0, months * 30, n)]
    ents = [{"uscc": u, "name": u, "industry_code": rng.choice(["C1713", "C1714", "H6110"]), "district": "x",
             "address": "x", "registered_on": r, "deregistered_on": d,
             "employees": int(rng.integers(1, 200)) if rng.random() < 0.9 else None,
             "registered_capital_wan": 10.0} for u, r, d in zip(codes, reg, dereg)]
    supply, discharge, permits, abstraction, tax, plans, projects = [], [], [], [], [], [], []
    for i, u in enumerate(codes):
        level = rng.lognormal(5, 1)
        vals = [level * rng.uniform(0.5, 1.5) if rng.random() > 0.1 else None for _ in grid]
        if i % 7 == 0:  # a step
            vals = [v * (3 if k > months // 2 and v is not None else 1) if v is not None else None
                    for k, v in enumerate(vals)]
        supply += monthly(f"S{i}", u if i % 5 else None, vals, grid)
        discharge += monthly(f"D{i}", u, [v * rng.uniform(0.3, 1.6) if v else v for v in vals], grid,
                             measured=bool(i % 2))
        if i % 2 == 0:
            first = grid[int(rng.integers(0, months))]
            pid = f"P{i}"
            permits.append({"permit_id": pid, "uscc": u, "holder_name": u, "source": rng.choice(["groundwater", "surface"]),
                            "purpose": "industrial", "annual_quota_m3": float(rng.integers(1000, 50000)),
                            "valid_from": first, "valid_to": first + pd.Timedelta(days=int(rng.integers(100, 1500))),
                            "status": rng.choice(["valid", "valid", "revoked"]), "wells": 1})
            run = [None if m < first else (float(rng.integers(0, 4)) * 100 if rng.random() < 0.3 else level)
                   for m in grid]
            abstraction += meter(pid, f"M{i}", run, grid, reading=rng.choice(["online", "manual"]))
            for q in pd.period_range(grid[0], grid[-1], freq="Q"):
                tax.append({"uscc": u, "period": str(q).replace("Q", "-Q"), "source": "groundwater",
                            "declared_m3": float(rng.integers(0, 3000)), "tax_yuan": 1.0})
            for y in range(grid[0].year, grid[-1].year + 1):
                plans.append({"uscc": u, "year": y, "planned_m3": float(rng.integers(1000, 90000))})
        if i % 9 == 0:
            projects.append({"project_id": f"J{i}", "uscc": u, "project_name": "x", "kind": "industrial",
                             "approved_on": grid[5], "construction_start_on": grid[int(rng.integers(0, months))],
                             "district": "x", "dewatering": True, "expected_annual_water_m3": 1.0})
    return {
        "entities": typed("entities", ents), "supply": typed("supply", supply),
        "discharge": typed("discharge", discharge), "permits": typed("permits", permits),
        "abstraction": typed("abstraction", abstraction), "tax": typed("tax", tax), "plans": typed("plans", plans),
        "projects": typed("projects", projects), "inspections": typed("inspections", []),
    }


def truncate(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Only what was known at as_of."""
    t = dict(tables)
    for name in ("supply", "discharge", "abstraction"):
        t[name] = t[name][t[name]["month"] < as_of]
    t["entities"] = t["entities"][t["entities"]["registered_on"] < as_of]
    t["entities"] = t["entities"].assign(
        deregistered_on=t["entities"]["deregistered_on"].where(t["entities"]["deregistered_on"] < as_of)
    )
    t["permits"] = t["permits"][t["permits"]["valid_from"] < as_of]
    t["tax"] = t["tax"][t["tax"]["period_start"] + pd.DateOffset(months=3) <= as_of]
    t["projects"] = t["projects"][t["projects"]["approved_on"] < as_of]
    t["projects"] = t["projects"].assign(
        construction_start_on=t["projects"]["construction_start_on"].where(t["projects"]["construction_start_on"] < as_of)
    )
    return t


def scramble_after(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, seed: int = 9) -> dict[str, pd.DataFrame]:
    """Change every monthly volume and tax declaration after as_of."""
    rng = np.random.default_rng(seed)
    t = dict(tables)
    for name in ("supply", "discharge", "abstraction"):
        later = t[name]["month"] >= as_of
        t[name] = t[name].assign(volume_m3=t[name]["volume_m3"].where(~later, rng.uniform(0, 1e5, len(later))))
    later = t["tax"]["period_start"] + pd.DateOffset(months=3) > as_of
    t["tax"] = t["tax"].assign(declared_m3=t["tax"]["declared_m3"].where(~later, 0.0))
    return t


@pytest.fixture(scope="module")
def city():
    return random_city()


@pytest.mark.parametrize("as_of", [pd.Timestamp("2023-11-01"), pd.Timestamp("2024-02-01")])
def test_no_feature_uses_data_after_as_of(city, as_of):
    links = links_from_accounts(city)
    prof = build_profiles(city, links, as_of)
    snap = entity_snapshot(prof, city, as_of)
    assert prof["month"].max() == as_of - pd.DateOffset(months=1)
    for altered in (truncate(city, as_of), scramble_after(city, as_of)):
        prof2 = build_profiles(altered, links, as_of)
        pd.testing.assert_frame_equal(prof, prof2)
        pd.testing.assert_frame_equal(snap, entity_snapshot(prof2, altered, as_of))


@pytest.mark.parametrize("early", [pd.Timestamp("2023-07-01"), pd.Timestamp("2023-08-01")])
def test_profile_rows_are_causal_across_as_of(city, early):
    """Built later with more data, the rows of earlier months do not change."""
    links = links_from_accounts(city)
    late = pd.Timestamp("2025-01-01")
    prof = build_profiles(city, links, early)
    later = build_profiles(city, links, late)
    later = later[(later["month"] < early) & later["uscc"].isin(prof["uscc"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(prof, later)
    # snapshot from the later profiles, cut at the early as_of, equals the early snapshot
    pd.testing.assert_frame_equal(entity_snapshot(prof, city, early), entity_snapshot(later, city, early))


def test_history_months_keeps_the_tail(city):
    links = links_from_accounts(city)
    full = build_profiles(city, links, pd.Timestamp("2024-07-01"))
    tail = build_profiles(city, links, pd.Timestamp("2024-07-01"), history_months=6)
    assert tail["month"].nunique() == 6
    pd.testing.assert_frame_equal(
        full[full["month"] >= pd.Timestamp("2024-01-01")].reset_index(drop=True), tail.reset_index(drop=True)
    )


# -- dictionary and the sample drop ------------------------------------------------


def _assert_documented(prof: pd.DataFrame, snap: pd.DataFrame) -> None:
    in_profile = {k for k, v in DATA_DICTIONARY.items() if "profile" in v["tables"]}
    in_snapshot = {k for k, v in DATA_DICTIONARY.items() if "snapshot" in v["tables"]}
    assert set(prof.columns) <= in_profile, set(prof.columns) - in_profile
    assert set(snap.columns) | {snap.index.name} <= in_snapshot, set(snap.columns) - in_snapshot


def test_dictionary_covers_columns_and_doc_is_current(hand_city, hand_profiles, city):
    _assert_documented(hand_profiles, entity_snapshot(hand_profiles, hand_city, AS_OF))
    for entry in DATA_DICTIONARY.values():
        assert entry["meaning"] and entry["meaning_zh"] and entry["unit"]
        if "snapshot" in entry["tables"] and entry["name"] not in SNAPSHOT_META + ["uscc"]:
            # flags read as plain sentences; every other feature quotes its value
            assert entry["unit"] == "flag" or "{value" in entry["reason_zh"], entry["name"]
            assert entry["reason_zh"].format(value=0.5)
    committed = (ROOT / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert committed == render_data_dictionary(), "run features.dictionary.write_data_dictionary('docs/data_dictionary.md')"


def test_sample_drop_smoke(sample_drop, tmp_path):
    from features.ingest import ingest
    from features.linkage import link_accounts
    from features.settings import LinkageSettings
    from features.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ingest(sample_drop, ws)
    tables, as_of = ws.typed_tables(), ws.as_of()
    links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], LinkageSettings())
    prof = build_profiles(tables, links, as_of)
    snap = entity_snapshot(prof, tables, as_of)
    ents = tables["entities"]
    registered = ents["registered_on"].isna() | (ents["registered_on"] < as_of)
    assert prof["uscc"].nunique() == registered.sum()
    assert len(prof) == registered.sum() * prof["month"].nunique()
    assert prof["month"].max() == as_of - pd.DateOffset(months=1)
    existing = registered & (ents["deregistered_on"].isna() | (ents["deregistered_on"] >= as_of))
    assert len(snap) == existing.sum() and snap.index.is_unique
    features = snap.drop(columns=SNAPSHOT_META)
    assert (features.dtypes == "float64").all() and not np.isinf(features.to_numpy()).any()
    # linked supply is attributed: most volume lands on entities
    assert prof["supply_m3"].sum() > 0.5 * tables["supply"].loc[tables["supply"]["month"] < as_of, "volume_m3"].sum()
    assert snap["naive_discharge_supply_ratio"].notna().sum() > 0.2 * len(snap)
    _assert_documented(prof, snap)
    # the pipeline saves profiles as Parquet (month becomes datetime64[ms]); the snapshot must not change
    prof.to_parquet(tmp_path / "profiles.parquet", index=False)
    pd.testing.assert_frame_equal(entity_snapshot(pd.read_parquet(tmp_path / "profiles.parquet"), tables, as_of), snap)


# -- compliance evidence and own-history shifts in the snapshot --------------------------

P_, Q_, R_, S_, T_, U_, V_ = (f"91371400COMP0000{x}" for x in "PQRSTUV")


@pytest.fixture(scope="module")
def compliance_city() -> dict[str, pd.DataFrame]:
    """P pumps after its permit expired, Q over its quota, R under-declares tax (and skips a reading),
    S declares groundwater tax holding only a surface permit, T's meter drops while discharge holds,
    U's supply drops while discharge holds, V is ordinary."""
    entity = lambda u: {  # noqa: E731
        "uscc": u, "name": u, "industry_code": "C1713", "district": "德城区", "address": "x",
        "registered_on": pd.Timestamp("2010-01-01"), "deregistered_on": None, "employees": 10,
        "registered_capital_wan": 1.0,
    }
    permit = lambda pid, u, source, quota, stop="2030-12-31", status="valid": {  # noqa: E731
        "permit_id": pid, "uscc": u, "holder_name": "x", "source": source, "purpose": "industrial",
        "annual_quota_m3": quota, "valid_from": pd.Timestamp("2020-01-01"), "valid_to": pd.Timestamp(stop),
        "status": status, "wells": 1,
    }
    tax = lambda u, period, source, m3: {"uscc": u, "period": period, "source": source, "declared_m3": m3,  # noqa: E731
                                         "tax_yuan": 1.0}
    r_meter = [300.0] * 24
    r_meter[MONTHS.get_loc(pd.Timestamp("2024-05-01"))] = None
    t_meter = [200.0 if m < pd.Timestamp("2024-07-01") else 50.0 for m in MONTHS]
    u_supply = [400.0 if m < pd.Timestamp("2024-04-01") else 100.0 for m in MONTHS]
    return {
        "entities": typed("entities", [entity(u) for u in (P_, Q_, R_, S_, T_, U_, V_)]),
        "supply": typed("supply", monthly("SU", U_, u_supply) + monthly("SV", V_, [100] * 24)),
        "discharge": typed("discharge", monthly("DT", T_, [180] * 24, measured=True)
                           + monthly("DU", U_, [360] * 24, measured=True)
                           + monthly("DV", V_, [80] * 24, measured=True)),
        "permits": typed("permits", [
            permit("PP", P_, "groundwater", 1e4, stop="2024-06-30"),
            permit("PQ", Q_, "surface", 1200.0),
            permit("PR", R_, "groundwater", 1e5),
            permit("PS", S_, "surface", 1e5),
            permit("PT", T_, "groundwater", 1e5),
        ]),
        "abstraction": typed("abstraction", meter("PP", "MP", [100] * 24) + meter("PQ", "MQ", [150] * 24)
                             + meter("PR", "MR", r_meter) + meter("PT", "MT", t_meter)),
        "tax": typed("tax", [
            tax(R_, "2024-Q1", "groundwater", 900.0), tax(R_, "2024-Q2", "groundwater", 450.0),
            tax(R_, "2024-Q3", "groundwater", 450.0), tax(R_, "2024-Q4", "groundwater", 900.0),
            tax(R_, "2023-Q4", "groundwater", 0.0),  # ended before the last 4 quarters: not counted
            tax(S_, "2024-Q2", "groundwater", 500.0), tax(S_, "2024-Q3", "groundwater", 500.0),
            tax(S_, "2023-Q3", "groundwater", 999.0),  # outside the window
            tax(S_, "2024-Q3", "surface", 300.0),  # covered by the surface permit
            tax(T_, "2024-Q4", "groundwater", 600.0),
            tax(T_, "2025-Q1", "groundwater", 9e9),  # not ended at as_of
        ]),
        "plans": typed("plans", []),
        "projects": typed("projects", []),
        "inspections": typed("inspections", []),
    }


@pytest.fixture(scope="module")
def compliance_snapshot(compliance_city) -> pd.DataFrame:
    links = links_from_accounts(compliance_city)
    return entity_snapshot(build_profiles(compliance_city, links, AS_OF), compliance_city, AS_OF)


def test_snapshot_unpermitted_abstraction_exact(compliance_snapshot):
    s = compliance_snapshot
    assert s.loc[P_, "abstraction_after_expiry_m3_12m"] == 600  # July-December, after valid_to 2024-06-30
    # the entity-month status is the end-of-month state: June already has no permit in force
    assert s.loc[P_, "abstraction_no_valid_permit_m3_12m"] == 700
    assert s.loc[P_, "abstraction_no_valid_permit_share_12m"] == pytest.approx(700 / 1200)
    assert s.loc[[Q_, R_, T_, V_], "abstraction_after_expiry_m3_12m"].eq(0).all()
    assert s.loc[[Q_, R_, T_, V_], "abstraction_no_valid_permit_m3_12m"].eq(0).all()
    assert np.isnan(s.loc[V_, "abstraction_no_valid_permit_share_12m"])  # nothing metered
    assert s.loc[S_, "tax_declared_without_permit_m3_4q"] == 1000  # groundwater declared, surface permit only
    assert s.loc[[P_, Q_, R_, T_, U_, V_], "tax_declared_without_permit_m3_4q"].eq(0).all()


def test_snapshot_quota_and_tax_evidence_exact(compliance_snapshot):
    s = compliance_snapshot
    assert s.loc[Q_, "permit_quota_used_max_12m"] == pytest.approx(1.5)
    assert s.loc[Q_, "permit_quota_pace_max_3m"] == pytest.approx(1.5)
    assert s.loc[Q_, "quota_excess_m3_12m"] == pytest.approx(600)
    assert s.loc[R_, "quota_excess_m3_12m"] == 0 and np.isnan(s.loc[V_, "permit_quota_used_max_12m"])
    # R: metered 900 a quarter (the skipped May filled at the quarter mean), declared 900/450/450/900
    assert s.loc[R_, "tax_undeclared_m3_4q"] == pytest.approx(900)
    assert s.loc[R_, "tax_undeclared_share_4q"] == pytest.approx(0.25)  # median of 0, .5, .5, 0
    # P: metered, never declared; T: metered 600, 600, 150, 150, declared only 600 in Q4 (over-declared there)
    assert s.loc[P_, "tax_undeclared_m3_4q"] == pytest.approx(1200) and s.loc[P_, "tax_undeclared_share_4q"] == 1
    assert s.loc[T_, "tax_undeclared_m3_4q"] == pytest.approx(600 + 600 + 150 + 150 - 600)
    assert s.loc[T_, "tax_undeclared_share_4q"] == pytest.approx(1.0)  # median of 1, 1, 1, -0.75
    assert np.isnan(s.loc[V_, "tax_undeclared_m3_4q"]) and np.isnan(s.loc[U_, "tax_undeclared_share_4q"])


def test_snapshot_own_history_shifts_exact(compliance_snapshot):
    s = compliance_snapshot
    # T: the meter steps 200 -> 50 in July while discharge holds at 180
    assert s.loc[T_, "meter_drop_vs_activity"] == pytest.approx(np.log(201 / 51))
    assert s.loc[T_, "meter_drop_vs_activity_score"] > 10
    assert s.loc[T_, "balance_log_shift"] == pytest.approx(np.log(201 / 51))
    # U: supply steps 400 -> 100 in April while discharge holds: the balance rises against its own past
    assert s.loc[U_, "balance_log_shift"] == pytest.approx(np.log(401 / 101))
    assert np.isnan(s.loc[U_, "meter_drop_vs_activity"])  # no meter
    assert s.loc[V_, "balance_log_shift"] == 0 and s.loc[V_, "balance_log_shift_score"] == 0
    assert np.isnan(s.loc[Q_, "meter_drop_vs_activity"])  # a meter but no other water to compare it with
    assert np.isnan(s.loc[P_, "balance_log_shift"])  # no discharge account


def test_compliance_features_are_exercised_by_the_as_of_city(city):
    """The no-data-after-as_of city has every new feature non-trivial, so that test covers them."""
    as_of = pd.Timestamp("2024-02-01")
    snap = entity_snapshot(build_profiles(city, links_from_accounts(city), as_of), city, as_of)
    for col in ["abstraction_after_expiry_m3_12m", "abstraction_no_valid_permit_m3_12m",
                "abstraction_withdrawn_permit_m3_12m", "permit_quota_used_max_12m", "quota_excess_m3_12m", "tax_undeclared_m3_4q", "tax_undeclared_share_4q",
                "tax_declared_without_permit_m3_4q", "balance_log_shift", "meter_drop_vs_activity"]:
        assert (snap[col].fillna(0) != 0).any(), col


def test_recovered_share_tells_a_pause_that_ended_from_a_seasonal_well():
    """Three entities step down to 30 % of their water 8 months before as_of. A shutdown whose last two months
    are back at the old level has recovered about all of it; a well swap in a strongly seasonal business,
    whose last two months are its high season, has recovered nothing (each latest month is read against the
    same calendar months before the step); one still down has recovered nothing either."""
    from features.hidden_water import HISTORY_MONTHS, _months, _inflow_step

    as_of = pd.Timestamp("2026-11-01")
    months = pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), periods=HISTORY_MONTHS, freq="MS")
    season = np.where(np.isin(months.month, (9, 10)), 3.0, 1.0)  # the last two months are the high season
    step = np.where(np.arange(HISTORY_MONTHS) >= HISTORY_MONTHS - 8, 0.3, 1.0)
    paused = 1000.0 * step
    paused[-2:] = 1000.0
    supply = {"PAUSED": paused, "SEASONAL": 1000.0 * season * step, "DOWN": 1000.0 * step}
    rows = [{"uscc": u, "month": m, "active": 1, "supply_m3": v[i], "abstraction_m3": 0.0, "discharge_m3": 0.0,
             "discharge_measured_share": np.nan} for u, v in supply.items() for i, m in enumerate(months)]
    m, _ = _months(pd.DataFrame(rows), pd.Index(list(supply)), as_of)
    out = _inflow_step(m)
    recovered = dict(zip(supply, out["inflow_recovered_share"]))
    assert recovered["PAUSED"] > 0.9
    assert abs(recovered["SEASONAL"]) < 0.1 and abs(recovered["DOWN"]) < 0.1


def test_change_point_on_the_rows_that_can_split_equals_the_search_over_every_row():
    """The split search skips rows with fewer than 2 x min_segment observed months in the window (no side can
    hold min_segment): a row's numbers are the same whether the other rows are mostly such rows (the search runs
    on the rest alone) or mostly not (every row is searched), at every month and at the last month alone."""
    from features.profile_series import change_point, change_point_last

    rng = np.random.default_rng(7)
    M, ms = 30, 3
    live = rng.lognormal(3, 1, (40, M))
    live[rng.random((40, M)) < 0.2] = np.nan
    live[:5, :] = np.nan  # observed months just at and just under 2 x min_segment in the last window
    live[:3, -2 * ms:] = 50.0
    live[3:5, -(2 * ms - 1):] = 50.0
    live[5, :M // 2], live[5, M // 2:] = 10.0, 30.0  # a clean step
    dead = np.full((400, M), np.nan)
    dead[::2, :2 * ms - 1] = 7.0  # a few months, never enough for a split
    for relative, floor in ((True, 1.0), (False, 0.01)):
        alone = change_point(live, 24, ms, relative, floor)  # mostly rows that can split: all searched
        among = change_point(np.vstack([dead[:200], live, dead[200:]]), 24, ms, relative, floor)
        for a, b in zip(alone, among):
            np.testing.assert_array_equal(b[200:240], a)
            assert np.isnan(b[:200]).all() and np.isnan(b[240:]).all()
        assert np.isfinite(alone[1][5, -1]) and np.isfinite(alone[1][:3, -1]).all() and np.isnan(alone[1][3:5, -1]).all()
        last = change_point_last(np.vstack([dead, live]), 24, ms, relative, floor)
        for a, b in zip(alone, last):
            np.testing.assert_array_equal(b[400:], a[:, -1])


def test_hidden_water_wide_arrays_equal_the_pivot_table_they_replace():
    """Profile rows put straight into their entity x month cells give pivot_table's sums: a missing value alone
    in its cell sums to 0, a cell with no row is NaN, rows of other entities or months are left out; rows
    sharing a cell are added up (pivot_table itself)."""
    from features.profile_grid import wide_by_month as _wide

    months = pd.date_range("2025-01-01", periods=4, freq="MS")
    index = pd.Index(["B", "A", "Z"])  # Z has no row
    rows = pd.DataFrame({"uscc": ["A", "A", "B", "B", "C", "A"],
                         "month": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-02-01", "2025-04-01",
                                                  "2025-01-01", "2024-12-01"]),
                         "x": [1.5, np.nan, 2.0, 3.0, 9.0, 8.0], "on": [True, False, True, True, True, True]})
    for frame in (rows, pd.concat([rows, rows.iloc[[0, 2]]], ignore_index=True)):
        for column in ("x", "on"):
            pivot = frame.pivot_table(index="uscc", columns="month", values=column, aggfunc="sum", dropna=False)
            expected = pivot.reindex(index=index, columns=months).to_numpy(dtype="float64")
            np.testing.assert_array_equal(_wide(frame, column, index, months), expected)
    assert _wide(rows, "x", index, months)[1, 1] == 0.0 and np.isnan(_wide(rows, "x", index, months)[2]).all()
