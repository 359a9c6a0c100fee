"""The traces of hidden water the ``HiddenWater`` detector judges (models.detectors): each indicator reads named
snapshot columns (features.hidden_water, features.snapshot) and gives a number that grows with the water the
records do not explain, or with the sign that a meter no longer measures it.

Each indicator is one family of records: the metered dry-season discharge against the known water in (level
and step), the need on record (water-use plan, permit quota), the meter's own history (a fall no supply
replaced; a reading that repeats to the cubic metre), the known water in stepping down where no discharge can
check it, works that pump with no permit, a permit that ended while its wells stay, and use per employee.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from features.hidden_water import VOLUME_FLOOR_M3, WET_MONTHS


def _nz(values, nan: float = 0.0) -> np.ndarray:
    """``np.nan_to_num(values, nan=nan)`` of a float array, without its fixed cost (dozens of calls per scored
    row): NaN -> ``nan``, and infinities as numpy does (only then the numpy call)."""
    out = np.where(np.isnan(values), nan, values)
    return np.nan_to_num(out, nan=nan) if np.isinf(out).any() else out


@dataclass(frozen=True)
class Indicator:
    """One trace of hidden water: the snapshot column(s) it reads and how it is judged against the peers.

    ``raw(X)`` is a number that grows with the water the records do not explain (a log ratio, a share);
    ``peers``: ``industry`` (the industry class, else its section, else the city), ``section`` or ``city``;
    ``weight``: its weight in the combination; ``min_scale``: floor of its peers' spread (so that a
    near-constant indicator does not turn a small difference into a large z); ``one_sided``: an event (a
    step) whose absence or reverse says nothing about hidden water, so its z counts from 0 up (its peers'
    spread is still measured on both signs, unless ``upper_spread``: then on the side it counts, for a number
    whose other side runs far, such as a meter's fall as a share, unbounded below when the meter grew);
    ``event``: a yes/no record whose "yes" is itself the breach of a rule (works pumping with no permit): it
    stays as unusual as EVENT_Z spreads even where most of its peers say yes, since peers that all break the
    rule do not make it normal; ``corroborating``: a record that is itself a documented breach (a case of the
    case track, such as works that dewater with no permit): its evidence counts only where the other indicators
    together already point to hidden water, so the breach alone never lifts an entity up the lead ranking."""

    code: str
    peers: str
    weight: float
    min_scale: float
    raw: Callable[[dict], np.ndarray]
    one_sided: bool = False
    capped_where: Callable[[dict], np.ndarray] | None = None  # rows whose z is held at ``capped``
    capped: float = 3.0
    upper_spread: bool = False  # the peers' spread from the deviations above their median only
    event: bool = False  # a yes/no record judged against "no" (z = EVENT_Z on yes), however many peers say yes
    corroborating: bool = False  # counts only beside other evidence (the rest's sum above 0)


def corroborated(parts: np.ndarray, indicators: tuple[Indicator, ...]) -> np.ndarray:
    """Rows x indicators evidence with each ``corroborating`` indicator's zeroed where the others' sum is not
    above 0 (a documented breach counts only beside other evidence of hidden water). Sums column by column in
    order, as the detector's total does, so a row alone gets the same answer as in a batch."""
    backing = np.array([getattr(ind, "corroborating", False) for ind in indicators], dtype=bool)
    if not backing.any():
        return parts
    others = np.zeros(len(parts))
    for j in np.flatnonzero(~backing):
        others += parts[:, j]
    out = parts.copy()
    out[:, backing] = np.where((others > 0.0)[:, None], parts[:, backing], 0.0)
    return out


# an entity whose supply, meter and metered discharge all fell to nearly nothing stopped trading or sleeps:
# its shortfalls and drops say nothing about hidden water (a well's water would still reach the sewer, and a
# well replaces process water, not the drinking water that stays on the mains bill)
STOPPED_SHARE = 0.1


def _drawing_water(c) -> np.ndarray:
    recent = c["water_recent_share_3m"]
    # no water on record for 15 months (no supply, metering or metered discharge): closed long ago
    none_at_all = np.isnan(recent) & ~(_nz(c["inflow_m3_12m"]) > 0) & ~(
        _nz(c["balance_dry_months_12m"]) > 0)
    return (np.isnan(recent) | (recent >= STOPPED_SHARE)) & ~none_at_all


def _balance_level(c):
    return c["balance_dry_log_12m"]


def _no_known_inflow(c):
    # metered discharge with no supply or metering at all: a well carrying all the water, or an account we
    # could not attribute (a park's shared supply, a bill under another name); unusual, not proof
    return np.isfinite(c["balance_dry_log_12m"]) & np.isnan(c["balance_dry_ratio_12m"])


def _significant(step: np.ndarray, score: np.ndarray) -> np.ndarray:
    """A step weighted by how sure it is (its t-like score over 10, capped at 1); NaN without a step."""
    return np.where(np.isnan(score), np.nan, _nz(step) * np.clip(_nz(score) / 10.0, 0.0, 1.0))


def _balance_step(c):
    # the metered dry-season balance stepping up on the entity's own history; with no known water in at all the
    # balance is the discharge itself, which the level already counts (a step there says nothing more)
    step = _significant(c["balance_dry_step"], c["balance_dry_step_score"])
    step = step * _alone_share(c)
    return np.where(_no_known_inflow(c), np.nan, step)


def _alone_share(c) -> np.ndarray:
    """Of a balance step that came with the meter's own fall in the same months: the share of that fall the supply
    did not fall with (1 where the meter fell alone, as a bypassed meter does; 0 where the bill and the meter
    fell alike, as when bought reclaimed water takes a share of all the water); 1 without such a fall."""
    fell = 1.0 - np.exp(np.minimum(_nz(c["meter_step"]), 0.0))
    # the dry-season balance dates a step in the wet months at the next dry month: "the same months" spans them
    together = np.abs(_nz(c["months_since_meter_step"], -99) - _nz(c["months_since_balance_dry_step"], 99)) <= len(
        WET_MONTHS)
    with np.errstate(divide="ignore", invalid="ignore"):
        alone = np.clip(_nz(c["meter_unexplained_drop_share"], 1.0) / fell, 0.0, 1.0)
    return np.where(together & (fell > 0.05), alone, 1.0)


def _shortfall(c, column):
    used = c[column]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((used >= 0) & _drawing_water(c), -np.log(np.clip(used, 1e-3, None)), np.nan)


def _meter_drop(c):
    return np.where(_drawing_water(c), c["meter_unexplained_drop_share"], np.nan)


def _floored_drop(c):
    """The known water in's step down in log, as if VOLUME_FLOOR_M3 a month were added before and after (as the
    balance does): a drop of a few m3 a month is no water worth a well, however large in log. The level after
    is the last 12 months' mean, the level before that over the share the step left."""
    share = c["inflow_after_share"]
    after = _nz(c["inflow_m3_12m"]) / 12.0
    with np.errstate(divide="ignore", invalid="ignore"):
        floored = np.log((after / share + VOLUME_FLOOR_M3) / (after + VOLUME_FLOOR_M3))
    drop = -c["inflow_step"]
    return np.where(np.isfinite(floored) & (share > 0), np.minimum(drop, floored), drop)


# a step down whose latest months climbed back over this share of it was a pause that ended (a shutdown, a
# holiday), not water moved to a well: a well, once drilled, keeps drawing
RECOVERED_SHARE = 0.5


def _inflow_drop(c):
    # the known water in stepping down, read only where no metered balance says whether it is use, and not
    # when it fell to nothing (a closure); net of the fall most of its trade took at the same time (a downturn
    # of the whole trade explains it: a well is drilled by one firm, not by most of an industry in one month)
    shared = np.minimum(_nz(c.get("inflow_peer_step", np.zeros(len(c["inflow_step"])))), 0.0)
    drop = _significant(_floored_drop(c) + shared, c["inflow_step_score"])
    # the latest months back over half way to the level before the step: a pause that ended, not a well (read
    # as no step at all)
    drop = np.where(_nz(c["inflow_recovered_share"]) > RECOVERED_SHARE, np.minimum(drop, 0.0), drop)
    stopped = c["inflow_after_share"] < STOPPED_SHARE
    return np.where(np.isnan(c["balance_dry_log_12m"]) & _drawing_water(c) & ~stopped, drop, np.nan)


def _dewatering_unpermitted(c):
    # foundation-pit dewatering under way with no dewatering permit: the pit water goes somewhere (1), against
    # the works that hold one (0); not applicable without such works
    works = _nz(c["dewatering_projects"]) > 0
    return np.where(works, (_nz(c["dewatering_without_permit"]) > 0).astype(float), np.nan)


def _former_holder(c):
    # a permit that ended (expired or revoked, none in force) and no metering in 12 months: the well it licensed
    # is still in the ground (1), against holders still metered (0); not applicable to entities never permitted
    # (a dewatering permit's wells were the pit's: they end with the works, so its holder is not judged)
    ever = ((_nz(c["permit_expired"]) > 0) | (_nz(c["permit_revoked"]) > 0) | (
        _nz(c["permits_in_force"]) > 0)) & (_nz(c["dewatering_permits_only"]) <= 0)
    former = (_nz(c["permits_in_force"]) == 0) & (_nz(c["abstraction_m3_12m"]) <= 0)
    return np.where(ever, (ever & former).astype(float), np.nan)


def _use_per_employee(c):
    # known water in per registered employee (a year's rate; features.profiles), below the industry's: water from
    # elsewhere (or an efficient plant); entities with no known water, no staff on record or under half a year
    # old are not judged
    use = c["use_per_employee_12m"]
    ok = (use > 0) & _drawing_water(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, -np.log(use), np.nan)


# a peer's step is "at the same time" as an entity's when it began within this many months of it
SHARED_STEP_MONTHS = 1
# peers a trade needs before its typical change is read (one member then weighs at most 1/20 of it)
SHARED_MIN_PEERS = 20


def _shared_at(months: np.ndarray, steps: np.ndarray) -> dict[int, float]:
    """One peer group: for each month a step began, the typical member's change at that time, i.e. the share of
    members whose step began within SHARED_STEP_MONTHS of it times those steps' median (members that did not
    step then changed by about nothing); only falls are kept. One firm's own fall moves it by 1 / members; a
    downturn of the trade, followed by most members, by most of the fall."""
    out = {}
    for t in np.unique(months).tolist():
        near = np.abs(months - t) <= SHARED_STEP_MONTHS
        typical = float(near.mean() * np.median(steps[near]))
        if typical < 0:
            out[int(t)] = typical
    return out


def fit_shared_steps(c: dict, keys: list[np.ndarray], min_peers: int = SHARED_MIN_PEERS) -> list[tuple[dict, dict]]:
    """Per peer level (industry class, then section): {group|month: the median member's change in log at a step
    that began that many months before as-of} and each group's number of members with a step. Fitted on the
    city (models.detectors.HiddenWater), so that a downturn of a whole trade is told from one firm's fall."""
    step, since = c["inflow_step"], c["months_since_inflow_step"]
    ok = np.isfinite(step) & np.isfinite(since)
    levels = []
    for key in keys:
        frame = pd.DataFrame({"k": key[ok], "t": since[ok].astype("int64"), "x": step[ok]})
        shared, sizes = {}, frame.groupby("k").size()
        for k, part in frame.groupby("k"):
            if len(part) >= min_peers:
                shared.update({f"{k}|{t}": v for t, v in _shared_at(part["t"].to_numpy(), part["x"].to_numpy()).items()})
        levels.append((shared, {str(k): int(v) for k, v in sizes.items()}))
    return levels


def shared_step(levels, c: dict, keys: list[np.ndarray], min_peers: int = SHARED_MIN_PEERS) -> np.ndarray:
    """Each row's shared step (``fit_shared_steps``) of its finest peer group with min_peers members, at its own
    step's month; 0 where its trade did not fall with it (or nothing was fitted). A few rows (an API call) by
    plain dict lookups (microseconds); many (a city, a backtest sample) by one hash join per peer level, the
    same lookups as the dict's (``{group}|{month}``, a missing month read as -1) without a Python step per row."""
    since = c["months_since_inflow_step"]
    out, todo = np.zeros(len(since)), np.ones(len(since), dtype=bool)
    if not levels:
        return out
    few = len(since) <= SHARED_FEW_ROWS
    if few:
        months = [str(int(m)) if m == m else "-1" for m in since.tolist()]
    else:
        months = np.where(np.isnan(since), -1, since).astype("int64")  # int() truncates toward 0, as astype does
    for key, (shared, sizes) in zip(keys, levels):
        if few:
            groups = [str(k) for k in key.tolist()]
            size = np.array([sizes.get(g, 0) for g in groups])
            found = np.array([shared.get(f"{g}|{m}", 0.0) for g, m in zip(groups, months)], dtype="float64")
        else:
            size, found = _shared_join(shared, sizes, key, months)
        here = todo & (size >= min_peers)
        out = np.where(here, found, out)
        todo &= ~here
    return out


SHARED_FEW_ROWS = 64  # up to this many rows, shared_step reads the dicts key by key


def _shared_join(shared: dict, sizes: dict, key: np.ndarray, months: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sizes.get(str(g), 0)`` and ``shared.get(f"{g}|{m}", 0.0)`` of every row, by hash joins: the groups by
    their string, the (group, month) pairs by the shared keys split at their last ``|`` (a month has none)."""
    groups = pd.Index(list(sizes), dtype=object)
    row_group = groups.get_indexer(pd.Index(np.asarray([str(k) for k in key.tolist()], dtype=object), dtype=object))
    size = np.append(np.fromiter(sizes.values(), dtype="int64", count=len(sizes)), 0)[row_group]
    found = np.zeros(len(months))
    if not shared:
        return size, found
    split = [k.rsplit("|", 1) for k in shared]
    shared_group = groups.get_indexer(pd.Index([g for g, _ in split], dtype=object))
    shared_month = np.array([int(t) for _, t in split], dtype="int64")
    values = np.fromiter(shared.values(), dtype="float64", count=len(shared))
    mine = shared_group >= 0  # a key whose group has no size matches only rows that are never read (size 0)
    table = pd.MultiIndex.from_arrays([shared_group[mine], shared_month[mine]])
    at = table.get_indexer(pd.MultiIndex.from_arrays([row_group, months]))
    at = np.where(row_group >= 0, at, -1)
    return size, np.append(values[mine], 0.0)[at]


FLAT_MONTHS = 1  # months of the last 12 that close a run of 3+ identical non-zero readings (features.profiles)


def _meter_flat(c):
    # a meter whose monthly volume repeats exactly, month after month: no pump and no process draws the same
    # cubic metres every month, so the reading is stuck, estimated or set by hand (1), against meters that
    # vary (0); not applicable to entities with no metered abstraction
    holder = _nz(c["abstraction_m3_12m"]) > 0
    flat = _nz(c["flat_reading_months_12m"]) >= FLAT_MONTHS
    return np.where(holder, flat.astype(float), np.nan)


# floor of the spread of a step in the log balance: most entities have no step at all, so their spread (a few
# hundredths) would make any ordinary step of a tenth (a discharge estimate revised, a meter drifting) a capped
# z, while water moved to a well steps the balance by a half or more (measured on our generator over seeds:
# steps below 0.2 are rarely hidden water, above 0.5 mostly are)
BALANCE_STEP_SPREAD = 0.1

# a yes/no record is "as unusual as EVENT_Z peer spreads" when it says yes (its peers mostly say no)
EVENT_Z = 3.0

# registered staff say little about the water a site needs (shifts, outsourced processes, efficient plants): half
# the weight of a water record. Weight 0 was measured on our generator with staff on record for 94 % of firms (ten
# cities): AP 0.646 -> 0.649, P@1 % 0.872 -> 0.860, no better than 0.5, so 0.5 stays
USE_PER_EMPLOYEE_WEIGHT = 0.5

HIDDEN_WATER_INDICATORS: tuple[Indicator, ...] = (
    Indicator("balance_excess", "industry", 1.0, 0.05, _balance_level, capped_where=_no_known_inflow),
    Indicator("balance_step", "city", 1.0, BALANCE_STEP_SPREAD, _balance_step, one_sided=True,
              capped_where=_no_known_inflow),
    Indicator("plan_shortfall", "city", 1.0, 0.05, partial(_shortfall, column="plan_used_12m")),
    Indicator("quota_shortfall", "city", 1.0, 0.05, partial(_shortfall, column="quota_used_12m")),
    Indicator("meter_drop", "city", 1.0, 0.02, _meter_drop, one_sided=True, upper_spread=True),
    Indicator("meter_flat", "city", 1.0, 1.0 / EVENT_Z, _meter_flat, one_sided=True),
    Indicator("supply_drop", "city", 1.0, 0.02, _inflow_drop, one_sided=True),
    Indicator("dewatering_unpermitted", "city", 1.0, 1.0 / EVENT_Z, _dewatering_unpermitted, one_sided=True,
              event=True, corroborating=True),
    Indicator("former_permit", "city", 0.5, 1.0 / EVENT_Z, _former_holder, one_sided=True),
    Indicator("use_per_employee", "industry", USE_PER_EMPLOYEE_WEIGHT, 0.05, _use_per_employee),
)


# the snapshot columns the indicators read or their reasons quote (features.hidden_water and the quota use)
HIDDEN_WATER_COLUMNS = (
    "balance_dry_months_12m", "balance_dry_log_12m", "balance_dry_ratio_12m", "balance_dry_step",
    "balance_dry_step_score", "months_since_balance_dry_step", "inflow_step", "inflow_step_score",
    "months_since_inflow_step", "inflow_step_supply_share", "inflow_recovered_share", "meter_step", "meter_step_score",
    "months_since_meter_step",
    "meter_unexplained_drop_share", "plan_used_12m", "quota_used_12m", "water_recent_share_3m",
    "inflow_after_share", "dewatering_projects", "dewatering_without_permit", "dewatering_permits_only",
    "permit_expired", "permit_revoked",
    "permits_in_force", "abstraction_m3_12m", "inflow_m3_12m", "employees", "use_per_employee_12m",
    "flat_reading_months_12m",
    "flat_run_months",
)
