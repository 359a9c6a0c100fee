"""Compliance facts that the monthly profiles and the bureau's checks both read: one definition each.

- permits: which permits are known and in force at a date, and who holds one;
- use outside a permit: metered months after a permit's expiry, before its grant, or on a revoked or
  cancelled permit, and meters booked to permit numbers the register does not hold (or whose register row
  ingest quarantined);
- metered volume by tax quarter (a meter's skipped months filled at its quarter mean);
- tax coverage: declarations for a source and quarter that no permit of that source covered, and
  declared against metered volume per taxpayer, source and quarter (where the meters' data let it be checked);
- peers: robust z-scores against the same industry.

Pure functions over the typed contract tables. The caller chooses the window (what is known at
its as-of, the last 4 quarters, the enforcement lookback); these functions define the facts.
``features.profiles`` turns them into features, ``models.rules`` into alerts and cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile_series import fill_gaps, interior_gaps, month_no

WITHDRAWN = ("revoked", "cancelled")  # permit statuses under which no abstraction is allowed
DEWATERING = "dewatering"  # a construction pit's permit: water pumped away, not water the holder uses
UNTAXED_PURPOSE = "agriculture"  # irrigation within quota pays no water-resource tax
MAD_TO_SD = 1.4826  # median absolute deviation -> standard deviation (normal data)
MEAN_AD_TO_SD = 1.2533  # mean absolute deviation -> standard deviation (normal data)


# -- permits ------------------------------------------------------------------------------


def known_permits(permits: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Permits issued before as_of (the register's status is its current snapshot: it has no date)."""
    return permits[permits["valid_from"] < as_of]


def renewed(due: pd.DataFrame, register: pd.DataFrame, window_days: int) -> pd.Series:
    """True for each permit of ``due`` whose holder already holds its renewal (延续) in ``register``: a valid
    permit of the same holder and source that starts within ``window_days`` before this one's expiry or on the
    day after it, and runs past it. One that started earlier is another permit (a second well field) that
    happens to run longer. The register is the drop's current snapshot with no issue dates, so a renewal found
    there counts as issued, whatever its start."""
    if due.empty:
        return pd.Series(False, index=due.index)
    return pd.Series(due.index.isin(_renewal_pairs(due, register, window_days)["index"]), index=due.index)


def _renewal_pairs(due: pd.DataFrame, register: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """(index of the permit of ``due``, permit_id_next, valid_from_next) for every renewal of it in ``register``
    (``renewed`` says which permits count as one)."""
    later = register.loc[(register["status"] == "valid") & register["uscc"].notna(),
                         ["permit_id", "uscc", "source", "valid_from", "valid_to"]]
    pairs = due[["permit_id", "uscc", "source", "valid_to"]].reset_index().merge(
        later, on=["uscc", "source"], suffixes=("", "_next"))
    starts = pairs["valid_from"] - pairs["valid_to"]
    follows = ((pairs["permit_id_next"] != pairs["permit_id"]) & (pairs["valid_to_next"] > pairs["valid_to"])
               & (starts >= pd.Timedelta(days=-window_days)) & (starts <= pd.Timedelta(days=1)))
    return pairs.loc[follows, ["index", "permit_id_next", "valid_from"]].rename(columns={"valid_from": "valid_from_next"})


def renewal_successors(register: pd.DataFrame) -> pd.DataFrame:
    """Every permit of ``register`` (any status) that a renewal in it replaced (``renewed``, RENEWAL_DAYS), with its
    renewal: the permit's rows and ``next_id``, ``next_from`` (the earliest-starting renewal where several are)."""
    held = register[register["uscc"].notna()]
    pairs = _renewal_pairs(held, register, RENEWAL_DAYS).sort_values(["valid_from_next", "permit_id_next"])
    first = pairs.drop_duplicates("index").set_index("index")
    return held.loc[first.index].assign(next_id=first["permit_id_next"], next_from=first["valid_from_next"])


def replaced_by_renewal(register: pd.DataFrame) -> pd.Series:
    """True for each revoked or cancelled permit of ``register`` that a renewal in it replaced (``renewed``).
    The register is a current snapshot with no date of cancellation: a permit given up when its renewal was
    granted was in force for its own dates, and its meter's months before the renewal were permitted use."""
    withdrawn = register[register["status"].isin(WITHDRAWN) & register["uscc"].notna()]
    replaced = pd.Series(False, index=register.index)
    replaced.loc[withdrawn.index[renewed(withdrawn, register, window_days=RENEWAL_DAYS).to_numpy()]] = True
    return replaced


def in_force(permits: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """True for permits in force on day ``at``: status valid, issued before it, not expired on it."""
    issued = permits["valid_from"].isna() | (permits["valid_from"] < at)
    unexpired = permits["valid_to"].isna() | (permits["valid_to"] >= at)
    return (permits["status"] == "valid") & issued & unexpired


def holders_in_force(permits: pd.DataFrame, at: pd.Timestamp, purpose: str | None = None) -> pd.Series:
    """The uscc of every holder of a permit in force on ``at`` (of that purpose, if given)."""
    held = permits[in_force(permits, at)]
    if purpose is not None:
        held = held[held["purpose"] == purpose]
    return held["uscc"]


def dewatering_permitted(projects: pd.DataFrame, permits: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Per project row: whether its owner's dewatering is covered by a dewatering permit. Such a permit is
    temporary (the pit is pumped for the first months of the works), so works that started are covered by one
    in force at any time from their start to ``as_of``, not only by one still in force: a permit that ended with
    the pit is no lapse. Works not started yet need one in force on ``as_of``."""
    as_of = pd.Timestamp(as_of)
    known = known_permits(permits, as_of)
    known = known[known["purpose"] == DEWATERING]
    usable = known[(known["status"] == "valid") | replaced_by_renewal(known)]
    start = projects["construction_start_on"].where(projects["construction_start_on"] < as_of)
    since = start.fillna(as_of).to_numpy(dtype="datetime64[ns]")
    rows = pd.DataFrame({"row": np.arange(len(projects)), "uscc": projects["uscc"].to_numpy(), "since": since})
    pairs = rows.merge(usable[["uscc", "valid_to"]], on="uscc", how="inner")
    covers = pairs["valid_to"].isna() | (pairs["valid_to"] >= pairs["since"])
    covered = np.zeros(len(projects), dtype=bool)
    covered[pairs.loc[covers, "row"].to_numpy(dtype="int64")] = True
    return pd.Series(covered, index=projects.index)


def permit_standing(permits: pd.DataFrame, at: np.ndarray) -> dict[str, np.ndarray]:
    """Each permit's standing (rows) at each instant ``at`` (columns, datetime64): ``known`` (issued
    before it), ``in_force`` (known, valid, not expired), ``expired`` (known, valid, past valid_to),
    ``withdrawn`` (known, revoked or cancelled). An empty date is open-ended. A permit that a renewal in
    ``permits`` replaced stands by its dates like a valid one (``replaced_by_renewal``)."""
    start = permits["valid_from"].astype("datetime64[s]").to_numpy()[:, None]
    stop = permits["valid_to"].astype("datetime64[s]").to_numpy()[:, None]
    at = np.asarray(at, dtype="datetime64[s]")[None, :]
    replaced = replaced_by_renewal(permits).to_numpy()
    is_valid = ((permits["status"] == "valid").to_numpy() | replaced)[:, None]
    known = np.isnat(start) | (start < at)
    unexpired = np.isnat(stop) | (stop >= at)
    return {
        "known": known,
        "in_force": known & unexpired & is_valid,
        "expired": known & ~unexpired & is_valid,
        "withdrawn": known & (permits["status"].isin(WITHDRAWN).to_numpy() & ~replaced)[:, None],
    }


MIN_YEAR_MONTHS = 6  # a year's quota or plan is judged on half a year at least: water use is seasonal
RENEWAL_DAYS = 90  # a renewal starts within the old permit's last 90 days or on the day after it


def quota_covered(permits: pd.DataFrame, months: pd.DatetimeIndex) -> pd.Series:
    """Per permit (index of ``permits``): its annual quota times the share of the days of ``months`` its dates
    covered. What the register allowed over those months: a permit granted three months ago allowed a quarter of
    its annual quota, not all of it."""
    first, after = months[0].to_datetime64(), (months[-1] + pd.DateOffset(months=1)).to_datetime64()
    start = permits["valid_from"].to_numpy(dtype="datetime64[ns]")
    stop = permits["valid_to"].to_numpy(dtype="datetime64[ns]") + np.timedelta64(1, "D")  # valid_to is its last day
    start = np.where(np.isnat(start) | (start < first), first, start)
    stop = np.where(np.isnat(stop) | (stop > after), after, stop)
    share = np.clip((stop - start) / (after - first), 0.0, 1.0)
    return pd.Series(permits["annual_quota_m3"].to_numpy(dtype="float64") * share, index=permits.index)


def months_covered(permits: pd.DataFrame, months: pd.DatetimeIndex) -> pd.DataFrame:
    """Permits x months: True where the permit's dates cover the middle of the month."""
    middle = (months + pd.Timedelta(days=14)).to_numpy()[None, :]
    start = permits["valid_from"].to_numpy(dtype="datetime64[ns]")[:, None]
    stop = permits["valid_to"].to_numpy(dtype="datetime64[ns]")[:, None]
    covered = (np.isnat(start) | (start <= middle)) & (np.isnat(stop) | (stop >= middle))
    return pd.DataFrame(covered, index=permits.index, columns=months)


def water_use_quota_share(permits: pd.DataFrame, abstraction: pd.DataFrame, months: pd.DatetimeIndex) -> pd.Series:
    """Per holder: metered abstraction over ``months`` against the quota its water-use permits allowed over them
    (``quota_covered``), where they covered MIN_YEAR_MONTHS of them at least; NaN elsewhere.

    Dewatering permits are left out: a pit's quota is the works' volume, and its meter stops when the works end
    while the permit runs on. A valid permit counts by its dates; a cancelled or revoked one only when a renewal
    replaced it (the register is a current snapshot: the renewed permit did cover the days before its renewal,
    one given up or withdrawn at an unknown date allows nothing to measure against)."""
    known = permits[permits["uscc"].notna()].drop_duplicates("permit_id")
    counted = (known["status"] == "valid") | replaced_by_renewal(known)
    use = known[counted & (known["purpose"] != DEWATERING)]
    allowed = quota_covered(use, months).groupby(use["uscc"].to_numpy()).sum()
    covered = months_covered(use, months).groupby(use["uscc"].to_numpy()).any().sum(axis=1)
    rows = abstraction[(abstraction["month"] >= months[0]) & (abstraction["month"] <= months[-1])]
    rows = rows.merge(use[["permit_id", "uscc"]], on="permit_id", how="inner")
    used = rows.groupby("uscc")["volume_m3"].sum().reindex(allowed.index).fillna(0.0)
    measured = (allowed > 0) & (covered.reindex(allowed.index) >= MIN_YEAR_MONTHS)
    return (used / allowed.where(measured)).astype("float64")


# -- use outside a permit ----------------------------------------------------------------


def use_outside_permit(rows: pd.DataFrame, register: pd.DataFrame) -> pd.DataFrame:
    """For metered rows joined to their permit (permit_id, month, valid_to, status): ``after_expiry`` (the
    month began after the permit expired) and ``withdrawn`` (the permit was revoked or cancelled, no renewal
    in ``register`` replaced it, and it is not already after expiry)."""
    after_expiry = rows["month"] > rows["valid_to"]
    replaced = register.loc[replaced_by_renewal(register), "permit_id"]
    withdrawn = rows["status"].isin(WITHDRAWN) & ~rows["permit_id"].isin(replaced) & ~after_expiry
    return pd.DataFrame({"after_expiry": after_expiry, "withdrawn": withdrawn}, index=rows.index)


def meters_without_permit(abstraction: pd.DataFrame, permits: pd.DataFrame) -> pd.DataFrame:
    """Metered rows booked to a permit number the register does not hold at all."""
    return abstraction[~abstraction["permit_id"].isin(permits["permit_id"])]


def quarantined_keys(quarantine: pd.DataFrame | None, table: str) -> pd.DataFrame:
    """The rows of ``table`` ingest quarantined, one per key as written (``key``; its first problem: file,
    row_number, column, value, reason). A permit number absent from the typed register may be one whose
    register row was rejected: the data needs fixing, the holder is not shown to abstract without a permit."""
    columns = ["key", "file", "row_number", "column", "value", "reason"]
    if quarantine is None or "key" not in quarantine.columns:
        return pd.DataFrame(columns=columns)
    rows = quarantine[(quarantine["table"] == table) & quarantine["key"].fillna("").ne("")]
    return rows.sort_values("row_number", kind="stable").drop_duplicates("key")[columns].reset_index(drop=True)


def metered_before_permit(rows: pd.DataFrame, register: pd.DataFrame) -> pd.Series:
    """For metered rows joined to their permit (permit_id, uscc, source, month, valid_from): True where the whole
    month came before the permit was granted (未批先取) and no other permit of the holder for that source in
    ``register`` covered it (a meter booked to a renewal's number for its predecessor's months is no such use).
    The month of the grant is not counted: part of it may be permitted use."""
    before = rows["valid_from"].notna() & (rows["month"] < rows["valid_from"].dt.to_period("M").dt.start_time)
    if not before.any():
        return before
    asked = rows.loc[before & rows["uscc"].notna(), ["permit_id", "uscc", "source", "month"]].reset_index()
    counted = register[(register["status"] == "valid") | replaced_by_renewal(register)]
    other = asked.merge(counted[["permit_id", "uscc", "source", "valid_from", "valid_to"]], on=["uscc", "source"],
                        suffixes=("", "_other"))
    month_end = other["month"] + pd.offsets.MonthEnd(0)
    covers = ((other["permit_id_other"] != other["permit_id"])
              & (other["valid_from"].isna() | (other["valid_from"] <= month_end))
              & (other["valid_to"].isna() | (other["valid_to"] >= other["month"])))
    return before & ~rows.index.isin(other.loc[covers, "index"])


# -- metered volume by quarter ------------------------------------------------------------


def quarter_number(dates: pd.Series) -> pd.Series:
    """Quarters since year 0 (year * 4 + quarter - 1) of each date."""
    return (month_no(dates) // 3).astype("int64")


def quarter_label(quarters: pd.Series) -> pd.Series:
    """'YYYY-Qn' of quarter numbers."""
    return (quarters // 4).astype("str") + "-Q" + (quarters % 4 + 1).astype("str")


def metered_by_quarter(metered: pd.DataFrame) -> pd.DataFrame:
    """Metered volume per (uscc, source, quarter), a meter's missing months filled with its quarter mean.

    ``metered``: meter-month rows with uscc and source of the permit. Meters skip monthly readings;
    a missing month is not zero abstraction, and counting it as zero would make every honest
    declaration look inflated. Only months inside the meter's own reporting span are filled (a
    meter that started or stopped mid-quarter is not extended). A quarter inside that span with no
    reading at all (``silent_meter_quarters``) has nothing to fill from: it adds nothing to
    ``metered_m3`` and counts in ``silent_meters`` instead, so that no caller reads it as a quarter
    metered at 0. Returns uscc, source, quarter (number), period ('YYYY-Qn'), metered_m3, gap_filled
    (some month was filled) and silent_meters (meters of the pair silent that whole quarter).
    """
    m = month_no(metered["month"]).astype("int64")
    frame = metered.assign(m=m, quarter=m // 3)
    span = frame.groupby("meter_id")["m"].agg(["min", "max"])
    per = frame.groupby(["meter_id", "uscc", "source", "quarter"], as_index=False).agg(
        volume=("volume_m3", "sum"), reported=("m", "nunique")
    )
    lo = np.maximum(per["quarter"] * 3, per["meter_id"].map(span["min"]))
    hi = np.minimum(per["quarter"] * 3 + 2, per["meter_id"].map(span["max"]))
    expected = np.maximum(hi - lo + 1, per["reported"])
    per["gap_filled"] = expected > per["reported"]
    per["metered_m3"] = per["volume"] * expected / per["reported"]
    per["silent_meters"] = 0
    silent = silent_meter_quarters(metered)
    per = pd.concat([per, silent.assign(metered_m3=0.0, gap_filled=False, silent_meters=1)], ignore_index=True)
    out = per.groupby(["uscc", "source", "quarter"], as_index=False).agg(
        metered_m3=("metered_m3", "sum"), gap_filled=("gap_filled", "any"), silent_meters=("silent_meters", "sum")
    )
    out["silent_meters"] = out["silent_meters"].astype("int64")
    out.insert(3, "period", quarter_label(out["quarter"]))
    return out


def silent_meter_quarters(metered: pd.DataFrame) -> pd.DataFrame:
    """Whole quarters with no row of a meter between two quarters it has rows in: meter_id, permit_id, uscc, source
    (of the meter's last row before the gap) and quarter (number).

    The meter read before the quarter and after it, so it was in place: its data for the quarter were lost on
    the way (an outage, readings not transmitted or not entered), which is no abstraction of 0 m³ and leaves
    nothing of the quarter to estimate from. Quarters before a meter's first row or after its last are not
    listed (it may be new, replaced or removed)."""
    columns = ["meter_id", "permit_id", "uscc", "source", "quarter"]
    if metered.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "quarter" else "object") for c in columns})
    m = month_no(metered["month"]).astype("int64")
    last = metered[columns[:-1]].assign(m=m, quarter=m // 3).sort_values(["meter_id", "m"], kind="stable")
    last = last.drop_duplicates(["meter_id", "quarter"], keep="last").reset_index(drop=True)
    skipped = (last.groupby("meter_id")["quarter"].shift(-1) - last["quarter"] - 1).fillna(0).astype("int64")
    gaps = last.loc[last.index.repeat(skipped)]  # one row per quarter skipped after each quarter with rows
    gaps = gaps.assign(quarter=gaps["quarter"] + 1 + gaps.groupby(level=0).cumcount())
    return gaps[columns].reset_index(drop=True)


def lost_meter_months(metered: pd.DataFrame, months: pd.DatetimeIndex) -> pd.DataFrame:
    """Meter months of ``months`` with no row between two rows of the same meter, each read at the median of that
    meter's months within MISREAD_REACH (``features.profile_series.fill_gaps``): meter_id, permit_id (of the row
    before) and month of each, volume_m3 its estimate.

    A meter's data lost on the way (a transmission outage, a manual reading not entered) is not a month without
    abstraction: read as zero it would be water in that went missing, a meter falling and a quota left unused.
    Months before a meter's first row or after its last are not read (it may be new, replaced or removed)."""
    rows = metered[(metered["month"] >= months[0]) & (metered["month"] <= months[-1])]
    empty = pd.DataFrame({"meter_id": pd.Series(dtype="object"), "permit_id": pd.Series(dtype="object"),
                          "month": pd.Series(dtype="datetime64[ns]"), "volume_m3": pd.Series(dtype="float64")})
    if rows.empty:
        return empty
    meter, meters = pd.factorize(rows["meter_id"], sort=True)
    col = (month_no(rows["month"]) - month_no(pd.Series([months[0]])).iloc[0]).to_numpy(dtype="int64")
    x = np.full((len(meters), len(months)), np.nan)
    x[meter, col] = 0.0  # a cell with a row is 0 before its volumes are added
    np.add.at(x, (meter, col), rows["volume_m3"].to_numpy(dtype="float64"))
    reported = ~np.isnan(x)
    missing = ~reported & (np.cumsum(reported, axis=1) > 0)
    gaps = interior_gaps(missing)
    if not gaps.any():
        return empty
    filled = fill_gaps(np.nan_to_num(x), gaps, unknown=missing)
    k, j = np.nonzero(gaps)
    # the permit each lost month was drawn under: that of the meter's last row before it
    permit = np.full(x.shape, None, dtype=object)
    permit[meter, col] = rows["permit_id"].to_numpy()
    last_col = np.maximum.accumulate(np.where(reported, np.arange(len(months))[None, :], 0), axis=1)
    return pd.DataFrame({"meter_id": meters[k], "permit_id": permit[k, last_col[k, j]],
                         "month": months[j], "volume_m3": filled[k, j]})


# -- tax coverage -------------------------------------------------------------------------


def taxed_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Permits (or rows joined to their permit's purpose) whose abstraction is taxed: not irrigation."""
    return rows[rows["purpose"] != UNTAXED_PURPOSE]


def taxable_holders(permits: pd.DataFrame) -> pd.DataFrame:
    """(uscc, source) pairs holding a permit whose abstraction is taxed."""
    return taxed_rows(permits)[["uscc", "source"]].drop_duplicates()


def declarations_without_permit(tax: pd.DataFrame, permits: pd.DataFrame) -> pd.DataFrame:
    """Tax rows declaring a volume for a source and quarter when no permit of the entity for that
    source was valid on any day of the quarter: abstraction without a permit, in the entity's own words.
    A revoked permit still covers the quarters it was dated for."""
    declared = tax[tax["declared_m3"] > 0]
    rows = pd.DataFrame({
        "row": np.arange(len(declared)),
        "uscc": declared["uscc"].to_numpy(),
        "source": declared["source"].to_numpy(),
        "period_start": declared["period_start"].to_numpy(),
    })
    cover = rows.merge(permits[["uscc", "source", "valid_from", "valid_to"]], on=["uscc", "source"], how="inner")
    quarter_end = cover["period_start"] + pd.DateOffset(months=3)
    ok = (cover["valid_from"].isna() | (cover["valid_from"] < quarter_end)) & (
        cover["valid_to"].isna() | (cover["valid_to"] >= cover["period_start"])
    )
    return declared[~np.isin(np.arange(len(declared)), cover.loc[ok, "row"].to_numpy())]


def declared_vs_metered(declared: pd.DataFrame, metered: pd.DataFrame, holders: pd.DataFrame) -> pd.DataFrame:
    """Declared (``declared_m3``) beside metered (``metered_m3``) volume per (uscc, source, quarter)
    for the taxable holders only, either side 0 where it has no row (a quarter metered but not
    declared, or declared with no meter reading)."""
    keys = ["uscc", "source", "quarter"]
    both = declared.merge(metered, on=keys, how="outer").merge(holders, on=["uscc", "source"])
    return both.fillna({"declared_m3": 0.0, "metered_m3": 0.0})


def meter_verifiable(declared_m3: pd.Series, metered_m3: pd.Series, silent_meters: pd.Series) -> pd.Series:
    """True where a quarter's metered volume can be held against its declaration: no meter of the pair was
    silent the whole quarter (``silent_meter_quarters``), or the meters that read already show more water than
    declared (the silent ones could only add to it). Elsewhere the quarter waits for its readings."""
    return silent_meters.fillna(0).eq(0) | (metered_m3 > declared_m3)


# -- peers --------------------------------------------------------------------------------


PEER_STAT_COLUMNS = ["median", "mad", "mean_ad", "n"]


def peer_statistics(observations: pd.DataFrame) -> pd.DataFrame:
    """Robust location and scale of each peer group in each month, from one row per (entity, month).

    ``observations``: columns ``group`` (an integer code, < 0 = no group), ``month`` and ``x`` (NaN =
    not observed). Returns one row per (group, month) of the groups present: ``median``, ``mad``
    (median absolute deviation from it), ``mean_ad`` (mean absolute deviation) and ``n`` (observed
    peers; 0 for rows without a group). It is a per-group reduction, so a caller may compute it on any
    partition of the rows by group (all of a group's rows together) and concatenate the answers.
    The medians come from one sort of all rows (the numbers pandas' group median gives: the middle value,
    or the mean of the two middle values); the mean absolute deviation adds up each group's rows in their
    order, as pandas' group mean does.
    """
    group = observations["group"].to_numpy()
    month = observations["month"].to_numpy()
    x = observations["x"].to_numpy(dtype="float64")
    order = np.lexsort((x, month, group))  # by cell, then value (NaN last)
    g, m = group[order], month[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (m[1:] != m[:-1])
    starts = np.flatnonzero(new)
    cell = np.empty(len(order), dtype="int64")
    cell[order] = np.cumsum(new) - 1
    n = np.bincount(cell, weights=~np.isnan(x), minlength=len(starts)).astype("int64")
    median = _sorted_median(x[order], starts, n)
    dev = np.abs(x - median[cell])
    mad = _sorted_median(dev[np.lexsort((dev, cell))], starts, n)
    mean_ad = pd.Series(dev).groupby(cell, sort=True).mean().to_numpy()
    stats = pd.DataFrame({"group": g[starts], "month": m[starts], "median": median, "mad": mad, "mean_ad": mean_ad,
                          "n": np.where(g[starts] < 0, 0, n)})
    return stats[["group", "month", *PEER_STAT_COLUMNS]]


def _sorted_median(values: np.ndarray, starts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of each run of ``values`` (sorted within runs beginning at ``starts``, the ``n`` observed first)."""
    lo = starts + np.maximum(n - 1, 0) // 2
    hi = starts + n // 2
    hi = np.minimum(hi, len(values) - 1) if len(values) else hi
    a, b = values[lo], values[hi]
    return np.where(n == 0, np.nan, np.where(lo == hi, a, (a + b) / 2))


def _cell_keys(group: np.ndarray, month: np.ndarray, lo: int, span: int) -> np.ndarray:
    return np.asarray(group, dtype="int64") * span + (np.asarray(month, dtype="int64") - lo)


def peer_z_from(observations: pd.DataFrame, stats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Robust z-score (x - median) / scale of each observation against its group's ``peer_statistics``,
    and the group's peer count. The scale is 1.4826 x MAD, or 1.2533 x the mean absolute deviation when
    the MAD is zero (most peers identical); a zero scale gives 0 (NaN for an unobserved x)."""
    months = np.concatenate([stats["month"].to_numpy(dtype="int64"), observations["month"].to_numpy(dtype="int64")])
    lo = int(months.min()) if len(months) else 0
    span = int(months.max()) - lo + 1 if len(months) else 1
    at = pd.Index(_cell_keys(stats["group"], stats["month"], lo, span)).get_indexer(
        _cell_keys(observations["group"], observations["month"], lo, span))
    found = at >= 0

    def column(name: str) -> np.ndarray:
        return np.where(found, stats[name].to_numpy(dtype="float64")[np.maximum(at, 0)] if len(stats) else np.nan, np.nan)

    values = observations["x"].to_numpy(dtype="float64")
    med, mad, mean_ad = (column(c) for c in ("median", "mad", "mean_ad"))
    n = np.nan_to_num(column("n"), nan=0.0)
    scale = np.where(mad > 0, MAD_TO_SD * mad, MEAN_AD_TO_SD * mean_ad)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (values - med) / scale, np.where(np.isnan(values), np.nan, 0.0))
    return z, n


def peer_group_codes(groups: np.ndarray) -> np.ndarray:
    """Integer code of each entity's peer group (its industry class or section text), -1 when empty."""
    text = pd.Series(groups).fillna("").astype("str")
    codes = pd.factorize(text)[0]
    return np.where(text.to_numpy() == "", -1, codes)


def peer_observations(x: np.ndarray, groups: np.ndarray, months: np.ndarray | None = None) -> pd.DataFrame:
    """The entity x month grid ``x`` as observation rows (group, month, x) for ``peer_statistics``;
    ``groups`` holds one label per entity (row), ``months`` one label per column (default 0..M-1)."""
    E, M = x.shape
    months = np.arange(M) if months is None else np.asarray(months)
    return pd.DataFrame({"group": np.repeat(groups, M), "month": np.tile(months, E), "x": np.ravel(x)})


def combine_peer_z(z_class, n_class, z_section, n_section, values, min_peers: int = 8) -> np.ndarray:
    """The class's z-score when it has ``min_peers`` observed peers, else the section's, else NaN."""
    z = np.where(n_class >= min_peers, z_class, np.where(n_section >= min_peers, z_section, np.nan))
    return np.where(np.isnan(values), np.nan, z)


def peer_z(x: np.ndarray, industry: np.ndarray, section: np.ndarray, min_peers: int = 8) -> np.ndarray:
    """Robust z-score (median/MAD) of each entity (row) against its industry class in the same month (column).

    Falls back to the section letter when the class has fewer than `min_peers`
    observed peers, and to NaN when the section has too few as well. A zero MAD
    (most peers identical) falls back to the mean absolute deviation. The peer statistics of
    the grid's own entities (``peer_statistics``); a partitioned run computes them over every
    partition and scores each partition with ``peer_z_from``.
    """
    E, M = x.shape
    values = np.ravel(x)
    scored = []
    for groups in (industry, section):
        obs = peer_observations(x, peer_group_codes(groups))
        scored.append(peer_z_from(obs, peer_statistics(obs)))
    (z_class, n_class), (z_section, n_section) = scored
    return combine_peer_z(z_class, n_class, z_section, n_section, values, min_peers).reshape(E, M)
