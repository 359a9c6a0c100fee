"""Monthly enterprise profiles and the entity snapshot the risk model reads.

Every profile row (uscc, month) is causal: it uses only data of that month and
earlier (tax quarters ended by that month, permits dated before its end), so a
profile built at a later as-of has identical rows for the earlier months. The
computation runs on dense entity x month arrays (numpy along the month axis),
never per entity in Python.

The snapshot adds, at as_of only, compliance evidence an officer can act on (metered water with
no valid permit behind it, tax declared short of the meter or with no permit, a permit's quota
overrun) and shifts judged against the entity's own last 36 months rather than its size (the
log balance ratio stepping up; the meter stepping down while the discharge or supply holds).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from features.linkage import attribute_volumes
from features.profile_series import (
    change_point,
    forward_quarter,
    month_no,
    peer_z,
    rolling_sum,
    trailing_median,
)

SNAPSHOT_META = ["name", "district", "industry_code", "industry_section", "employees", "size_band"]

WET_MONTHS = (6, 7, 8, 9)  # June-September: combined sewers take rain water
EXPIRING_DAYS = 90
DROP_SHARE = 0.30  # a month below 30 % of its trailing 12-month median is a sudden drop
FLAT_MONTHS = 3
SHIFT_WINDOW = 24  # months searched for a level shift
SHIFT_MIN_SEGMENT = 3
SHIFT_SCORE = 4.0  # t-like score above which a shift is dated (shift_since)
PERMIT_STATUS = ["none", "valid", "expiring", "expired", "revoked"]
SHIFT_SERIES = ["balance", "supply", "abstraction", "discharge"]
SIZE_BANDS = [(20, "micro"), (300, "small"), (1000, "medium"), (np.inf, "large")]  # NBS industrial bands


def _month_ts(numbers: np.ndarray) -> np.ndarray:
    """Month numbers (year * 12 + month - 1; NaN allowed) as datetime64[s] month starts."""
    numbers = np.asarray(numbers, dtype="float64")
    ok = ~np.isnan(numbers)
    months = np.where(ok, numbers - 1970 * 12, 0).astype("int64").astype("datetime64[M]").astype("datetime64[s]")
    return np.where(ok, months, np.datetime64("NaT"))


class _Grid:
    """Dense entity x month frame: entity i, month j is month number m0 + j."""

    def __init__(self, uscc: np.ndarray, m0: int, months: int):
        self.uscc = uscc
        self.m0 = m0
        self.M = months
        self.E = len(uscc)
        self._index = pd.Index(uscc)

    def rows(self, uscc: pd.Series, month_numbers: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Flat cell index of each row and a mask of rows inside the grid."""
        ent = self._index.get_indexer(pd.Series(uscc).astype("str"))
        j = np.asarray(month_numbers, dtype="float64") - self.m0
        ok = (ent >= 0) & (j >= 0) & (j < self.M)
        return np.where(ok, ent * self.M + np.where(ok, j, 0).astype("int64"), 0), ok

    def total(self, uscc, month_numbers, weights=None) -> np.ndarray:
        flat, ok = self.rows(uscc, month_numbers)
        w = np.ones(len(flat)) if weights is None else np.nan_to_num(np.asarray(weights, dtype="float64"))
        return np.bincount(flat[ok], weights=w[ok], minlength=self.E * self.M).reshape(self.E, self.M)

    def maximum(self, uscc, month_numbers, values) -> np.ndarray:
        flat, ok = self.rows(uscc, month_numbers)
        out = np.zeros(self.E * self.M)
        np.maximum.at(out, flat[ok], np.asarray(values, dtype="float64")[ok])
        return out.reshape(self.E, self.M)


def _div(num, den):
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(np.isfinite(out) & (den > 0), out, np.nan)


def _attribute(monthly: pd.DataFrame, links: pd.DataFrame, source: str, before: int) -> pd.DataFrame:
    """Account-month rows known before month number `before`, moved to the linked entity (linked links only)."""
    cols = ["account_id", "month", "volume_m3"] + (["measured"] if "measured" in monthly.columns else [])
    monthly = monthly.loc[month_no(monthly["month"]) < before, cols]
    out = attribute_volumes(monthly, links, source)
    return out[out["uscc"].notna() & (out["uscc"] != "")]


def _registered(entities: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    ent = entities[entities["registered_on"].isna() | (entities["registered_on"] < as_of)]
    ent = ent.drop_duplicates("uscc").sort_values("uscc", kind="stable").reset_index(drop=True)
    # a deregistration dated on or after as_of is not known yet
    dereg = ent["deregistered_on"].where(ent["deregistered_on"] < as_of)
    return ent.assign(deregistered_on=dereg)


def _first_month(tables: dict[str, pd.DataFrame], before: int) -> int:
    numbers = [month_no(tables[n]["month"]) for n in ("supply", "discharge", "abstraction") if len(tables[n])]
    numbers = [m[m < before] for m in numbers]
    numbers = [int(m.min()) for m in numbers if len(m)]
    return min(numbers) if numbers else before - 12


def _permit_state(permits: pd.DataFrame, grid: _Grid, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """Permit status code, quota in force and days to expiry at the end of each month."""
    permits = permits[permits["uscc"].notna() & (permits["valid_from"].isna() | (permits["valid_from"] < as_of))]
    E, M = grid.E, grid.M
    ent = pd.Index(grid.uscc).get_indexer(permits["uscc"].astype("str"))
    permits = permits[ent >= 0]
    ent = ent[ent >= 0]
    # the state at the end of month j is the state on the first day of month j+1
    ends = _month_ts(np.arange(grid.m0 + 1, grid.m0 + M + 1))
    start = permits["valid_from"].astype("datetime64[s]").to_numpy()
    stop = permits["valid_to"].astype("datetime64[s]").to_numpy()
    is_valid = (permits["status"] == "valid").to_numpy()
    lapsed = permits["status"].isin(["revoked", "cancelled"]).to_numpy()
    known = np.isnat(start)[:, None] | (start[:, None] < ends[None, :])  # P x M
    before_stop = np.isnat(stop)[:, None] | (stop[:, None] >= ends[None, :])
    in_force = known & before_stop & is_valid[:, None]
    days_left = np.where(
        np.isnat(stop)[:, None], np.inf, (stop[:, None] - ends[None, :]) / np.timedelta64(1, "D")
    )
    quota = np.nan_to_num(permits["annual_quota_m3"].to_numpy(dtype="float64"))

    def per_entity(values: np.ndarray, how: str) -> np.ndarray:
        out = np.zeros((E, M)) if how == "sum" else np.full((E, M), np.inf)
        if how == "sum":
            np.add.at(out, ent, values)
        else:
            np.minimum.at(out, ent, values)
        return out

    n_force = per_entity(in_force.astype(float), "sum")
    quota_force = per_entity(np.where(in_force, quota[:, None], 0.0), "sum")
    days_to_expiry = per_entity(np.where(in_force, days_left, np.inf), "min")
    had_expired = per_entity((known & ~before_stop & is_valid[:, None]).astype(float), "sum") > 0
    had_lapsed = per_entity((known & lapsed[:, None]).astype(float), "sum") > 0
    gw = (permits["source"] == "groundwater").to_numpy()
    gw_force = per_entity((in_force & gw[:, None]).astype(float), "sum")

    code = np.zeros((E, M), dtype="int8")  # none
    code[had_expired] = 3
    code[had_lapsed & ~had_expired] = 4
    code[had_lapsed & had_expired] = 4
    code[n_force > 0] = 1
    code[(n_force > 0) & (days_to_expiry <= EXPIRING_DAYS)] = 2
    days_to_expiry = np.where(np.isfinite(days_to_expiry), days_to_expiry, np.nan)
    return {
        "code": code,
        "permits_in_force": n_force,
        "groundwater_permits_in_force": gw_force,
        "quota_in_force_m3": quota_force,
        "permit_days_to_expiry": days_to_expiry,
    }


def _meter_behaviour(abstr: pd.DataFrame, grid: _Grid) -> dict[str, np.ndarray]:
    """Flat repeated readings and manual share, meter by meter, rolled up to the entity."""
    a = abstr.sort_values(["meter_id", "m"], kind="stable")
    meter = a["meter_id"].astype("str").to_numpy()
    m = a["m"].to_numpy()
    v = a["volume_m3"].to_numpy(dtype="float64")
    same = np.zeros(len(a), dtype=bool)
    if len(a) > 1:
        same[1:] = (meter[1:] == meter[:-1]) & (m[1:] == m[:-1] + 1) & (v[1:] == v[:-1]) & (v[1:] > 0)
    run_id = np.cumsum(~same)
    run_len = pd.Series(1, index=a.index).groupby(run_id).cumsum().to_numpy()
    run_len = np.where(v > 0, run_len, 0)
    flat_run = grid.maximum(a["uscc"], a["m"], run_len)
    manual = grid.total(a["uscc"], a["m"], (a["reading"] == "manual").to_numpy(dtype=float))
    readings = grid.total(a["uscc"], a["m"])
    return {"flat_run_months": flat_run, "manual_share": _div(manual, readings), "readings": readings}


def build_profiles(
    tables: dict[str, pd.DataFrame],
    links: pd.DataFrame,
    as_of: pd.Timestamp,
    progress=None,
    history_months: int | None = None,
) -> pd.DataFrame:
    """One row per (registered entity, month < as_of), from the first month of metered data.

    ``history_months`` keeps only the last N months in the output; the features are
    computed on the whole history either way, so rows do not depend on it.
    """
    as_of = pd.Timestamp(as_of).normalize()
    A = as_of.year * 12 + as_of.month - 1
    stages = ["entities", "volumes", "balance", "level shifts", "meters, permits, tax", "peers, linkage", "frame"]
    steps = iter(progress(stages, desc="profiles", total=len(stages))) if progress else None

    def step():
        if steps is not None:
            next(steps, None)

    ent = _registered(tables["entities"], as_of)
    m0 = _first_month(tables, A)
    grid = _Grid(ent["uscc"].astype("str").to_numpy(), m0, A - m0)
    E, M = grid.E, grid.M
    months = m0 + np.arange(M)
    month_of_year = months % 12 + 1
    step()

    # -- volumes --------------------------------------------------------------
    supply = _attribute(tables["supply"], links, "supply", A)
    supply_m = month_no(supply["month"])
    discharge = _attribute(tables["discharge"], links, "discharge", A)
    discharge_m = month_no(discharge["month"])
    permits = tables["permits"]
    permits = permits[permits["valid_from"].isna() | (permits["valid_from"] < as_of)]
    abstr = tables["abstraction"]
    abstr = abstr.assign(m=month_no(abstr["month"]))
    abstr = abstr[abstr["m"] < A].merge(
        permits[["permit_id", "uscc", "source"]].drop_duplicates("permit_id"), on="permit_id", how="inner"
    )

    s = grid.total(supply["uscc"], supply_m, supply["volume_m3"])
    s_rows = grid.total(supply["uscc"], supply_m)
    d = grid.total(discharge["uscc"], discharge_m, discharge["volume_m3"])
    d_rows = grid.total(discharge["uscc"], discharge_m)
    d_measured = grid.total(
        discharge["uscc"], discharge_m, discharge["volume_m3"].where(discharge["measured"].fillna(False).astype(bool), 0)
    )
    a = grid.total(abstr["uscc"], abstr["m"], abstr["volume_m3"])
    a_gw = grid.total(abstr["uscc"], abstr["m"], abstr["volume_m3"].where(abstr["source"] == "groundwater", 0))
    a_sw = grid.total(abstr["uscc"], abstr["m"], abstr["volume_m3"].where(abstr["source"] == "surface", 0))
    inflow = s + a
    step()

    # -- activity -------------------------------------------------------------
    reg = month_no(ent["registered_on"]).to_numpy(dtype="float64")
    dereg = month_no(ent["deregistered_on"]).to_numpy(dtype="float64")
    active = (np.isnan(reg)[:, None] | (reg[:, None] <= months[None, :])) & (
        np.isnan(dereg)[:, None] | (dereg[:, None] >= months[None, :])
    )

    cols: dict[str, np.ndarray] = {
        "active": active.astype(float),
        "supply_m3": s,
        "abstraction_m3": a,
        "abstraction_groundwater_m3": a_gw,
        "abstraction_surface_m3": a_sw,
        "discharge_m3": d,
        "discharge_measured_share": _div(d_measured, d),
        "inflow_m3": inflow,
    }
    for name, x in [("supply", s), ("abstraction", a), ("discharge", d), ("inflow", inflow)]:
        cols[f"{name}_m3_3m"] = rolling_sum(x, 3)
        cols[f"{name}_m3_12m"] = rolling_sum(x, 12)
    cols["abstraction_groundwater_m3_12m"] = rolling_sum(a_gw, 12)
    cols["discharge_measured_share_12m"] = _div(rolling_sum(d_measured, 12), cols["discharge_m3_12m"])
    balance = _div(d, inflow)
    cols["balance_ratio"] = balance
    cols["balance_ratio_12m"] = _div(cols["discharge_m3_12m"], cols["inflow_m3_12m"])
    cols["discharge_without_inflow"] = ((d > 0) & (inflow <= 0)).astype(float)

    # -- wet season -----------------------------------------------------------
    wet = np.isin(month_of_year, WET_MONTHS)[None, :]
    d_wet12, d_dry12 = rolling_sum(d * wet, 12), rolling_sum(d * ~wet, 12)
    i_wet12, i_dry12 = rolling_sum(inflow * wet, 12), rolling_sum(inflow * ~wet, 12)
    cols["wet_season_discharge_share_12m"] = _div(d_wet12, cols["discharge_m3_12m"])
    cols["wet_dry_ratio_excess_12m"] = _div(_div(d_wet12, i_wet12), _div(d_dry12, i_dry12)) - 1.0
    step()

    # -- level shifts ---------------------------------------------------------
    for name, x in [("balance", balance), ("supply", s), ("abstraction", a), ("discharge", d)]:
        x = np.where(active, x, np.nan)
        relative = name != "balance"
        shift, score, since = change_point(
            x, SHIFT_WINDOW, SHIFT_MIN_SEGMENT, relative=relative, sd_floor=1.0 if relative else 0.01
        )
        cols[f"{name}_shift"] = shift
        cols[f"{name}_shift_score"] = score
        cols[f"{name}_shift_since"] = np.where(score >= SHIFT_SCORE, since + m0, np.nan)
    step()

    # -- meters and gaps ------------------------------------------------------
    meters = _meter_behaviour(abstr, grid)
    cols["flat_run_months"] = meters["flat_run_months"]
    cols["flat_reading"] = (meters["flat_run_months"] >= FLAT_MONTHS).astype(float)
    cols["manual_share"] = meters["manual_share"]
    permit = _permit_state(tables["permits"], grid, as_of)
    status = permit.pop("code")
    permitted = np.isin(status, [PERMIT_STATUS.index("valid"), PERMIT_STATUS.index("expiring")])
    cols.update(permit)
    cols["zero_while_permitted"] = (permitted & (meters["readings"] > 0) & (a <= 0)).astype(float)
    cols["abstraction_missing"] = (permitted & (meters["readings"] == 0)).astype(float)
    cols["abstraction_without_permit"] = ((a > 0) & ~permitted).astype(float)
    for name, rows in [("supply", s_rows), ("discharge", d_rows)]:
        seen = np.cumsum(rows > 0, axis=1) > 0
        cols[f"{name}_missing"] = (seen & (rows == 0)).astype(float)
    for name, x in [("supply", s), ("abstraction", a), ("discharge", d)]:
        med = trailing_median(np.where(active, x, np.nan), 12, min_count=6)
        cols[f"{name}_drop"] = (active & (med > 0) & (x < DROP_SHARE * med)).astype(float)

    # -- quota and plan use year to date ---------------------------------------
    year = months // 12
    first_of_year = np.maximum(np.searchsorted(months, year * 12), 0)
    a_cum, inflow_cum = np.cumsum(a, axis=1), np.cumsum(inflow, axis=1)

    def ytd(cum: np.ndarray) -> np.ndarray:
        before = np.where(first_of_year > 0, cum[:, np.maximum(first_of_year - 1, 0)], 0.0)
        out = cum - before
        # a year that started before the grid has no full YTD
        return np.where((year * 12 >= m0)[None, :], out, np.nan)

    cols["abstraction_ytd_m3"] = ytd(a_cum)
    cols["quota_used_ytd"] = _div(cols["abstraction_ytd_m3"], permit["quota_in_force_m3"])
    plans = tables["plans"]
    plan_rows = plans[plans["year"].notna()]
    p_year = plan_rows["year"].astype("int64").to_numpy()
    planned = np.full((E, M), np.nan)
    ent_idx = pd.Index(grid.uscc).get_indexer(plan_rows["uscc"].astype("str"))
    by_year = pd.DataFrame({"e": ent_idx, "y": p_year, "v": plan_rows["planned_m3"].to_numpy()})
    by_year = by_year[by_year["e"] >= 0].groupby(["e", "y"], as_index=False)["v"].sum(min_count=1)
    for y in np.unique(year):  # a handful of calendar years, not entities
        sel = by_year[by_year["y"] == y]
        col = year == y
        planned[np.ix_(sel["e"].to_numpy(), np.flatnonzero(col))] = sel["v"].to_numpy()[:, None]
    cols["planned_m3"] = planned
    cols["use_ytd_m3"] = ytd(inflow_cum)
    cols["plan_used_ytd"] = _div(cols["use_ytd_m3"], planned)

    # -- tax declared vs metered per quarter ------------------------------------
    tax = tables["tax"]
    tax = tax[tax["period_start"].notna()]
    q_end = month_no(tax["period_start"]) + 2
    tax = tax[q_end < A]
    q_end = q_end[q_end < A]
    declared = grid.total(tax["uscc"], q_end, tax["declared_m3"])
    declarant = grid.total(tax["uscc"], q_end) > 0
    is_q_end = (months % 3 == 2)[None, :]
    metered_q = np.where(is_q_end, cols["abstraction_m3_3m"], np.nan)
    has_q = (declarant | (metered_q > 0)) & is_q_end
    cols["tax_declared_m3_q"] = forward_quarter(np.where(has_q, declared, np.nan), months)
    cols["tax_metered_m3_q"] = forward_quarter(np.where(has_q, metered_q, np.nan), months)
    cols["tax_gap_m3_q"] = cols["tax_metered_m3_q"] - cols["tax_declared_m3_q"]
    cols["tax_declared_ratio_q"] = _div(cols["tax_declared_m3_q"], cols["tax_metered_m3_q"])
    declared_4q = rolling_sum(declared, 12)
    metered_4q = cols["abstraction_m3_12m"]
    has_4q = (rolling_sum(declarant.astype(float), 12) > 0) | (metered_4q > 0)
    cols["tax_declared_m3_4q"] = forward_quarter(np.where(has_4q & is_q_end, declared_4q, np.nan), months)
    cols["tax_metered_m3_4q"] = forward_quarter(np.where(has_4q & is_q_end, metered_4q, np.nan), months)
    cols["tax_declared_ratio_4q"] = _div(cols["tax_declared_m3_4q"], cols["tax_metered_m3_4q"])
    step()

    # -- peers ----------------------------------------------------------------
    employees = ent["employees"].astype("float64").to_numpy()
    employees = np.where(employees > 0, employees, np.nan)
    cols["use_per_employee_12m"] = _div(cols["inflow_m3_12m"], employees[:, None])
    industry = ent["industry_code"].astype("str").fillna("").to_numpy()
    section = np.array([c[:1] for c in industry.tolist()], dtype=object)
    log_use = np.log10(1.0 + cols["use_per_employee_12m"])  # use is heavy-tailed; zero use stays comparable
    cols["use_per_employee_peer_z"] = peer_z(np.where(active, log_use, np.nan), industry, section)
    cols["balance_ratio_peer_z"] = peer_z(np.where(active, cols["balance_ratio_12m"], np.nan), industry, section)

    # -- linkage --------------------------------------------------------------
    link_cols = {}
    for_entity = links[(links["status"] == "linked") & links["uscc"].notna()]
    agg = for_entity.groupby("uscc")["confidence"].agg(["min", "mean", "size"])
    agg = agg.reindex(grid.uscc)
    link_cols["link_confidence_min"] = agg["min"].to_numpy(dtype="float64")
    link_cols["link_confidence_mean"] = agg["mean"].to_numpy(dtype="float64")
    link_cols["linked_accounts"] = agg["size"].fillna(0).to_numpy(dtype="float64")
    step()

    # -- long frame -----------------------------------------------------------
    step()
    frame = _long_frame(grid, months, status, cols, link_cols, history_months)
    for _ in steps or ():  # let the progress bar close
        pass
    return frame


def _long_frame(grid: _Grid, months, status, cols: dict, link_cols: dict, history_months: int | None) -> pd.DataFrame:
    """Flatten the arrays into one float block (filled column by column, freeing each array) plus keys."""
    E, M = grid.E, grid.M
    keep = slice(max(0, M - history_months), M) if history_months else slice(0, M)
    Mk = len(range(M)[keep])
    since = {name: cols.pop(name) for name in list(cols) if name.endswith("_since")}
    names = list(cols) + list(link_cols)
    block = np.empty((len(names), E * Mk))
    for i, name in enumerate(names):
        if name in cols:
            flat = np.ravel(np.asarray(cols.pop(name), dtype="float64")[:, keep])
            block[i] = np.where(np.isfinite(flat), flat, np.nan)
        else:
            block[i] = np.repeat(link_cols[name], Mk)
    frame = pd.DataFrame(block.T, columns=names, copy=False)
    for name, x in since.items():
        frame.insert(frame.columns.get_loc(name.replace("_since", "_score")) + 1, name, _month_ts(np.ravel(x[:, keep])))
    frame.insert(0, "permit_status", pd.Categorical.from_codes(np.ravel(status[:, keep]), PERMIT_STATUS).astype("str"))
    frame.insert(0, "month", np.tile(_month_ts(months[keep]), E))
    frame.insert(0, "uscc", pd.array(np.repeat(grid.uscc, Mk), dtype="str"))
    return frame


# -- snapshot -----------------------------------------------------------------

_LAST = [  # profile columns taken as they stand in the last month before as_of
    "supply_m3_12m", "abstraction_m3_12m", "abstraction_groundwater_m3_12m", "discharge_m3_12m", "inflow_m3_12m",
    "discharge_measured_share_12m", "balance_ratio_12m", "use_per_employee_12m", "use_per_employee_peer_z",
    "balance_ratio_peer_z", "wet_season_discharge_share_12m", "wet_dry_ratio_excess_12m", "flat_run_months",
    "permits_in_force", "groundwater_permits_in_force", "quota_in_force_m3", "permit_days_to_expiry",
    "quota_used_ytd", "plan_used_ytd", "tax_declared_ratio_q", "tax_gap_m3_q", "tax_declared_ratio_4q",
    "link_confidence_min", "link_confidence_mean", "linked_accounts",
] + [f"{s}_shift" for s in SHIFT_SERIES] + [f"{s}_shift_score" for s in SHIFT_SERIES]

_COUNT_12M = [  # monthly flags counted over the last 12 months
    "flat_reading", "zero_while_permitted", "abstraction_missing", "abstraction_without_permit", "supply_missing",
    "discharge_missing", "supply_drop", "abstraction_drop", "discharge_drop", "discharge_without_inflow",
]


def size_band(employees: pd.Series) -> pd.Series:
    """micro / small / medium / large by employees (NBS industrial thresholds), 'unknown' when empty."""
    e = employees.astype("float64")
    band = pd.Series("unknown", index=employees.index, dtype="str")
    lower = 0.0
    for upper, name in SIZE_BANDS:
        band = band.mask((e >= lower) & (e < upper), name)
        lower = upper
    return band


def entity_snapshot(profiles: pd.DataFrame, tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per entity existing at as_of: meta columns then float features of its profile at as_of."""
    as_of = pd.Timestamp(as_of).normalize()
    ents = tables["entities"]
    ents = ents[(ents["registered_on"].isna() | (ents["registered_on"] < as_of))]
    ents = ents[ents["deregistered_on"].isna() | (ents["deregistered_on"] >= as_of)]
    ents = ents.drop_duplicates("uscc").set_index("uscc").sort_index()
    ents.index = ents.index.astype("str")
    snap = pd.DataFrame(index=ents.index)
    snap.index.name = "uscc"
    snap["name"] = ents["name"]
    snap["district"] = ents["district"]
    snap["industry_code"] = ents["industry_code"]
    snap["industry_section"] = ents["industry_code"].str[:1]
    snap["employees"] = ents["employees"]
    snap["size_band"] = size_band(ents["employees"])

    prof = profiles[profiles["month"] < as_of]
    last_month = as_of - pd.DateOffset(months=1)
    last = prof[prof["month"] == last_month].set_index("uscc").reindex(snap.index)
    recent = prof[prof["month"] >= as_of - pd.DateOffset(months=12)]
    g = recent.groupby("uscc")

    feats: dict[str, pd.Series] = {}
    for c in _LAST:
        feats[c] = last[c]
    feats["naive_discharge_supply_ratio"] = pd.Series(
        _div(last["discharge_m3_12m"], last["supply_m3_12m"]), index=snap.index
    )
    for c in _COUNT_12M:
        feats[f"{c}_months_12m"] = g[c].sum(min_count=1).reindex(snap.index)
    feats["manual_share_12m"] = g["manual_share"].mean().reindex(snap.index)
    feats["quota_used_12m"] = pd.Series(_div(last["abstraction_m3_12m"], last["quota_in_force_m3"]), index=snap.index)
    for name in PERMIT_STATUS:
        feats[f"permit_{name}"] = (last["permit_status"] == name).astype("float64").where(last["permit_status"].notna())
    for s in SHIFT_SERIES:
        since = last[f"{s}_shift_since"]
        feats[f"months_since_{s}_shift"] = (
            (as_of.year - since.dt.year) * 12 + (as_of.month - since.dt.month)
        ).astype("float64")
    # trend: mean of the last 6 months against the 12 before them
    prev = prof[(prof["month"] >= as_of - pd.DateOffset(months=18)) & (prof["month"] < as_of - pd.DateOffset(months=6))]
    last6 = prof[prof["month"] >= as_of - pd.DateOffset(months=6)]
    for s in ["supply", "abstraction", "discharge"]:
        col = f"{s}_m3"
        m_prev = prev.groupby("uscc")[col].mean().reindex(snap.index)
        m_last = last6.groupby("uscc")[col].mean().reindex(snap.index)
        feats[f"{s}_trend_6v12"] = pd.Series(_div(m_last, m_prev), index=snap.index) - 1.0

    reg = ents["registered_on"]
    feats["entity_age_years"] = ((as_of - reg).dt.days / 365.25).astype("float64")
    feats["registered_capital_wan"] = ents["registered_capital_wan"].astype("float64")
    feats.update(_project_features(tables, snap.index, as_of))
    feats.update(_compliance_features(prof, tables, snap.index, as_of))
    feats.update(_own_history_features(prof, snap.index, as_of))

    frame = pd.DataFrame({k: pd.Series(v, index=snap.index).astype("float64") for k, v in feats.items()})
    frame = frame.where(np.isfinite(frame.to_numpy()), np.nan)
    return pd.concat([snap, frame], axis=1)


def _project_features(tables: dict[str, pd.DataFrame], index: pd.Index, as_of: pd.Timestamp) -> dict[str, pd.Series]:
    """Dewatering works under construction need a dewatering permit: counted, and flagged when none is held."""
    projects = tables.get("projects")
    permits = tables["permits"]
    if projects is None or not len(projects):
        zero = pd.Series(0.0, index=index)
        return {"dewatering_projects": zero, "dewatering_without_permit": zero}
    started = projects[
        projects["construction_start_on"].notna()
        & (projects["construction_start_on"] < as_of)
        & projects["dewatering"].fillna(False).astype(bool)
    ]
    count = started.groupby("uscc").size().reindex(index).fillna(0).astype("float64")
    held = permits[
        (permits["purpose"] == "dewatering")
        & (permits["valid_from"].isna() | (permits["valid_from"] < as_of))
        & (permits["valid_to"].isna() | (permits["valid_to"] >= as_of))
        & (permits["status"] == "valid")
    ]["uscc"]
    without = ((count > 0) & ~index.isin(held)).astype("float64")
    return {"dewatering_projects": count, "dewatering_without_permit": pd.Series(without, index=index)}


# -- compliance evidence and the entity's own history (snapshot only) ----------------------

OWN_HISTORY_MONTHS = 36  # window of the snapshot's own-history shifts


def _last_quarters(as_of: pd.Timestamp, quarters: int = 4) -> tuple[int, int]:
    """Quarter numbers (year * 4 + quarter - 1) of the last ``quarters`` quarters that ended before as_of."""
    last = (as_of.year * 12 + as_of.month - 1) // 3 - 1
    return last - quarters + 1, last


def _metered_by_quarter(abstr: pd.DataFrame) -> pd.DataFrame:
    """Metered volume per (uscc, source, quarter start): a meter's skipped months inside its own
    reporting span count at its quarter mean (a missing reading is not zero abstraction)."""
    m = month_no(abstr["month"]).astype("int64")
    frame = abstr.assign(m=m, q=m // 3)
    span = frame.groupby("meter_id")["m"].agg(["min", "max"])
    per = frame.groupby(["meter_id", "uscc", "source", "q"], as_index=False).agg(
        volume=("volume_m3", "sum"), reported=("m", "nunique")
    )
    lo = np.maximum(per["q"] * 3, per["meter_id"].map(span["min"]))
    hi = np.minimum(per["q"] * 3 + 2, per["meter_id"].map(span["max"]))
    per["metered"] = per["volume"] * np.maximum(hi - lo + 1, per["reported"]) / per["reported"]
    return per.groupby(["uscc", "source", "q"], as_index=False)["metered"].sum()


def _compliance_features(
    profiles: pd.DataFrame, tables: dict[str, pd.DataFrame], index: pd.Index, as_of: pd.Timestamp
) -> dict[str, pd.Series]:
    """Evidence an officer can act on directly: metered water with no valid permit behind it,
    declared-vs-metered tax gaps, declarations without a permit, quota overruns per permit."""
    out: dict[str, pd.Series] = {}
    year_ago = as_of - pd.DateOffset(months=12)
    zero = pd.Series(0.0, index=index)

    # entity-month: metered abstraction while the entity held no permit in force
    recent = profiles[(profiles["month"] >= year_ago) & (profiles["month"] < as_of)]
    vol = recent["abstraction_m3"].fillna(0.0)
    unpermitted = vol.where(~recent["permit_status"].isin(["valid", "expiring"]), 0.0)
    g = unpermitted.groupby(recent["uscc"]).sum().reindex(index)
    total = vol.groupby(recent["uscc"]).sum().reindex(index)
    out["abstraction_no_valid_permit_m3_12m"] = g.fillna(0.0)
    out["abstraction_no_valid_permit_share_12m"] = pd.Series(_div(g, total), index=index)

    # permit by permit: metered after the permit's expiry, or on a revoked / cancelled permit
    permits = tables["permits"]
    permits = permits[permits["uscc"].notna() & (permits["valid_from"].isna() | (permits["valid_from"] < as_of))]
    permits = permits.drop_duplicates("permit_id")
    abstr = tables["abstraction"]
    abstr = abstr[(abstr["month"] < as_of) & abstr["volume_m3"].notna()]
    abstr = abstr.merge(
        permits[["permit_id", "uscc", "source", "purpose", "annual_quota_m3", "valid_to", "status"]],
        on="permit_id", how="inner",
    )
    last12 = abstr[abstr["month"] >= year_ago]
    after_expiry = last12["month"] > last12["valid_to"]
    withdrawn = last12["status"].isin(["revoked", "cancelled"]) & ~after_expiry
    for name, mask in [("after_expiry", after_expiry), ("withdrawn_permit", withdrawn)]:
        v = last12["volume_m3"].where(mask, 0.0).groupby(last12["uscc"]).sum()
        out[f"abstraction_{name}_m3_12m"] = v.reindex(index).fillna(0.0)

    # quota: the worst permit, over the last 12 months and at the pace of the last 3
    per_permit = last12.groupby("permit_id").agg(
        uscc=("uscc", "first"), quota=("annual_quota_m3", "first"), used=("volume_m3", "sum")
    )
    last3 = last12[last12["month"] >= as_of - pd.DateOffset(months=3)]
    per_permit["pace"] = last3.groupby("permit_id")["volume_m3"].sum().reindex(per_permit.index).fillna(0.0) * 4
    quota = per_permit["quota"].where(per_permit["quota"] > 0)
    per_permit["share"] = per_permit["used"] / quota
    per_permit["pace_share"] = per_permit["pace"] / quota
    per_permit["excess"] = (per_permit["used"] - quota).clip(lower=0)
    by = per_permit.groupby("uscc")
    out["permit_quota_used_max_12m"] = by["share"].max().reindex(index)
    out["permit_quota_pace_max_3m"] = by["pace_share"].max().reindex(index)
    out["quota_excess_m3_12m"] = by["excess"].sum(min_count=1).reindex(index)

    # tax: declared against gap-filled metering on taxable permits, last 4 ended quarters
    q_lo, q_hi = _last_quarters(as_of)
    tax = tables["tax"]
    tax = tax[tax["period_start"].notna() & tax["uscc"].notna()]
    q = (month_no(tax["period_start"]) // 3).astype("int64")
    tax = tax[(q >= q_lo) & (q <= q_hi)].assign(q=q)
    declared = tax.groupby(["uscc", "source", "q"], as_index=False)["declared_m3"].sum()
    taxable = abstr[abstr["purpose"] != "agriculture"]
    metered = _metered_by_quarter(taxable) if len(taxable) else pd.DataFrame(columns=["uscc", "source", "q", "metered"])
    metered = metered[(metered["q"] >= q_lo) & (metered["q"] <= q_hi)]
    holders = permits.loc[permits["purpose"] != "agriculture", ["uscc", "source"]].drop_duplicates()
    both = declared.merge(metered, on=["uscc", "source", "q"], how="outer").merge(holders, on=["uscc", "source"])
    both = both.fillna({"declared_m3": 0.0, "metered": 0.0})
    both = both.groupby(["uscc", "q"])[["declared_m3", "metered"]].sum()
    gap = both["metered"] - both["declared_m3"]
    # the median quarter: under-declaring quarter after quarter, not one late or missed filing
    share = pd.Series(_div(gap, np.maximum(both["metered"], both["declared_m3"])), index=both.index)
    out["tax_undeclared_m3_4q"] = gap.groupby(level="uscc").sum().reindex(index)
    out["tax_undeclared_share_4q"] = share.groupby(level="uscc").median().reindex(index)

    # tax declared for a source and quarter no permit of that source covered: abstraction without a permit
    if len(tax):
        t = tax[tax["declared_m3"] > 0].reset_index(drop=True)
        cover = t.reset_index(names="row").merge(
            permits[["uscc", "source", "valid_from", "valid_to"]], on=["uscc", "source"], how="inner"
        )
        q_end = cover["period_start"] + pd.DateOffset(months=3)
        ok = (cover["valid_from"].isna() | (cover["valid_from"] < q_end)) & (
            cover["valid_to"].isna() | (cover["valid_to"] >= cover["period_start"])
        )
        bare = t[~t.index.isin(cover.loc[ok, "row"])]
        out["tax_declared_without_permit_m3_4q"] = bare.groupby("uscc")["declared_m3"].sum().reindex(index).fillna(0.0)
    else:
        out["tax_declared_without_permit_m3_4q"] = zero
    return out


def _own_history_features(profiles: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp) -> dict[str, pd.Series]:
    """Shifts judged against the entity's own past, not its size: the log balance ratio (discharge over
    supply + metered abstraction) stepping up, and metered abstraction stepping down while the
    discharge (or, without a sewer account, the supply) holds."""
    start = as_of - pd.DateOffset(months=OWN_HISTORY_MONTHS)
    window = profiles[(profiles["month"] >= start) & (profiles["month"] < as_of)]
    months = pd.date_range(start, as_of - pd.DateOffset(months=1), freq="MS")

    def grid(col: str) -> np.ndarray:
        wide = window.pivot_table(index="uscc", columns="month", values=col, aggfunc="sum", dropna=False)
        return wide.reindex(index=index, columns=months).to_numpy(dtype="float64")

    active = grid("active") > 0
    s, a, d = grid("supply_m3"), grid("abstraction_m3"), grid("discharge_m3")
    inflow = np.nan_to_num(s) + np.nan_to_num(a)
    has_d = np.nansum(d, axis=1) > 0
    seen = active & (inflow > 0) & has_d[:, None]
    log_balance = np.where(seen, np.log1p(np.nan_to_num(d)) - np.log1p(inflow), np.nan)
    shift, score, _ = change_point(log_balance, OWN_HISTORY_MONTHS, SHIFT_MIN_SEGMENT, relative=False, sd_floor=0.05)
    out = {
        "balance_log_shift": pd.Series(shift[:, -1], index=index),
        "balance_log_shift_score": pd.Series(score[:, -1], index=index),
    }
    # metered abstraction's own step, and the other water over the same split
    metered = np.nansum(a, axis=1) > 0
    log_a = np.where(active & metered[:, None], np.log1p(np.nan_to_num(a)), np.nan)
    _, a_score, a_since = change_point(log_a, OWN_HISTORY_MONTHS, SHIFT_MIN_SEGMENT, relative=False, sd_floor=0.05)
    k = a_since[:, -1]
    other = np.where(has_d[:, None], np.nan_to_num(d), np.nan_to_num(s))
    log_o = np.where(active, np.log1p(other), np.nan)
    cols = np.arange(len(months))[None, :]
    after = cols >= np.where(np.isnan(k), len(months), k)[:, None]

    def step(x):
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.where(after, x, np.nan), axis=1) - np.nanmean(np.where(~after, x, np.nan), axis=1)

    drop = step(log_o) - step(log_a)  # > 0: the meter fell more than the water it should follow
    ok = metered & ~np.isnan(k) & (np.nansum(other, axis=1) > 0)
    out["meter_drop_vs_activity"] = pd.Series(np.where(ok, drop, np.nan), index=index)
    out["meter_drop_vs_activity_score"] = pd.Series(np.where(ok, a_score[:, -1], np.nan), index=index)
    return out
