"""Snapshot features for water no record explains: the traces a private well, unpermitted abstraction or a
tampered meter leave in the records, each in natural units.

A hidden source shows in three ways. (1) Water leaving (metered sewer discharge) that the known water in
(public supply + metered abstraction) does not explain: judged on dry-season months only (June-September
rain in combined sewers is not use) and on metered discharge only (an estimated discharge is derived from
the supply and cannot disagree with it); as a level over the last 12 months and as a step on the entity's
own last 36 months. (2) Known water in stepping down on the entity's own history: the meter falling without
the supply rising to replace it or everything falling with it (a water-saving retrofit), or the supply
falling. (3) Known water in short of what the entity was planned or permitted to need (annual water-use
plan, permit quota). The risk model judges each against the city's own peers (models.detectors.HiddenWater).

Every value uses only months before as_of.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.profile_grid import cells_by_month as _cells
from features.profile_grid import wide_by_month as _wide
from features.compliance import DEWATERING, MIN_YEAR_MONTHS
from features.profile_series import (change_point_last, fill_gaps, interior_gaps, without_misreads,
                                     zero_bills)

HISTORY_MONTHS = 36  # own-history window of the steps
MIN_SEGMENT = 3  # months on each side of a step
WET_MONTHS = (6, 7, 8, 9)  # combined sewers take rain water
MEASURED_SHARE = 0.5  # a discharge month counts as metered when at least half of it was
MIN_DRY_MONTHS = 4  # dry-season metered months needed for a balance level
VOLUME_FLOOR_M3 = 10.0  # per month, added to both sides of a log balance so that tiny volumes stay quiet


def _nanmean(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=1)


HISTORY_COLUMNS = ["active", "supply_m3", "abstraction_m3", "discharge_m3", "discharge_measured_share", "planned_m3",
                   "supply_missing", "abstraction_dewatering_m3"]


@dataclass
class _Months:
    """An entity's last HISTORY_MONTHS months as rows x months arrays: active, supply S, metered abstraction A,
    discharge D, the discharge's metered share, known water in (S + A), and which months are the last 12."""
    months: pd.DatetimeIndex
    active: np.ndarray
    S: np.ndarray
    A: np.ndarray
    D: np.ndarray
    measured_share: np.ndarray
    inflow: np.ndarray
    last12: np.ndarray
    cells: object  # where each window row goes (``cells_by_month``)
    pit: np.ndarray | None = None  # months a dewatering permit's meter pumped a construction pit

    @property
    def M(self) -> int:
        return len(self.months)


def _months(profiles: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp, cells=None,
            lost_metered: pd.DataFrame | None = None) -> tuple[_Months, pd.DataFrame]:
    """The history window as arrays, and the profile rows inside it (``cells``: theirs, when known; ``lost_metered``:
    meter months lost between two readings, with their estimated volume and holder, added to the metering; those of a
    dewatering permit, where ``purpose`` says so, are the pit's)."""
    months = pd.date_range(as_of - pd.DateOffset(months=HISTORY_MONTHS), as_of - pd.DateOffset(months=1), freq="MS")
    keep = (profiles["month"] >= months[0]) & (profiles["month"] < as_of)
    window = profiles if bool(keep.all()) else profiles[keep]
    cells = _cells(window, index, months) if cells is None else cells
    active = _wide(window, "active", index, months, cells) > 0
    S, A, D = (np.nan_to_num(_wide(window, c, index, months, cells))
               for c in ("supply_m3", "abstraction_m3", "discharge_m3"))
    # a bill keyed with an extra digit is not water: ten times one month would read as a step or a surplus;
    # a month with no bill between two bills is a lost record, not a month without water (read at the months
    # around it)
    S, D = without_misreads(S, copy=False)[0], without_misreads(D, copy=False)[0]
    missing = zero_bills(S, active)  # a reading recorded as nothing is no more a month without water
    if "supply_missing" in window.columns:  # (hand-made frames without it have no lost bills)
        missing = missing | (np.nan_to_num(_wide(window, "supply_missing", index, months, cells)) > 0)
    if missing.any():
        S = fill_gaps(S, interior_gaps(missing), unknown=missing, copy=False)
    lost_pit = np.zeros(A.shape)  # the lost months of dewatering meters: estimated pit water
    if lost_metered is not None and len(lost_metered):
        row, col = index.get_indexer(lost_metered["uscc"]), months.get_indexer(lost_metered["month"])
        ok = (row >= 0) & (col >= 0)
        volume = lost_metered["volume_m3"].to_numpy(dtype="float64")
        np.add.at(A, (row[ok], col[ok]), volume[ok])
        if "purpose" in lost_metered.columns:
            dw = ok & lost_metered["purpose"].eq(DEWATERING).fillna(False).to_numpy(dtype=bool)
            np.add.at(lost_pit, (row[dw], col[dw]), volume[dw])
    # a pit's water is pumped away, not used (features.compliance.DEWATERING): it is no water in, and where it went
    # (the sewer, a storm drain, a river) no record says, so those months say nothing of the balance
    pit = lost_pit > 0
    if "abstraction_dewatering_m3" in window.columns or pit.any():
        pit_water = lost_pit
        if "abstraction_dewatering_m3" in window.columns:
            pit_water = pit_water + np.nan_to_num(_wide(window, "abstraction_dewatering_m3", index, months, cells))
        pit = pit_water > 0
        A = np.clip(A - pit_water, 0.0, None)
    last12 = (np.arange(len(months)) >= len(months) - 12)[None, :]
    return _Months(months, active, S, A, D, _wide(window, "discharge_measured_share", index, months, cells), S + A,
                   last12, cells, pit), window


def _balance(m: _Months) -> dict[str, np.ndarray]:
    """(1) Metered dry-season discharge against the known water in: its level over 12 months, its step over 36."""
    D, inflow, M = m.D, m.inflow, m.M
    dry = ~np.isin(m.months.month.to_numpy(), WET_MONTHS)[None, :]
    metered_dry = m.active & dry & (D > 0) & (np.nan_to_num(m.measured_share) >= MEASURED_SHARE)
    if m.pit is not None:
        metered_dry &= ~m.pit
    out: dict[str, np.ndarray] = {}
    sel = metered_dry & m.last12
    n = sel.sum(axis=1)
    d12, i12 = (D * sel).sum(axis=1), (inflow * sel).sum(axis=1)
    floor = VOLUME_FLOOR_M3 * n
    ok = n >= MIN_DRY_MONTHS
    out["balance_dry_months_12m"] = n.astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["balance_dry_log_12m"] = np.where(ok, np.log((d12 + floor) / (i12 + floor)), np.nan)
        out["balance_dry_ratio_12m"] = np.where(ok & (i12 > 0), d12 / i12, np.nan)
    log_balance = np.where(metered_dry, np.log((D + VOLUME_FLOOR_M3) / (inflow + VOLUME_FLOOR_M3)), np.nan)
    shift, score, since = change_point_last(log_balance, M, MIN_SEGMENT, relative=False, sd_floor=0.05)
    out["balance_dry_step"] = shift
    out["balance_dry_step_score"] = score
    out["months_since_balance_dry_step"] = M - since
    return out


def _still_drawing(m: _Months) -> dict[str, np.ndarray]:
    """Is the entity still drawing water at all? The last 3 months of supply, metering and metered discharge
    against the 12 before: a firm that stopped trading (or sleeps) leaves every record at nothing."""
    M = m.M
    metered = (m.D > 0) & (np.nan_to_num(m.measured_share) >= MEASURED_SHARE)
    water = m.inflow + np.where(metered, m.D, 0.0)
    last3, before = np.arange(M) >= M - 3, (np.arange(M) >= M - 15) & (np.arange(M) < M - 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(water[:, before].sum(axis=1) > 0,
                         (water[:, last3].sum(axis=1) / 3) / (water[:, before].sum(axis=1) / 12), np.nan)
    return {"water_recent_share_3m": share}


def _before_after(values: np.ndarray, active: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the active months before and after each entity's step."""
    return _nanmean(np.where(active & ~after, values, np.nan)), _nanmean(np.where(active & after, values, np.nan))


def _inflow_step(m: _Months) -> dict[str, np.ndarray]:
    """(2) The known water in on its own history: its step, and how much of it the supply made."""
    M, active = m.M, m.active
    log_in = np.where(active, np.log1p(m.inflow), np.nan)
    shift, score, since = change_point_last(log_in, M, MIN_SEGMENT, relative=False, sd_floor=0.05)
    out = {"inflow_step": shift, "inflow_step_score": score, "months_since_inflow_step": M - since}
    after = np.arange(M)[None, :] >= np.where(np.isnan(since), M, since)[:, None]
    supply_before, supply_after = _before_after(m.S, active, after)
    in_before, in_after = _before_after(m.inflow, active, after)
    out["inflow_step_supply_share"] = (supply_after - supply_before) / np.maximum(in_before, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["inflow_after_share"] = np.where(in_before > 0, in_after / in_before, np.nan)
    out["inflow_recovered_share"] = _recovered_share(m, after, out["inflow_after_share"])
    return out


def _recovered_share(m: _Months, after: np.ndarray, after_share: np.ndarray) -> np.ndarray:
    """Of a step down: how much the months too recent for a step of their own (fewer than MIN_SEGMENT) climbed
    back, each against the same calendar months before the step (a seasonal business is not a recovery):
    0 at the level after the step, 1 back at the level before it (a shutdown that ended; a well stays)."""
    M, calendar = m.M, m.months.month.to_numpy()
    latest_cols = np.arange(M) >= M - (MIN_SEGMENT - 1)
    same_months = np.isin(calendar, calendar[latest_cols]) & ~latest_cols
    latest = _nanmean(np.where(m.active & latest_cols[None, :], m.inflow, np.nan))
    before = _nanmean(np.where(m.active & ~after & same_months[None, :], m.inflow, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (latest / before - after_share) / (1.0 - after_share)
    return np.where((after_share < 1.0) & (before > 0), share, np.nan)


def _meter_step(m: _Months) -> dict[str, np.ndarray]:
    """The meter's own step, net of the supply that replaced it and of a drop of everything alike."""
    M, active, A = m.M, m.active, m.A
    holder = (A * active).sum(axis=1) > 0
    log_a = np.where(active & holder[:, None], np.log1p(A), np.nan)
    shift, score, since = change_point_last(log_a, M, MIN_SEGMENT, relative=False, sd_floor=0.05)
    after = np.arange(M)[None, :] >= np.where(np.isnan(since), M, since)[:, None]
    a_before, a_after = _before_after(A, active, after)
    s_before, s_after = (np.nan_to_num(v) for v in _before_after(m.S, active, after))
    lost = a_before - a_after  # > 0: the meter fell
    replaced = np.clip(s_after - s_before, 0.0, None)  # supply that took over (a switch, not a loss)
    with np.errstate(divide="ignore", invalid="ignore"):
        alike = np.clip((s_before - s_after) / np.where(s_before > 0, s_before, np.nan), 0.0, 1.0)
    alike = np.nan_to_num(alike) * a_before  # the meter's fall a drop of everything alike explains
    unexplained = lost - replaced - alike
    valid = holder & ~np.isnan(since) & (a_before > 0)
    return {
        "meter_step": np.where(valid, shift, np.nan),
        "meter_step_score": np.where(valid, score, np.nan),
        "months_since_meter_step": np.where(valid, M - since, np.nan),
        "meter_unexplained_drop_share": np.where(valid, unexplained / np.maximum(a_before, 1.0), np.nan),
    }


def _plan_use(m: _Months, window: pd.DataFrame, index: pd.Index) -> dict[str, np.ndarray]:
    """(3) Known water in against the year's water-use plan."""
    planned = _wide(window, "planned_m3", index, m.months, m.cells)[:, -1]
    i12_all = (m.inflow * m.last12 * m.active).sum(axis=1)
    # a firm registered in the last months is judged on the share of the year it existed, from half a year on
    existed = (m.active & m.last12).sum(axis=1)
    due = np.where(existed >= MIN_YEAR_MONTHS, planned * existed / 12.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"plan_used_12m": np.where(due > 0, i12_all / due, np.nan)}


def hidden_water_features(profiles: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp, cells=None,
                          lost_metered: pd.DataFrame | None = None) -> dict[str, pd.Series]:
    """Balance level and step on metered dry-season discharge, whether the entity still draws water, steps of the
    known water in and of the meter (with the share of the meter's volume no record explains), plan use.
    ``profiles`` needs uscc, month and HISTORY_COLUMNS; ``cells``: the caller's ``cells_by_month`` of its rows in
    the last HISTORY_MONTHS months, when every row given is in that window; ``lost_metered``: uscc, month and
    volume_m3 of meter months lost between two readings (``features.compliance.lost_meter_months``)."""
    m, window = _months(profiles, index, pd.Timestamp(as_of), cells, lost_metered)
    out = {**_balance(m), **_still_drawing(m), **_inflow_step(m), **_meter_step(m), **_plan_use(m, window, index)}
    return {name: pd.Series(values, index=index, dtype="float64") for name, values in out.items()}
