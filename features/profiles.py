"""Monthly enterprise profiles: one row per (registered entity, month before as_of).

Every profile row (uscc, month) is causal: it uses only data of that month and
earlier (tax quarters ended by that month, permits dated before its end), so a
profile built at a later as-of has identical rows for the earlier months. The
computation runs on dense entity x month arrays (``features.profile_grid``, numpy
along the month axis), never per entity in Python.

``build_profiles`` runs the stages below in order; each adds its named columns
(listed in ``features.dictionary``). The entity snapshot the risk model reads is
built from these rows by ``features.snapshot.entity_snapshot`` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.as_of import month_start
from features.compliance import DEWATERING, MIN_YEAR_MONTHS, known_permits, peer_z, permit_standing
from features.linkage import linked_volumes
from features.profile_grid import (
    PERMIT_STATUS,
    SHIFT_SERIES,
    EntityMonthGrid,
    first_data_month,
    month_starts,
    registered_entities,
    safe_div,
)
from features.profile_series import change_point, forward_quarter, month_no, rolling_sum, trailing_median

WET_MONTHS = (6, 7, 8, 9)  # June-September: combined sewers take rain water
EXPIRING_DAYS = 90
DROP_SHARE = 0.30  # a month below 30 % of its trailing 12-month median is a sudden drop
FLAT_MONTHS = 3
SHIFT_WINDOW = 24  # months searched for a level shift
SHIFT_MIN_SEGMENT = 3
SHIFT_SCORE = 4.0  # t-like score above which a shift is dated (shift_since)
STAGES = ["entities", "volumes", "balance", "level shifts", "meters, permits, tax", "peers, linkage", "frame"]


@dataclass
class _Build:
    """What the stages share: the grid, its months, the activity mask and the columns so far."""

    grid: EntityMonthGrid
    entities: pd.DataFrame
    as_of: pd.Timestamp
    months: np.ndarray
    active: np.ndarray
    cols: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def before(self) -> int:
        """Month number of as_of: rows are known when their month number is below it."""
        return self.as_of.year * 12 + self.as_of.month - 1


@dataclass
class _Volumes:
    """Entity x month volumes (m³) and row counts of each source, and the metered rows."""

    supply: np.ndarray
    supply_rows: np.ndarray
    discharge: np.ndarray
    discharge_rows: np.ndarray
    abstraction: np.ndarray
    metered: pd.DataFrame  # meter-month rows with m (month number), uscc and source of the permit

    @property
    def inflow(self) -> np.ndarray:
        return self.supply + self.abstraction


def build_profiles(
    tables: dict[str, pd.DataFrame],
    links: pd.DataFrame,
    as_of: pd.Timestamp,
    progress=None,
    history_months: int | None = None,
    first_month: int | None = None,
    peer_scores: bool = True,
) -> pd.DataFrame:
    """One row per (registered entity, month < as_of), from the first month of metered data.

    ``history_months`` keeps only the last N months in the output; the features are
    computed on the whole history either way, so rows do not depend on it. ``first_month`` (a month
    number, year * 12 + month - 1) fixes the grid's first month instead of the tables' first month of
    data: a run over a partition of the entities passes the whole city's, so every partition has the
    same months. ``peer_scores=False`` leaves the peer z-scores empty (NaN): a partitioned run scores them
    against the whole city's peers afterwards.
    """
    steps = iter(progress(STAGES, desc="profiles", total=len(STAGES))) if progress else iter(())
    b = _start(tables, month_start(as_of), first_month)  # any day of a month: the months before it
    next(steps, None)
    v = _volume_stage(b, tables, links)
    next(steps, None)
    balance = _balance_stage(b, v)
    next(steps, None)
    _shift_stage(b, v, balance)
    next(steps, None)
    status = _meter_and_permit_stage(b, v, tables)
    _year_to_date_stage(b, v, tables)
    _tax_stage(b, tables)
    next(steps, None)
    _peer_stage(b, peer_scores)
    b.cols.update(_link_columns(b.grid, links, tables))
    next(steps, None)
    next(steps, None)
    frame = _long_frame(b.grid, b.months, status, b.cols, history_months)
    for _ in steps:  # let the progress bar close
        pass
    return frame


def _start(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, first_month: int | None = None) -> _Build:
    """The grid of entities registered before as_of, from the first month of data, and who is active when."""
    before = as_of.year * 12 + as_of.month - 1
    ent = registered_entities(tables["entities"], as_of)
    m0 = first_data_month(tables, before) if first_month is None else int(first_month)
    grid = EntityMonthGrid(ent["uscc"].astype("str").to_numpy(), m0, before - m0)
    months = m0 + np.arange(grid.M)
    reg = month_no(ent["registered_on"]).to_numpy(dtype="float64")
    dereg = month_no(ent["deregistered_on"]).to_numpy(dtype="float64")
    active = (np.isnan(reg)[:, None] | (reg[:, None] <= months[None, :])) & (
        np.isnan(dereg)[:, None] | (dereg[:, None] >= months[None, :])
    )
    return _Build(grid=grid, entities=ent, as_of=as_of, months=months, active=active)


def _volume_stage(b: _Build, tables: dict[str, pd.DataFrame], links: pd.DataFrame) -> _Volumes:
    """Supply and discharge through linked accounts, metered abstraction through the permit's holder."""
    grid, A = b.grid, b.before
    month_start = pd.Timestamp(b.as_of.year, b.as_of.month, 1)  # rows of months before as_of's own
    supply = linked_volumes(tables["supply"], links, "supply", month_start)
    supply_m = month_no(supply["month"])
    discharge = linked_volumes(tables["discharge"], links, "discharge", month_start)
    discharge_m = month_no(discharge["month"])
    permits = known_permits(tables["permits"], b.as_of)
    abstr = tables["abstraction"]
    abstr = abstr.assign(m=month_no(abstr["month"]))
    abstr = abstr[abstr["m"] < A].merge(
        permits[["permit_id", "uscc", "source", "purpose"]].drop_duplicates("permit_id"), on="permit_id", how="inner"
    )
    v = _Volumes(
        supply=grid.total(supply["uscc"], supply_m, supply["volume_m3"]),
        supply_rows=grid.total(supply["uscc"], supply_m),
        discharge=grid.total(discharge["uscc"], discharge_m, discharge["volume_m3"]),
        discharge_rows=grid.total(discharge["uscc"], discharge_m),
        abstraction=grid.total(abstr["uscc"], abstr["m"], abstr["volume_m3"]),
        metered=abstr,
    )
    measured = discharge["volume_m3"].where(discharge["measured"].fillna(False).astype(bool), 0)
    d_measured = grid.total(discharge["uscc"], discharge_m, measured)
    a_gw = grid.total(abstr["uscc"], abstr["m"], abstr["volume_m3"].where(abstr["source"] == "groundwater", 0))
    a_sw = grid.total(abstr["uscc"], abstr["m"], abstr["volume_m3"].where(abstr["source"] == "surface", 0))
    a_dw = grid.total(abstr["uscc"], abstr["m"], abstr["volume_m3"].where(abstr["purpose"] == DEWATERING, 0))
    s, a, d, inflow = v.supply, v.abstraction, v.discharge, v.inflow
    cols = b.cols
    cols.update({
        "active": b.active.astype(float),
        "supply_m3": s,
        "abstraction_m3": a,
        "abstraction_groundwater_m3": a_gw,
        "abstraction_surface_m3": a_sw,
        "abstraction_dewatering_m3": a_dw,
        "discharge_m3": d,
        "discharge_measured_share": safe_div(d_measured, d),
        "inflow_m3": inflow,
    })
    for name, x in [("supply", s), ("abstraction", a), ("discharge", d), ("inflow", inflow)]:
        cols[f"{name}_m3_3m"] = rolling_sum(x, 3)
        cols[f"{name}_m3_12m"] = rolling_sum(x, 12)
    cols["abstraction_groundwater_m3_12m"] = rolling_sum(a_gw, 12)
    cols["discharge_measured_share_12m"] = safe_div(rolling_sum(d_measured, 12), cols["discharge_m3_12m"])
    return v


def _balance_stage(b: _Build, v: _Volumes) -> np.ndarray:
    """Discharge against inflow (supply + metered abstraction), monthly and over 12 months, and the
    wet season's share (rain in combined sewers). Returns the monthly balance ratio."""
    cols, d, inflow = b.cols, v.discharge, v.inflow
    balance = safe_div(d, inflow)
    cols["balance_ratio"] = balance
    cols["balance_ratio_12m"] = safe_div(cols["discharge_m3_12m"], cols["inflow_m3_12m"])
    cols["discharge_without_inflow"] = ((d > 0) & (inflow <= 0)).astype(float)
    wet = np.isin(b.months % 12 + 1, WET_MONTHS)[None, :]
    d_wet12, d_dry12 = rolling_sum(d * wet, 12), rolling_sum(d * ~wet, 12)
    i_wet12, i_dry12 = rolling_sum(inflow * wet, 12), rolling_sum(inflow * ~wet, 12)
    cols["wet_season_discharge_share_12m"] = safe_div(d_wet12, cols["discharge_m3_12m"])
    cols["wet_dry_ratio_excess_12m"] = safe_div(safe_div(d_wet12, i_wet12), safe_div(d_dry12, i_dry12)) - 1.0
    return balance


def _shift_stage(b: _Build, v: _Volumes, balance: np.ndarray) -> None:
    """The best level shift of each series in the trailing SHIFT_WINDOW months, dated when it is clear."""
    series = {"balance": balance, "supply": v.supply, "abstraction": v.abstraction, "discharge": v.discharge}
    for name in SHIFT_SERIES:
        x = np.where(b.active, series[name], np.nan)
        relative = name != "balance"
        shift, score, since = change_point(
            x, SHIFT_WINDOW, SHIFT_MIN_SEGMENT, relative=relative, sd_floor=1.0 if relative else 0.01
        )
        b.cols[f"{name}_shift"] = shift
        b.cols[f"{name}_shift_score"] = score
        b.cols[f"{name}_shift_since"] = np.where(score >= SHIFT_SCORE, since + b.grid.m0, np.nan)


def _meter_and_permit_stage(b: _Build, v: _Volumes, tables: dict[str, pd.DataFrame]) -> np.ndarray:
    """Meter behaviour, the permit in force each month, gaps and sudden drops. Returns the permit
    status code per cell (an index into PERMIT_STATUS)."""
    cols, a = b.cols, v.abstraction
    meters = _meter_behaviour(v.metered, b.grid)
    cols["flat_run_months"] = meters["flat_run_months"]
    cols["flat_reading"] = (meters["flat_run_months"] >= FLAT_MONTHS).astype(float)
    cols["manual_share"] = meters["manual_share"]
    permit = _permit_state(tables["permits"], b.grid, b.as_of)
    status = permit.pop("code")
    permitted = np.isin(status, [PERMIT_STATUS.index("valid"), PERMIT_STATUS.index("expiring")])
    cols.update(permit)
    cols["zero_while_permitted"] = (permitted & (meters["readings"] > 0) & (a <= 0)).astype(float)
    cols["abstraction_missing"] = (permitted & (meters["readings"] == 0)).astype(float)
    cols["abstraction_without_permit"] = ((a > 0) & ~permitted).astype(float)
    for name, rows in [("supply", v.supply_rows), ("discharge", v.discharge_rows)]:
        seen = np.cumsum(rows > 0, axis=1) > 0
        cols[f"{name}_missing"] = (seen & (rows == 0)).astype(float)
    for name, x in [("supply", v.supply), ("abstraction", a), ("discharge", v.discharge)]:
        med = trailing_median(np.where(b.active, x, np.nan), 12, min_count=6)
        cols[f"{name}_drop"] = (b.active & (med > 0) & (x < DROP_SHARE * med)).astype(float)
    return status


def _permit_state(permits: pd.DataFrame, grid: EntityMonthGrid, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """Permit status code, quota in force and days to expiry at the end of each month."""
    permits = known_permits(permits[permits["uscc"].notna()], as_of)
    E, M = grid.E, grid.M
    ent = grid.entity_index(permits["uscc"])
    permits = permits[ent >= 0]
    ent = ent[ent >= 0]
    # the state at the end of month j is the state on the first day of month j+1
    ends = month_starts(np.arange(grid.m0 + 1, grid.m0 + M + 1))
    standing = permit_standing(permits, ends)  # permits x months
    in_force = standing["in_force"]
    stop = permits["valid_to"].astype("datetime64[s]").to_numpy()
    days_left = np.where(
        np.isnat(stop)[:, None], np.inf, (stop[:, None] - ends[None, :]) / np.timedelta64(1, "D")
    )
    quota = np.nan_to_num(permits["annual_quota_m3"].to_numpy(dtype="float64"))
    gw = (permits["source"] == "groundwater").to_numpy()

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
    had_expired = per_entity(standing["expired"].astype(float), "sum") > 0
    had_lapsed = per_entity(standing["withdrawn"].astype(float), "sum") > 0
    gw_force = per_entity((in_force & gw[:, None]).astype(float), "sum")

    code = np.zeros((E, M), dtype="int8")  # none
    code[had_expired] = PERMIT_STATUS.index("expired")
    code[had_lapsed] = PERMIT_STATUS.index("revoked")
    code[n_force > 0] = PERMIT_STATUS.index("valid")
    code[(n_force > 0) & (days_to_expiry <= EXPIRING_DAYS)] = PERMIT_STATUS.index("expiring")
    return {
        "code": code,
        "permits_in_force": n_force,
        "groundwater_permits_in_force": gw_force,
        "quota_in_force_m3": quota_force,
        "permit_days_to_expiry": np.where(np.isfinite(days_to_expiry), days_to_expiry, np.nan),
    }


def _meter_behaviour(abstr: pd.DataFrame, grid: EntityMonthGrid) -> dict[str, np.ndarray]:
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
    return {"flat_run_months": flat_run, "manual_share": safe_div(manual, readings), "readings": readings}


def _year_to_date_stage(b: _Build, v: _Volumes, tables: dict[str, pd.DataFrame]) -> None:
    """Metered abstraction against the quota in force, and all use against the year's plan, year to date."""
    cols, months, m0 = b.cols, b.months, b.grid.m0
    year = months // 12
    first_of_year = np.maximum(np.searchsorted(months, year * 12), 0)

    def ytd(x: np.ndarray) -> np.ndarray:
        cum = np.cumsum(x, axis=1)
        before = np.where(first_of_year > 0, cum[:, np.maximum(first_of_year - 1, 0)], 0.0)
        # a year that started before the grid has no full YTD
        return np.where((year * 12 >= m0)[None, :], cum - before, np.nan)

    cols["abstraction_ytd_m3"] = ytd(v.abstraction)
    cols["quota_used_ytd"] = safe_div(cols["abstraction_ytd_m3"], cols["quota_in_force_m3"])
    plans = tables["plans"]
    plan_rows = plans[plans["year"].notna()]
    planned = np.full((b.grid.E, b.grid.M), np.nan)
    by_year = pd.DataFrame({
        "e": b.grid.entity_index(plan_rows["uscc"]),
        "y": plan_rows["year"].astype("int64").to_numpy(),
        "v": plan_rows["planned_m3"].to_numpy(),
    })
    by_year = by_year[by_year["e"] >= 0].groupby(["e", "y"], as_index=False)["v"].sum(min_count=1)
    for y in np.unique(year):  # a handful of calendar years, not entities
        sel = by_year[by_year["y"] == y]
        planned[np.ix_(sel["e"].to_numpy(), np.flatnonzero(year == y))] = sel["v"].to_numpy()[:, None]
    cols["planned_m3"] = planned
    cols["use_ytd_m3"] = ytd(v.inflow)
    cols["plan_used_ytd"] = safe_div(cols["use_ytd_m3"], planned)


def _tax_stage(b: _Build, tables: dict[str, pd.DataFrame]) -> None:
    """Declared against metered volume at each quarter end, carried forward to the months after it."""
    cols, months, A = b.cols, b.months, b.before
    tax = tables["tax"]
    tax = tax[tax["period_start"].notna()]
    q_end = month_no(tax["period_start"]) + 2
    tax = tax[q_end < A]
    q_end = q_end[q_end < A]
    declared = b.grid.total(tax["uscc"], q_end, tax["declared_m3"])
    declarant = b.grid.total(tax["uscc"], q_end) > 0
    is_q_end = (months % 3 == 2)[None, :]
    metered_q = np.where(is_q_end, cols["abstraction_m3_3m"], np.nan)
    has_q = (declarant | (metered_q > 0)) & is_q_end
    cols["tax_declared_m3_q"] = forward_quarter(np.where(has_q, declared, np.nan), months)
    cols["tax_metered_m3_q"] = forward_quarter(np.where(has_q, metered_q, np.nan), months)
    cols["tax_gap_m3_q"] = cols["tax_metered_m3_q"] - cols["tax_declared_m3_q"]
    cols["tax_declared_ratio_q"] = safe_div(cols["tax_declared_m3_q"], cols["tax_metered_m3_q"])
    declared_4q = rolling_sum(declared, 12)
    metered_4q = cols["abstraction_m3_12m"]
    has_4q = ((rolling_sum(declarant.astype(float), 12) > 0) | (metered_4q > 0)) & is_q_end
    cols["tax_declared_m3_4q"] = forward_quarter(np.where(has_4q, declared_4q, np.nan), months)
    cols["tax_metered_m3_4q"] = forward_quarter(np.where(has_4q, metered_4q, np.nan), months)
    cols["tax_declared_ratio_4q"] = safe_div(cols["tax_declared_m3_4q"], cols["tax_metered_m3_4q"])


PEER_Z = {"use_per_employee_peer_z": "use_per_employee_12m", "balance_ratio_peer_z": "balance_ratio_12m"}
PEER_LEVELS = ("class", "section")  # industry class (C1713), then its section letter (C) when too few peers


def peer_values(active: np.ndarray, cols) -> dict[str, np.ndarray]:
    """What each peer z-score compares, per entity-month (NaN while inactive): log10(1 + use per
    employee) (use is heavy-tailed; zero use stays comparable) and the 12-month balance ratio.
    ``cols``: the stage's arrays or a profile frame (the same values, so a partitioned run can score
    the peers of saved profile rows against statistics of the whole city)."""
    use = np.asarray(cols["use_per_employee_12m"], dtype="float64")
    balance = np.asarray(cols["balance_ratio_12m"], dtype="float64")
    return {
        "use_per_employee_peer_z": np.where(active, np.log10(1.0 + use), np.nan),
        "balance_ratio_peer_z": np.where(active, balance, np.nan),
    }


def peer_groups(industry_code: pd.Series) -> dict[str, np.ndarray]:
    """Each entity's peer group labels per level: its industry class and its section letter."""
    industry = industry_code.astype("str").fillna("").to_numpy()
    return {"class": industry, "section": np.array([c[:1] for c in industry.tolist()], dtype=object)}


def _peer_stage(b: _Build, scores: bool = True) -> None:
    """Use per employee, and its and the balance ratio's robust z-score within the industry (NaN without
    ``scores``)."""
    cols = b.cols
    employees = b.entities["employees"].astype("float64").to_numpy()
    employees = np.where(employees > 0, employees, np.nan)
    # a firm registered in the last months is judged on a year's rate of what it used while it existed, from half
    # a year on (a month's bill over a year's staff read as a plant with water from elsewhere)
    existed = rolling_sum(b.active, 12)
    annual = np.where(existed >= MIN_YEAR_MONTHS, cols["inflow_m3_12m"] * 12.0 / np.maximum(existed, 1.0), np.nan)
    cols["use_per_employee_12m"] = safe_div(annual, employees[:, None])
    groups = peer_groups(b.entities["industry_code"])
    for name, x in peer_values(b.active, cols).items():
        cols[name] = peer_z(x, groups["class"], groups["section"]) if scores else np.full(x.shape, np.nan)


def first_bills(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each supply and discharge account's first billed month (source, account_id, m: a month number)."""
    parts = []
    for source in ("supply", "discharge"):
        bills = tables[source]
        first = bills.groupby("account_id", as_index=False, observed=True)["month"].min()
        parts.append(pd.DataFrame({"source": source, "account_id": first["account_id"].astype("str"),
                                   "m": month_no(first["month"]).to_numpy(dtype="float64")}))
    return pd.concat(parts, ignore_index=True)


def _link_columns(grid: EntityMonthGrid, links: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """Per entity and month: how many of its linked accounts had been billed by then, and their lowest and mean
    linkage confidence. An account counts from the month of its first bill on, so a snapshot at an earlier
    month does not count an account that first appears later (the links are made over the whole drop)."""
    linked = links[(links["status"] == "linked") & links["uscc"].notna()]
    linked = linked.assign(account_id=linked["account_id"].astype("str"))
    linked = linked.merge(first_bills(tables), on=["source", "account_id"], how="inner")
    e = grid.entity_index(linked["uscc"])
    j = np.maximum(linked["m"].to_numpy(dtype="float64") - grid.m0, 0)
    keep = (e >= 0) & (j < grid.M)
    e, j = e[keep], j[keep].astype("int64")
    conf = linked["confidence"].to_numpy(dtype="float64")[keep]
    known = ~np.isnan(conf)

    def running(values: np.ndarray, where: np.ndarray) -> np.ndarray:  # cumulative sum over the months
        out = np.zeros((grid.E, grid.M))
        np.add.at(out, (e[where], j[where]), values[where])
        return np.cumsum(out, axis=1)

    count = running(np.ones(len(e)), np.ones(len(e), dtype=bool))
    lowest = np.full((grid.E, grid.M), np.inf)
    np.minimum.at(lowest, (e[known], j[known]), conf[known])
    lowest = np.minimum.accumulate(lowest, axis=1)
    return {
        "link_confidence_min": np.where(np.isfinite(lowest), lowest, np.nan),
        "link_confidence_mean": safe_div(running(conf, known), running(np.ones(len(e)), known)),
        "linked_accounts": count,
    }


def _long_frame(grid: EntityMonthGrid, months, status, cols: dict, history_months: int | None) -> pd.DataFrame:
    """Flatten the arrays into one float block (filled column by column, freeing each array) plus keys."""
    E, M = grid.E, grid.M
    keep = slice(max(0, M - history_months), M) if history_months else slice(0, M)
    Mk = len(range(M)[keep])
    since = {name: cols.pop(name) for name in list(cols) if name.endswith("_since")}
    names = list(cols)
    block = np.empty((len(names), E * Mk))
    for i, name in enumerate(names):
        flat = np.ravel(np.asarray(cols.pop(name), dtype="float64")[:, keep])
        block[i] = np.where(np.isfinite(flat), flat, np.nan)
    frame = pd.DataFrame(block.T, columns=names, copy=False)
    for name, x in since.items():
        frame.insert(frame.columns.get_loc(name.replace("_since", "_score")) + 1, name, month_starts(np.ravel(x[:, keep])))
    frame.insert(0, "permit_status", pd.Categorical.from_codes(np.ravel(status[:, keep]), PERMIT_STATUS).astype("str"))
    frame.insert(0, "month", np.tile(month_starts(months[keep]), E))
    frame.insert(0, "uscc", pd.array(np.repeat(grid.uscc, Mk), dtype="str"))
    return frame


from features.snapshot import SNAPSHOT_META, entity_snapshot, size_band  # noqa: E402  (one import site for callers)

__all__ = ["build_profiles", "peer_values", "peer_groups", "PEER_Z", "PEER_LEVELS", "entity_snapshot", "SNAPSHOT_META", "size_band", "PERMIT_STATUS", "SHIFT_SERIES"]
