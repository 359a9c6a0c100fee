"""Every planting rule of the generator, in one place to audit.

Who violates (``plan_violations``) and each trace a violation leaves in the
departments' tables. The other stages call these functions at the point where
the honest data they alter is made; nothing else in the generator looks at
``g.vtype``, ``g.violator`` or ``g.since`` except the inspections (officers find
what is there) and the truth files.
"""

from __future__ import annotations

import numpy as np

from synth.config import HIDDEN_VIOLATIONS, PERMIT_VIOLATIONS
from synth.state import CityState


# -- who ----------------------------------------------------------------------------------


def plan_violations(g: CityState) -> None:
    """Draw the violators (exact counts per type), when each began, and make their permits fit the story."""
    cfg, rng, n, M = g.cfg, g.rng("violations"), g.cfg.entities, g.M
    eligible = g.full_window & ~g.conf_closed  # a firm that closes in the window is no violator in it
    counts, types = _counts_per_type(cfg, int(round(cfg.violation_rate * eligible.sum())))
    vtype = np.full(n, "", dtype=object)
    taken = np.zeros(n, bool)
    line_ok = g.line_main & ~g.line_revoked & eligible[g.line_e] & (g.line_from_m == 0)
    holder_pool = np.zeros(n, bool)
    holder_pool[g.line_e[line_ok]] = True
    non_holder = eligible & ~np.isin(np.arange(n), g.holder_e)
    order = np.argsort([t in PERMIT_VIOLATIONS for t in types])[::-1]  # permit types first: scarcer pool
    for k in order:
        t, c = types[k], counts[k]
        if c == 0:
            continue
        if t in PERMIT_VIOLATIONS:
            pool = holder_pool & ~taken
        elif t == "unpermitted_abstraction":
            pool = non_holder & ~taken
        else:  # private wells: anyone whose use is worth a well
            pool = eligible & ~taken & (g.base > 20)
        idx = np.flatnonzero(pool)
        if not len(idx):
            continue
        p = np.sqrt(g.base[idx])
        chosen = rng.choice(idx, size=min(c, len(idx)), replace=False, p=p / p.sum())
        vtype[chosen] = t
        taken[chosen] = True
    g.vtype, g.violator = vtype, taken
    g.since = np.full(n, -1)
    g.since[taken] = rng.integers(6, M - 6, taken.sum())
    # unpermitted abstraction shows as a supply swap, an expansion fed by a well, or unpermitted dewatering
    g.unp_mode = np.where(vtype == "unpermitted_abstraction", rng.choice(3, n, p=[0.45, 0.3, 0.25]), -1)
    # many hidden violations are older than the data: a well drilled years ago shows no before and after
    hidden = np.isin(vtype, HIDDEN_VIOLATIONS) & (g.unp_mode != 2)
    g.preexisting = hidden & (rng.random(n) < cfg.preexisting_share)
    g.since[g.preexisting] = 0
    _fit_permits(g)


def _counts_per_type(cfg, n_v: int) -> tuple[np.ndarray, list[str]]:
    types = [t for t, _ in cfg.violation_mix]
    w = np.array([w for _, w in cfg.violation_mix], float)
    w = w / w.sum() if w.sum() > 0 else w
    raw = w * n_v
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: n_v - counts.sum()]] += 1
    return counts, types


def _fit_permits(g: CityState) -> None:
    """Permit violators keep their main permit alive (renewed), except those letting it expire."""
    main_line = np.full(g.cfg.entities, -1)
    main_line[g.line_e[g.line_main]] = np.flatnonzero(g.line_main)
    g.main_line = main_line
    pv = np.isin(g.vtype, PERMIT_VIOLATIONS)
    lines = main_line[pv]
    g.line_revoked[lines] = False
    renew = g.line_to1[lines] < g.end
    g.line_renewed[lines] = renew
    g.line_lapsed[lines] = False
    exp = np.flatnonzero(g.vtype == "expired_permit")
    el = main_line[exp]
    month_end = g.month_start[g.since[exp]] - np.timedelta64(1, "D")
    g.line_to1[el] = month_end
    g.line_renewed[el] = False
    g.line_lapsed[el] = False  # keeps pumping: that is the violation


# -- volumes --------------------------------------------------------------------------------


def plant_hidden_use(g: CityState, rng, after: np.ndarray) -> None:
    """Private wells and unpermitted supply swaps move part of the supply to an unmetered well;
    an unpermitted expansion adds a production line fed by a new well."""
    n, vt = g.cfg.entities, g.vtype
    swap = (vt == "private_well") | ((vt == "unpermitted_abstraction") & (g.unp_mode == 0))
    keep = np.where(swap, rng.uniform(0.15, 0.6, n), 1.0)
    keep = np.where(g.preexisting & (rng.random(n) < 0.3), 0.0, keep)[:, None]  # old wells may carry it all
    moved = np.where(after & swap[:, None], g.supply_use * (1 - keep), 0.0)
    g.supply_use -= moved
    g.well += moved
    grow = (vt == "unpermitted_abstraction") & (g.unp_mode == 1)
    extra = np.where(after & grow[:, None], g.use * rng.uniform(0.6, 1.5, n)[:, None], 0.0)
    g.use = g.use + extra
    g.well += extra


def plant_over_permit(g: CityState, rng, m: np.ndarray, line_true: np.ndarray) -> None:
    """Over permit: the main line pumps 1.3-2.0 times its normal use from since_month on (in place)."""
    over = np.flatnonzero(g.vtype == "over_permit")
    ol = g.main_line[over]
    factor = rng.uniform(1.3, 2.0, len(ol))[:, None]
    add = np.where(m >= g.since[over][:, None], line_true[ol] * (factor - 1), 0.0)
    line_true[ol] += add
    g.use[over] += add


def plant_tampering(g: CityState, rng, m: np.ndarray) -> None:
    """Meter tampering lowers what the meter records: a drop, a flat low reading, or nothing at all."""
    tamper = np.flatnonzero(g.vtype == "meter_tampering")
    tl = g.main_line[tamper]
    mode = rng.choice(3, len(tl), p=[0.5, 0.3, 0.2])
    s = g.since[tamper][:, None]
    line_true, metered = g.line_true, g.metered
    usual = (m < np.maximum(s, 6)) & (m >= s - 6)  # the six months before (an old tampering: the first six)
    pre_mean = np.nanmean(np.where(usual, line_true[tl], np.nan), axis=1) if len(tl) else np.zeros(0)
    drop = metered[tl] * rng.uniform(0.15, 0.5, len(tl))[:, None]
    flat = np.round(pre_mean * rng.uniform(0.25, 0.5, len(tl)), -1)[:, None] * np.ones((1, g.M))
    new = np.select([mode[:, None] == 0, mode[:, None] == 1], [drop, flat], 0.0)
    metered[tl] = np.where(m >= s, new, metered[tl])


def plant_unpermitted_dewatering(g: CityState, rng, m: np.ndarray) -> None:
    """Unpermitted dewatering: 5-10 months of pit water pumped into the sewer from since_month."""
    n, M = g.cfg.entities, g.M
    g.dewater = np.zeros((n, M))
    dw = np.flatnonzero((g.vtype == "unpermitted_abstraction") & (g.unp_mode == 2))
    dur = rng.integers(5, 11, len(dw))
    vol = rng.uniform(3000, 25000, len(dw))
    window = (m >= g.since[dw][:, None]) & (m < (g.since[dw] + dur)[:, None])
    g.dewater[dw] = np.where(window, vol[:, None] * np.exp(rng.normal(0, 0.15, (len(dw), M))), 0.0)
    g.discharge_use += 0.9 * g.dewater


# -- accounts and projects --------------------------------------------------------------------


def needs_supply_account(g: CityState) -> np.ndarray:
    """Who swapped part of their supply for a well inside the window had a supply account that shows the drop."""
    swap = (g.vtype == "private_well") | (g.unp_mode == 0)
    return swap & (g.since > 0)


def pumps_into_the_sewer(g: CityState) -> np.ndarray:
    """Unpermitted dewatering pumps pit water into the sewer, on a (temporary) discharge account."""
    return g.unp_mode == 2


def dewatering_works(g: CityState) -> np.ndarray:
    """Entities whose unpermitted dewatering needs a construction project."""
    return np.flatnonzero(g.unp_mode == 2)


def time_unpermitted_works(g, rng, unp, is_unp, start, approved, started, dewater) -> None:
    """The unpermitted dewatering works start in the violation month (arrays changed in place)."""
    start[is_unp] = g.month_start[g.since[unp]] + rng.integers(0, 20, len(unp)).astype("timedelta64[D]")
    approved[is_unp] = start[is_unp] - rng.integers(40, 200, len(unp)).astype("timedelta64[D]")
    started[is_unp] = True
    dewater[is_unp] = True


# -- permits and tax ----------------------------------------------------------------------------


def tight_over_permit_quota(g: CityState, rng, monthly: np.ndarray, m: np.ndarray, quota: np.ndarray) -> None:
    """Over-permit lines got a quota just above their pre-violation level (in place)."""
    over_lines = g.main_line[g.vtype == "over_permit"]
    over_since = g.since[g.vtype == "over_permit"]
    level = np.nanmean(np.where(m < over_since[:, None], monthly[over_lines], np.nan), axis=1)
    quota[over_lines] = level * 12 * rng.uniform(1.03, 1.15, len(over_lines))


def past_permit_of_unpermitted(g: CityState, rng) -> np.ndarray:
    """Some unpermitted abstractors held a permit that ended before they began (mask over entities)."""
    return (g.vtype == "unpermitted_abstraction") & (rng.random(g.cfg.entities) < 0.4)


def past_permit_end_limit(g: CityState, pe: np.ndarray) -> np.ndarray:
    return np.where(g.violator[pe], g.month_start[np.maximum(g.since[pe], 0)], g.start)


def underreport_tax(g: CityState, rng, ents, decl, qstart) -> np.ndarray:
    """Tax under-reporters declare 35-75 % of the metered volume from since_month on."""
    under = g.vtype[ents] == "tax_underreport"
    cut = under[:, None] & (qstart[None, :] >= g.since[ents][:, None])
    return np.where(cut, decl * rng.uniform(0.35, 0.75, len(ents))[:, None], decl)


def declared_well_water(g: CityState, rng, quarters, qkey) -> tuple[np.ndarray, np.ndarray]:
    """Some unpermitted abstractors declare part of their well water anyway: (entities, (E, Q) volumes)."""
    wells_e = np.flatnonzero(
        (g.vtype == "unpermitted_abstraction") & (g.well.sum(1) > 0) & (rng.random(len(g.vtype)) < 0.35)
    )
    wq = np.stack([g.well[wells_e][:, qkey == k].sum(1) for k in quarters], axis=1) * rng.uniform(
        0.5, 1.0, (len(wells_e), 1)
    )
    return wells_e, wq
