"""The entity snapshot the risk model reads: one row per entity existing at as_of.

Meta columns (``SNAPSHOT_META``) then float features. The features come in groups, each a function
of one ``SnapshotInput`` returning named columns; ``FEATURE_GROUPS`` lists them in column order.
To add features, write a group and append it (and describe each column in ``features.dictionary``).

Beyond the profile at as_of, the snapshot adds compliance evidence an officer can act on (metered
water with no valid permit behind it, tax declared short of the meter or with no permit, a permit's
quota overrun; the definitions are ``features.compliance``'s) and shifts judged against the
entity's own last 36 months rather than its size (the log balance ratio stepping up; the meter
stepping down while the discharge or supply holds).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.as_of import month_start
from features.compliance import (
    DEWATERING,
    declarations_without_permit,
    declared_vs_metered,
    dewatering_permitted,
    known_permits,
    lost_meter_months,
    meter_verifiable,
    metered_by_quarter,
    quarter_number,
    taxable_holders,
    taxed_rows,
    use_outside_permit,
    water_use_quota_share,
)
from features.hidden_water import HISTORY_COLUMNS, HISTORY_MONTHS, hidden_water_features
from features.profile_grid import PERMIT_STATUS, SHIFT_SERIES, cells_by_month, safe_div, wide_by_month
from features.profile_series import change_point_last

SNAPSHOT_META = ["name", "district", "industry_code", "industry_section", "employees", "size_band"]
SIZE_BANDS = [(20, "micro"), (300, "small"), (1000, "medium"), (np.inf, "large")]  # NBS industrial bands
OWN_HISTORY_MONTHS = 36  # window of the snapshot's own-history shifts
OWN_HISTORY_MIN_SEGMENT = 3  # months on each side of an own-history shift

LAST_MONTH = [  # profile columns taken as they stand in the last month before as_of
    "supply_m3_12m", "abstraction_m3_12m", "abstraction_groundwater_m3_12m", "discharge_m3_12m", "inflow_m3_12m",
    "discharge_measured_share_12m", "balance_ratio_12m", "use_per_employee_12m", "use_per_employee_peer_z",
    "balance_ratio_peer_z", "wet_season_discharge_share_12m", "wet_dry_ratio_excess_12m", "flat_run_months",
    "permits_in_force", "groundwater_permits_in_force", "quota_in_force_m3", "permit_days_to_expiry",
    "quota_used_ytd", "plan_used_ytd", "tax_declared_ratio_q", "tax_gap_m3_q", "tax_declared_ratio_4q",
    "link_confidence_min", "link_confidence_mean", "linked_accounts",
] + [f"{s}_shift" for s in SHIFT_SERIES] + [f"{s}_shift_score" for s in SHIFT_SERIES]

COUNT_12M = [  # monthly flags counted over the last 12 months
    "flat_reading", "zero_while_permitted", "abstraction_missing", "abstraction_without_permit", "supply_missing",
    "discharge_missing", "supply_drop", "abstraction_drop", "discharge_drop", "discharge_without_inflow",
]


@dataclass(frozen=True)
class SnapshotInput:
    """What every feature group may read. The profile rows are read through ``profiles`` (every column) or
    ``recent`` (the columns a group names: a snapshot at a cut-off does not copy the wide frame for each
    window)."""

    as_of: pd.Timestamp
    index: pd.Index  # the snapshot's entities (uscc)
    entities: pd.DataFrame  # their registration rows, indexed by uscc
    all_profiles: pd.DataFrame  # every profile row given, also at and after as_of (read through profiles / recent)
    last: pd.DataFrame  # each entity's profile row of the last month before as_of (index: uscc)
    tables: dict[str, pd.DataFrame]  # the typed contract tables
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def months_back(self, n: int) -> pd.Timestamp:
        return self.as_of - pd.DateOffset(months=n)

    @property
    def profiles(self) -> pd.DataFrame:
        """Profile rows before as_of, every column."""
        if "profiles" not in self._cache:
            self._cache["profiles"] = _rows(self.all_profiles, self._before())
        return self._cache["profiles"]

    def _before(self, months: int | None = None) -> pd.Series:
        """Which profile rows are of the last ``months`` months before as_of (every month before it: None)."""
        if months not in self._cache.setdefault("masks", {}):
            month = self.all_profiles["month"]
            keep = month < self.as_of
            self._cache["masks"][months] = keep if months is None else keep & (month >= self.months_back(months))
        return self._cache["masks"][months]

    def recent(self, months: int = 12, columns: list[str] | None = None) -> pd.DataFrame:
        """Profile rows of the last ``months`` months (only ``columns``, when given)."""
        frame = self.all_profiles if columns is None else self.all_profiles[columns]
        return _rows(frame, self._before(months))

    @property
    def permits(self) -> pd.DataFrame:
        """The register's permits issued before as_of that name a holder, one row per permit number."""
        if "permits" not in self._cache:
            permits = self.tables["permits"]
            self._cache["permits"] = known_permits(permits[permits["uscc"].notna()], self.as_of).drop_duplicates(
                "permit_id")
        return self._cache["permits"]

    @property
    def metered(self) -> pd.DataFrame:
        """Metered abstraction rows of months before as_of that carry a volume."""
        if "metered" not in self._cache:
            abstr = self.tables["abstraction"]
            self._cache["metered"] = abstr[(abstr["month"] < self.as_of) & abstr["volume_m3"].notna()]
        return self._cache["metered"]

    @property
    def lost_metered(self) -> pd.DataFrame:
        """Meter months of the hidden-water window with no row between two of the meter's rows, read at the meter's
        months around (``lost_meter_months``), with the permit's holder (uscc) and purpose (a pit's lost months are pit
        water)."""
        if "lost_metered" not in self._cache:
            months = pd.date_range(self.months_back(HISTORY_MONTHS), self.months_back(1), freq="MS")
            lost = lost_meter_months(self.metered, months)
            self._cache["lost_metered"] = lost.merge(self.permits[["permit_id", "uscc", "purpose"]], on="permit_id",
                                                    how="inner")
        return self._cache["lost_metered"]

    def cells(self, months: int):
        """``cells_by_month`` of ``recent(months)`` in the snapshot's entities x those months (the same rows
        whichever columns are read)."""
        if ("cells", months) not in self._cache:
            window = self.recent(months, ["uscc", "month"])
            span = pd.date_range(self.months_back(months), self.months_back(1), freq="MS")
            self._cache[("cells", months)] = cells_by_month(window, self.index, span)
        return self._cache[("cells", months)]


def _rows(frame: pd.DataFrame, keep: pd.Series) -> pd.DataFrame:
    """``frame[keep]``, without copying a wide frame when every row is kept (copy-on-write: no one can
    change the caller's frame through it)."""
    return frame if bool(keep.all()) else frame[keep]


FeatureGroup = Callable[[SnapshotInput], dict[str, pd.Series]]


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
    """One row per entity existing at as_of: meta columns then float features of its profile at as_of (any day
    counts as its month's first: the profile's last month is the month before)."""
    as_of = month_start(as_of)
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

    last = profiles[profiles["month"] == as_of - pd.DateOffset(months=1)].set_index("uscc").reindex(snap.index)
    data = SnapshotInput(as_of=as_of, index=snap.index, entities=ents, all_profiles=profiles, last=last, tables=tables)
    feats: dict[str, pd.Series] = {}
    for group in FEATURE_GROUPS:
        feats.update(group(data))
    frame = pd.DataFrame({k: pd.Series(v, index=snap.index).astype("float64") for k, v in feats.items()})
    frame = frame.where(np.isfinite(frame.to_numpy()), np.nan)
    return pd.concat([snap, frame], axis=1)


# -- feature groups, in column order ---------------------------------------------------------


def last_month_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Profile columns at the last month, and the naive baseline rule's discharge / supply ratio."""
    feats = {c: s.last[c] for c in LAST_MONTH}
    feats["naive_discharge_supply_ratio"] = pd.Series(
        safe_div(s.last["discharge_m3_12m"], s.last["supply_m3_12m"]), index=s.index
    )
    return feats


def recent_month_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Months flagged in the last 12, and the share of manual meter readings."""
    g = s.recent(12, ["uscc", *COUNT_12M, "manual_share"]).groupby("uscc")
    feats = {f"{c}_months_12m": g[c].sum(min_count=1).reindex(s.index) for c in COUNT_12M}
    feats["manual_share_12m"] = g["manual_share"].mean().reindex(s.index)
    return feats


def permit_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """12-month abstraction against the quota its water-use permits allowed over those months, and the permit
    status as one-hot flags."""
    last = s.last
    months = pd.date_range(s.months_back(12), periods=12, freq="MS")
    feats = {"quota_used_12m": water_use_quota_share(s.permits, s.metered, months).reindex(s.index)}
    for name in PERMIT_STATUS:
        feats[f"permit_{name}"] = (last["permit_status"] == name).astype("float64").where(last["permit_status"].notna())
    return feats


def shift_recency_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Months since each series' dated level shift."""
    feats = {}
    for name in SHIFT_SERIES:
        since = s.last[f"{name}_shift_since"]
        feats[f"months_since_{name}_shift"] = (
            (s.as_of.year - since.dt.year) * 12 + (s.as_of.month - since.dt.month)
        ).astype("float64")
    return feats


def trend_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Mean of the last 6 months against the 12 before them, minus 1."""
    prof = s.recent(18, ["uscc", "month", "supply_m3", "abstraction_m3", "discharge_m3"])
    prev = prof[prof["month"] < s.months_back(6)]
    last6 = prof[prof["month"] >= s.months_back(6)]
    feats = {}
    for name in ["supply", "abstraction", "discharge"]:
        col = f"{name}_m3"
        m_prev = prev.groupby("uscc")[col].mean().reindex(s.index)
        m_last = last6.groupby("uscc")[col].mean().reindex(s.index)
        feats[f"{name}_trend_6v12"] = pd.Series(safe_div(m_last, m_prev), index=s.index) - 1.0
    return feats


def registration_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Age since registration and registered capital."""
    return {
        "entity_age_years": ((s.as_of - s.entities["registered_on"]).dt.days / 365.25).astype("float64"),
        "registered_capital_wan": s.entities["registered_capital_wan"].astype("float64"),
    }


def project_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Dewatering works under construction need a dewatering permit: counted, and flagged when none covered them
    (``features.compliance.dewatering_permitted``); and whether every permit the entity ever held is a dewatering
    permit (its wells were the pit's, filled in when the works ended)."""
    known = known_permits(s.tables["permits"], s.as_of)
    purposes = known["purpose"].eq(DEWATERING).fillna(False).astype("bool").groupby(known["uscc"]).all()  # bool, even when empty
    only_dewatering = purposes.reindex(s.index, fill_value=False).astype("float64")
    projects = s.tables.get("projects")
    if projects is None or not len(projects):
        zero = pd.Series(0.0, index=s.index)
        return {"dewatering_projects": zero, "dewatering_without_permit": zero,
                "dewatering_permits_only": only_dewatering}
    started = projects[
        projects["construction_start_on"].notna()
        & (projects["construction_start_on"] < s.as_of)
        & projects["dewatering"].fillna(False).astype(bool)
    ]
    count = started.groupby("uscc").size().reindex(s.index).fillna(0).astype("float64")
    uncovered = started[~dewatering_permitted(started, known, s.as_of)]
    without = s.index.isin(uncovered["uscc"]).astype("float64")
    return {"dewatering_projects": count, "dewatering_without_permit": pd.Series(without, index=s.index),
            "dewatering_permits_only": only_dewatering}


def _last_quarters(as_of: pd.Timestamp, quarters: int = 4) -> tuple[int, int]:
    """Quarter numbers (year * 4 + quarter - 1) of the last ``quarters`` quarters that ended before as_of."""
    last = (as_of.year * 12 + as_of.month - 1) // 3 - 1
    return last - quarters + 1, last


def compliance_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Evidence an officer can act on directly: metered water with no valid permit behind it,
    declared-vs-metered tax gaps, declarations without a permit, quota overruns per permit."""
    out: dict[str, pd.Series] = {}
    as_of, index = s.as_of, s.index
    year_ago = s.months_back(12)

    # entity-month: metered abstraction while the entity held no permit in force
    recent = s.recent(12, ["uscc", "abstraction_m3", "permit_status"])
    vol = recent["abstraction_m3"].fillna(0.0)
    unpermitted = vol.where(~recent["permit_status"].isin(["valid", "expiring"]), 0.0)
    g = unpermitted.groupby(recent["uscc"]).sum().reindex(index)
    total = vol.groupby(recent["uscc"]).sum().reindex(index)
    out["abstraction_no_valid_permit_m3_12m"] = g.fillna(0.0)
    out["abstraction_no_valid_permit_share_12m"] = pd.Series(safe_div(g, total), index=index)

    # permit by permit: metered after the permit's expiry, or on a revoked / cancelled permit
    permits = s.permits
    abstr = s.metered.merge(
        permits[["permit_id", "uscc", "source", "purpose", "annual_quota_m3", "valid_to", "status"]],
        on="permit_id", how="inner",
    )
    last12 = abstr[abstr["month"] >= year_ago]
    outside = use_outside_permit(last12, permits)
    for name, mask in [("after_expiry", outside["after_expiry"]), ("withdrawn_permit", outside["withdrawn"])]:
        v = last12["volume_m3"].where(mask, 0.0).groupby(last12["uscc"]).sum()
        out[f"abstraction_{name}_m3_12m"] = v.reindex(index).fillna(0.0)

    out.update(_quota_evidence(last12, as_of, index))
    out.update(_tax_evidence(s, abstr, permits))
    return out


def _quota_evidence(last12: pd.DataFrame, as_of: pd.Timestamp, index: pd.Index) -> dict[str, pd.Series]:
    """The worst permit's use against its quota over the last 12 months and at the pace of the last 3."""
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
    return {
        "permit_quota_used_max_12m": by["share"].max().reindex(index),
        "permit_quota_pace_max_3m": by["pace_share"].max().reindex(index),
        "quota_excess_m3_12m": by["excess"].sum(min_count=1).reindex(index),
    }


def _tax_evidence(s: SnapshotInput, abstr: pd.DataFrame, permits: pd.DataFrame) -> dict[str, pd.Series]:
    """Declared against gap-filled metering on taxable permits over the last 4 ended quarters (a quarter a meter
    sent no reading for left out unless the other meters already show more than declared), and volumes
    declared for a source and quarter no permit of that source covered."""
    index = s.index
    q_lo, q_hi = _last_quarters(s.as_of)
    tax = s.tables["tax"]
    tax = tax[tax["period_start"].notna() & tax["uscc"].notna()]
    q = quarter_number(tax["period_start"])
    tax = tax[(q >= q_lo) & (q <= q_hi)].assign(quarter=q)
    declared = tax.groupby(["uscc", "source", "quarter"], as_index=False)["declared_m3"].sum()
    taxable = taxed_rows(abstr)
    columns = ["uscc", "source", "quarter", "metered_m3", "silent_meters"]
    metered = metered_by_quarter(taxable)[columns] if len(taxable) else pd.DataFrame(columns=columns)
    metered = metered[(metered["quarter"] >= q_lo) & (metered["quarter"] <= q_hi)]
    both = declared_vs_metered(declared, metered, taxable_holders(permits))
    # a quarter a meter sent no reading for is unknown, not metered at 0 (``meter_verifiable``)
    both = both[meter_verifiable(both["declared_m3"], both["metered_m3"], both["silent_meters"])]
    both = both.groupby(["uscc", "quarter"])[["declared_m3", "metered_m3"]].sum()
    gap = both["metered_m3"] - both["declared_m3"]
    # the median quarter: under-declaring quarter after quarter, not one late or missed filing
    share = pd.Series(safe_div(gap, np.maximum(both["metered_m3"], both["declared_m3"])), index=both.index)
    out = {
        "tax_undeclared_m3_4q": gap.groupby(level="uscc").sum().reindex(index),
        "tax_undeclared_share_4q": share.groupby(level="uscc").median().reindex(index),
    }
    # tax declared for a source and quarter no permit of that source covered: abstraction without a permit
    if len(tax):
        bare = declarations_without_permit(tax, permits)
        out["tax_declared_without_permit_m3_4q"] = bare.groupby("uscc")["declared_m3"].sum().reindex(index).fillna(0.0)
    else:
        out["tax_declared_without_permit_m3_4q"] = pd.Series(0.0, index=index)
    return out


def own_history_features(s: SnapshotInput) -> dict[str, pd.Series]:
    """Shifts judged against the entity's own past, not its size: the log balance ratio (discharge over
    supply + metered abstraction) stepping up, and metered abstraction stepping down while the
    discharge (or, without a sewer account, the supply) holds."""
    index = s.index
    start = s.months_back(OWN_HISTORY_MONTHS)
    window = s.recent(OWN_HISTORY_MONTHS, ["uscc", "month", "active", "supply_m3", "abstraction_m3", "discharge_m3"])
    months = pd.date_range(start, s.months_back(1), freq="MS")
    cells = s.cells(OWN_HISTORY_MONTHS)

    def grid(col: str) -> np.ndarray:
        return wide_by_month(window, col, index, months, cells)

    active = grid("active") > 0
    sup, a, d = grid("supply_m3"), grid("abstraction_m3"), grid("discharge_m3")
    inflow = np.nan_to_num(sup) + np.nan_to_num(a)
    has_d = np.nansum(d, axis=1) > 0
    seen = active & (inflow > 0) & has_d[:, None]
    log_balance = np.where(seen, np.log1p(np.nan_to_num(d)) - np.log1p(inflow), np.nan)
    shift, score, _ = change_point_last(log_balance, OWN_HISTORY_MONTHS, OWN_HISTORY_MIN_SEGMENT, relative=False, sd_floor=0.05)
    out = {
        "balance_log_shift": pd.Series(shift, index=index),
        "balance_log_shift_score": pd.Series(score, index=index),
    }
    # metered abstraction's own step, and the other water over the same split
    metered = np.nansum(a, axis=1) > 0
    log_a = np.where(active & metered[:, None], np.log1p(np.nan_to_num(a)), np.nan)
    _, a_score, a_since = change_point_last(log_a, OWN_HISTORY_MONTHS, OWN_HISTORY_MIN_SEGMENT, relative=False, sd_floor=0.05)
    k = a_since
    other = np.where(has_d[:, None], np.nan_to_num(d), np.nan_to_num(sup))
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
    out["meter_drop_vs_activity_score"] = pd.Series(np.where(ok, a_score, np.nan), index=index)
    return out


def hidden_water_group(s: SnapshotInput) -> dict[str, pd.Series]:
    """What no record explains: metered dry-season balance, steps of the known water in, plan use
    (``features.hidden_water``)."""
    # profiles saved before a column was added (a workspace's, reused) lack it: ``features.hidden_water`` reads the
    # optional ones only where present
    columns = [c for c in HISTORY_COLUMNS if c in s.all_profiles.columns]
    window = s.recent(HISTORY_MONTHS, ["uscc", "month", *columns])
    return hidden_water_features(window, s.index, s.as_of, cells=s.cells(HISTORY_MONTHS), lost_metered=s.lost_metered)


FEATURE_GROUPS: list[FeatureGroup] = [
    last_month_features,
    recent_month_features,
    permit_features,
    shift_recency_features,
    trend_features,
    registration_features,
    project_features,
    compliance_features,
    own_history_features,
    hidden_water_group,
]
