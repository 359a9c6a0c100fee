"""Every way an honest entity comes to look like a violator, in one place to audit (docs/generator.md).

Like ``synth.violations``, the stages call these functions where the honest
data they shape is made. Each is drawn for everyone (violators included: a
violator may also renew late or shut down for a winter), never from the
violation state, so no confounder tells a detector who is honest.
The generator keeps what it drew on the state (``g.conf_*``) for the tests.
"""

from __future__ import annotations

import numpy as np

from synth.state import CityState

HEAVY_INDUSTRY = ("D4430", "C2614", "C3120", "C2221", "C1752")  # reclaimed water is sold to these first
COOLING_INDUSTRY = ("D4430", "C3120", "C2614", "C3011", "C2221")  # evaporate much of their water in summer
SUMMER = [5, 6, 7, 8]  # June..September (0-based calendar months)
GROWING_SEASON = [2, 3, 4, 5, 6, 7, 8]  # March..September


# -- registry and use ------------------------------------------------------------------------


def discharge_coefficients(g: CityState, rng, industry_value: np.ndarray) -> np.ndarray:
    """Plants of one industry differ: recycling, evaporation, water in the raw material (lognormal spread)."""
    spread = g.cfg.confounders.coefficient_spread
    return np.clip(industry_value * np.exp(rng.normal(0.0, spread, len(industry_value))), 0.02, 1.6)


def evaporation_season(g: CityState) -> np.ndarray:
    """(n, M) factor on the discharge coefficient: cooling industries lose more water to evaporation in summer."""
    cooling = np.isin(g.code, COOLING_INDUSTRY)
    factor = np.where(np.isin(g.cal, SUMMER), 0.8, np.where(np.isin(g.cal, [0, 1, 11]), 1.1, 1.0))
    return np.where(cooling[:, None], factor[None, :], 1.0)


def dry_year(g: CityState, rng) -> np.ndarray:
    """(n, M) factor on use in the dry year: irrigation pumps ``dry_year_use`` more in the growing season,
    livestock and cooling half of that, everyone else a third (dust, greening, process water), all year."""
    extra = g.cfg.confounders.dry_year_use
    n, dry_months = g.cfg.entities, g.year == g.dry_year
    irrigation = np.char.startswith(g.code, "A01")
    livestock = np.char.startswith(g.code, "A03")
    cooling = np.isin(g.code, COOLING_INDUSTRY)
    size = np.select([irrigation, livestock, cooling], [1.0, 0.5, 0.5], 1 / 3) * extra
    size = size * rng.uniform(0.6, 1.4, n)
    season = np.where(irrigation[:, None], np.isin(g.cal, GROWING_SEASON)[None, :], True)
    return 1.0 + size[:, None] * season * dry_months[None, :]


def rain_factor(g: CityState) -> np.ndarray:
    """(M,) share of normal rainfall: about half in the dry year."""
    return np.where(g.year == g.dry_year, 0.55, 1.0)


def production_changes(g: CityState, rng) -> np.ndarray:
    """(n, M) factor: a lasting step in all use (an order won, a line shut), -60 %..+80 %."""
    n, M = g.cfg.entities, g.M
    g.conf_production = rng.random(n) < g.cfg.confounders.production_change
    at = rng.integers(3, M - 3, n)
    up = rng.random(n) < 0.5
    factor = np.where(up, rng.uniform(1.25, 1.8, n), rng.uniform(0.4, 0.8, n))
    step = g.conf_production[:, None] & (np.arange(M)[None, :] >= at[:, None])
    g.conf_production_at = np.where(g.conf_production, at, -1)
    return np.where(step, factor[:, None], 1.0)


def sector_downturns(g: CityState, rng) -> np.ndarray:
    """(n, M) factor: a lasting fall shared by most plants of one industry class at once (demand lost to the
    whole trade, a capacity cut or an environmental rectification campaign that limits the trade), -15..-50 %.
    Each class has ``sector_downturn`` chance of one; 60-95 % of its members follow it, each a little more or
    less, within a month of the others. Supply, metering and discharge all fall alike."""
    n, M = g.cfg.entities, g.M
    classes = np.unique(g.code)
    hit = rng.random(len(classes)) < g.cfg.confounders.sector_downturn
    at = rng.integers(4, M - 4, len(classes))
    depth = rng.uniform(0.5, 0.85, len(classes))
    follow = rng.uniform(0.6, 0.95, len(classes))
    k = np.searchsorted(classes, g.code)
    member = hit[k] & (rng.random(n) < follow[k])
    start = at[k] + rng.integers(-1, 2, n)  # within a month of the trade
    factor = np.clip(depth[k] * np.exp(rng.normal(0.0, 0.08, n)), 0.3, 0.95)
    g.conf_sector_downturn = np.where(member, start, -1)
    g.conf_downturn_classes = hit
    step = member[:, None] & (np.arange(M)[None, :] >= start[:, None])
    return np.where(step, factor[:, None], 1.0)


def shutdowns(g: CityState, rng) -> np.ndarray:
    """(n, M) operating factor: temporary shutdowns (2-8 months at 0-10 %) and closures without deregistration."""
    cfg, n, M = g.cfg.confounders, g.cfg.entities, g.M
    m = np.arange(M)[None, :]
    g.conf_dormant = rng.random(n) < cfg.dormancy
    start = rng.integers(1, M - 3, n)
    length = rng.integers(2, 9, n)
    asleep = g.conf_dormant[:, None] & (m >= start[:, None]) & (m < (start + length)[:, None])
    level = rng.uniform(0.0, 0.1, n)
    g.conf_closed = g.full_window & (rng.random(n) < cfg.closure)
    g.conf_closed_m = np.where(g.conf_closed, rng.integers(6, M - 2, n), M + 100)
    g.conf_dormant_months = asleep
    closed = m >= g.conf_closed_m[:, None]
    # the companies close a dead account a few months later; until then it is billed (near) nothing
    g.billed = g.active & (m < (g.conf_closed_m + rng.integers(0, 4, n))[:, None])
    return np.where(closed, 0.0, np.where(asleep, level[:, None], 1.0))


# -- permits -----------------------------------------------------------------------------------


def new_permits(g: CityState, rng) -> np.ndarray:
    """Holders whose first permit is granted inside the window: before it, all their water came from the mains.
    Returns the month each line starts abstracting (0 for lines abstracting since before the window)."""
    H = len(g.holder_e)
    new = (rng.random(H) < g.cfg.confounders.new_permit) & (g.reg_m[g.holder_e] < 0)
    start = np.where(new, rng.integers(4, g.M - 6, H), 0)
    g.conf_new_permit = g.holder_e[new]
    per_entity = np.zeros(g.cfg.entities, int)
    per_entity[g.holder_e] = start
    return per_entity[g.line_e]


def late_renewals(g: CityState, rng) -> np.ndarray:
    """Months (1 or 2) a holder pumps after expiry under the old permit: the renewal is granted late, or a
    permit that is not renewed stops only when the holder has moved to the mains. 0 for everyone else."""
    L = len(g.line_e)
    late = rng.random(L) < g.cfg.confounders.late_renewal
    return np.where(late, rng.integers(1, 3, L), 0)


def dewatering_by_contractor(g: CityState, rng, legal: np.ndarray) -> np.ndarray:
    """Which legal dewatering works (indices into ``legal``) have the dewatering permit held by the construction
    contractor (施工单位) rather than the project owner: the owner's records then show works that dewater and no
    permit of its own, and the pit water goes to the sewer on the contractor's temporary account, not the owner's."""
    by_contractor = rng.random(len(legal)) < g.cfg.confounders.dewatering_by_contractor
    g.conf_dewatering_contractor = by_contractor  # over the legal works (the tests read its rate)
    g.conf_dewatering_by_contractor = legal[by_contractor]
    return by_contractor


def pit_water_to_storm_drain(g: CityState, rng, works: int) -> np.ndarray:
    """Which of ``works`` legal dewatering works discharge their pit water to a storm drain or a river (clean
    groundwater, often kept out of the sewer) rather than the sewer: the dewatering meter then reads water that
    no sewer bill shows, and the owner's balance of water in against discharge drops while the pit is pumped."""
    g.conf_pit_to_storm_drain = rng.random(works) < g.cfg.confounders.pit_water_to_storm_drain
    return g.conf_pit_to_storm_drain


def quota_factors(g: CityState, rng) -> np.ndarray:
    """Quota over the best normal year's use: 1.15-1.5, or 1.0-1.06 for tight quotas (total-amount control)."""
    L = len(g.line_e)
    g.conf_tight = rng.random(L) < g.cfg.confounders.tight_quota
    return np.where(g.conf_tight, rng.uniform(1.0, 1.06, L), rng.uniform(1.15, 1.5, L))


def meter_drift(g: CityState, rng, K: int, replaced, gap_end) -> np.ndarray:
    """(K, M) reading factor: worn meters under-register 5-15 % a year more; a replacement resets the wear."""
    m = np.arange(g.M)[None, :]
    g.conf_drift = rng.random(K) < g.cfg.confounders.meter_drift
    rate = rng.uniform(0.05, 0.15, K)[:, None]
    age0 = rng.uniform(0.5, 4.0, K)[:, None]
    age = np.where(replaced[:, None] & (m >= gap_end[:, None]), (m - gap_end[:, None]) / 12.0, age0 + m / 12.0)
    return np.where(g.conf_drift[:, None], np.clip(1.0 - rate * age, 0.45, 1.0), 1.0)


# -- water balance -----------------------------------------------------------------------------


def reclaimed_water(g: CityState, rng) -> np.ndarray:
    """(n, M) water bought from the wastewater plant (再生水), 20-50 % of all use: in no table, so discharge
    exceeds the bills and the meters. Half the buyers switched before the window, half inside it (their
    supply bill and their metered abstraction drop)."""
    n, M = g.cfg.entities, g.M
    heavy = np.isin(g.code, HEAVY_INDUSTRY)
    g.conf_reclaimed = heavy & (rng.random(n) < g.cfg.confounders.reclaimed_water)
    share = rng.uniform(0.2, 0.5, n)
    since = np.where(rng.random(n) < 0.5, 0, rng.integers(3, M - 3, n))
    on = g.conf_reclaimed[:, None] & (np.arange(M)[None, :] >= since[:, None])
    return np.where(on, g.use * share[:, None], 0.0)


def park_members_with_own_discharge(g: CityState, rng) -> np.ndarray:
    """Parks whose sewer operator bills each member on its own while the water company bills the park:
    a mask over entities (every member of such a park)."""
    billed_alone = rng.random(g.P) < g.cfg.confounders.park_own_discharge
    g.conf_park_alone = billed_alone
    out = np.zeros(g.cfg.entities, bool)
    out[g.park_e[billed_alone[g.park_id]]] = True
    return out


def estimated_from_supply(g: CityState, rng, owner: np.ndarray, estimated: np.ndarray) -> np.ndarray:
    """Which estimated discharge accounts are billed as the owner's supply bill times a fixed ratio."""
    return estimated & (owner >= 0) & (rng.random(len(owner)) < g.cfg.confounders.estimated_from_supply)


def misdeclared(g: CityState, rng, ents: np.ndarray, decl: np.ndarray) -> np.ndarray:
    """Taxpayers who declare from their own readings or estimates: 10-15 % off in about half the quarters."""
    n = g.cfg.entities
    who = rng.random(n) < g.cfg.confounders.tax_misdeclare
    g.conf_misdeclare = who
    off = who[ents][:, None] & (rng.random(decl.shape) < 0.5)
    sign = np.where(rng.random(decl.shape) < 0.5, -1.0, 1.0)
    return np.where(off, decl * (1 + sign * rng.uniform(0.10, 0.15, decl.shape)), decl)


def misread_bills(g: CityState, rng, values: np.ndarray, act: np.ndarray) -> np.ndarray:
    """(A, M) the bills as keyed: ``billing_misread`` of the billed, non-zero months carry an extra digit (x 10).

    A clerk's slip, corrected on a later bill but not in the month's row; only the table is touched (the water
    behind it, and a discharge estimated from the supply bill, stay as they were)."""
    hit = act & (values > 0) & (rng.random(values.shape) < g.cfg.confounders.billing_misread)
    return np.where(hit, values * 10.0, values)


def bimonthly_bills(g: CityState, rng, values: np.ndarray, act: np.ndarray,
                    share: float) -> tuple[np.ndarray, np.ndarray]:
    """(A, M) the bills of accounts read every second month, and which accounts they are: ``share`` of the accounts
    bill 0 in the odd calendar months (January, March, ...) and both months in the even month after; an odd last
    month is billed after the window (0). Only the table is touched, as for misreads."""
    A, M = act.shape
    every_second = rng.random(A) < share
    odd = np.flatnonzero(g.cal % 2 == 0)  # cal is 0 for January
    out = values.copy()
    rows = np.flatnonzero(every_second)
    for t in odd.tolist():
        if t + 1 < M:
            both = act[rows, t] & act[rows, t + 1]
            out[rows[both], t + 1] += out[rows[both], t]
        out[rows, t] = 0.0
    return out, every_second


def zero_bills(g: CityState, rng, values: np.ndarray, act: np.ndarray) -> np.ndarray:
    """(A, M) months billed 0 although water was used (a reading recorded as nothing, no catch-up on the next bill):
    ``zero_bill`` of the non-zero billed months between two billed months."""
    inside = act.copy()
    inside[:, [0, -1]] = False
    inside[:, 1:-1] &= act[:, :-2] & act[:, 2:]
    return inside & (values > 0) & (rng.random(act.shape) < g.cfg.confounders.zero_bill)


GAP_LENGTHS = (1, 2, 3, 4, 5)  # months a lost run of bills lasts, and how often (mean about 1.3)
GAP_LENGTH_SHARES = (0.85, 0.08, 0.04, 0.02, 0.01)


def lost_bills(g: CityState, rng, act: np.ndarray, rate: float | None = None) -> np.ndarray:
    """(A, M) months whose bill is missing from the table: ``billing_gap`` (or ``rate``) of an account's months start
    a run of 1-5 months with no row (a reading not taken, a record lost between systems), inside the account's
    life: a bill before and after it. The water was used; the next bill is at its usual level (nothing is billed
    twice). Also the meter months an abstraction meter's data is lost for (``meter_gap``)."""
    A, M = act.shape
    rate = g.cfg.confounders.billing_gap if rate is None else rate
    start = act & (rng.random((A, M)) < rate)
    length = rng.choice(np.array(GAP_LENGTHS), size=(A, M), p=np.array(GAP_LENGTH_SHARES))
    lost = np.zeros((A, M), dtype=bool)
    for k in range(max(GAP_LENGTHS)):
        lost[:, k:] |= (start & (length > k))[:, : M - k]
    lost &= act
    kept = act & ~lost
    before = np.zeros_like(kept)
    before[:, 1:] = np.logical_or.accumulate(kept, axis=1)[:, :-1]
    after = np.zeros_like(kept)
    after[:, :-1] = np.flip(np.logical_or.accumulate(np.flip(kept, axis=1), axis=1), axis=1)[:, 1:]
    return lost & before & after
