"""Stage 3, permits (取水许可) and their meters: permit holders' lines, permit chains, the permits and abstraction tables.

A *line* is one source of one holder (a holder may have a second line from the
other source); each line has a chain of permits: an old one before the window,
the current one, and the renewal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth import confounders, ids, violations
from synth.arrays import cat, fmt_dates, pick, round_to
from synth.state import NUMBER_ROOM, CityState
from synth.vocab import INDUSTRIES

PERMIT_COLUMNS = [
    "permit_id",
    "uscc",
    "holder_name",
    "source",
    "purpose",
    "annual_quota_m3",
    "valid_from",
    "valid_to",
    "status",
    "wells",
]


def permit_lines(g: CityState) -> None:
    """Permit holders, their lines (source, share of use, purpose) and the current permit's term."""
    cfg, rng, n, M = g.cfg, g.rng("permits"), g.cfg.entities, g.M
    prop = np.array([r[7] for r in INDUSTRIES])[g.ind] * cfg.permit_holder_boost
    size = np.clip((g.base / 1000.0) ** 0.5, 0.05, 2.0)  # small users take the mains
    holder = (rng.random(n) < prop * size) & g.active.any(axis=1)
    g.holder_e = np.flatnonzero(holder)
    H = len(g.holder_e)
    g.self_share = np.zeros(n)
    g.self_share[g.holder_e] = rng.uniform(0.4, 0.95, H)
    second = rng.random(H) < 0.12
    # lines: one main line per holder, a second one (other source) for some
    le = np.concatenate([g.holder_e, g.holder_e[second]])
    L = len(le)
    is_agri = np.char.startswith(g.code[le], "A")
    main_src = np.where(rng.random(H) < np.where(is_agri[:H], 0.45, 0.2), "surface", "groundwater")
    g.line_src = np.concatenate([main_src, np.where(main_src[second] == "surface", "groundwater", "surface")])
    g.line_share = np.concatenate([np.where(second, 0.7, 1.0), np.full(second.sum(), 0.3)])
    g.line_purpose = purpose_of(g.code[le])
    g.line_e = le
    g.line_main = np.arange(L) < H
    years = np.where(rng.random(L) < 0.8, 5, 10)
    g.line_years = years
    # current permit: expires somewhere within its term after the window start
    to1 = g.start + (rng.uniform(0.02, 1.0, L) * years * 365).astype("timedelta64[D]")
    g.line_from_m = confounders.new_permits(g, rng)
    new = g.line_from_m > 0
    granted = g.month_start[g.line_from_m] + rng.integers(0, 28, L).astype("timedelta64[D]")
    to1 = np.where(new, granted + (years * 365 - 1).astype("timedelta64[D]"), to1)
    g.line_to1 = to1
    expires_in = to1 < g.end
    g.line_renewed = expires_in & (rng.random(L) < 0.85)
    g.line_lapsed = expires_in & ~g.line_renewed
    g.line_revoked = ~expires_in & (rng.random(L) < 0.02)
    g.line_revoke_m = rng.integers(3, M - 2, L)
    g.line_history = (rng.random(L) < 0.35) & ~new
    g.line_wells = np.where(g.line_src == "surface", 1, rng.choice([1, 1, 1, 2, 2, 3], L))
    g.line_late = confounders.late_renewals(g, rng)
    g.line_renewal_day = rng.integers(0, 28, L)  # day of the month a renewal takes effect, when late


def purpose_of(codes: np.ndarray) -> np.ndarray:
    """Permit purpose from the industry class."""
    return np.select(
        [
            np.char.startswith(codes, "A"),
            np.char.startswith(codes, "C") | np.char.startswith(codes, "D"),
            np.char.startswith(codes, "H") | np.char.startswith(codes, "O"),
        ],
        ["agriculture", "industrial", "services"],
        "domestic",
    )


def line_activity(g: CityState) -> np.ndarray:
    """(L, M) months in which a line legally abstracts (before lapse or revocation)."""
    m = np.arange(g.M)[None, :]
    lapse_m = g.month_of(g.line_to1)
    act = m >= g.line_from_m[:, None]
    act &= ~(g.line_lapsed[:, None] & (m > (lapse_m + g.line_late)[:, None]))
    act &= ~(g.line_revoked[:, None] & (m >= g.line_revoke_m[:, None]))
    return act & g.active[g.line_e]


def renewal_start(g: CityState) -> np.ndarray:
    """The day each line's renewal takes effect: the day after expiry, or 1-2 months later when granted late."""
    late_month = g.line_to1.astype("datetime64[M]") + (1 + g.line_late).astype("timedelta64[M]")
    late_day = late_month.astype("datetime64[D]") + g.line_renewal_day.astype("timedelta64[D]")
    return np.where(g.line_late > 0, late_day, g.line_to1 + np.timedelta64(1, "D"))


def lapsed_or_revoked(g: CityState) -> np.ndarray:
    """Entities with a line that lapsed or was revoked (they turn to the mains)."""
    out = np.zeros(g.cfg.entities, bool)
    out[g.line_e[g.line_lapsed | g.line_revoked]] = True
    return out


def permit_tables(g: CityState) -> None:
    """The permits table (old, current, renewed, dewatering and past permits) and the abstraction table."""
    rng, L = g.rng("permit_tables"), len(g.line_e)
    quota = _quotas(g, rng)
    parts = _line_permits(g, rng, quota) + [_dewatering_permits(g, rng), _past_permits(g, rng, L + len(g.dw_e))]
    permits = pd.concat(parts, ignore_index=True)
    permits = permits.sort_values(["valid_from", "line"], kind="stable").reset_index(drop=True)
    vf_year = permits["valid_from"].to_numpy().astype("datetime64[Y]").astype(str)
    serials = g.carry.permit_serials  # numbering runs on across blocks, per year
    seq = permits.groupby(vf_year).cumcount().to_numpy() + 1 + pd.Series(vf_year).map(serials).fillna(0).to_numpy(int)
    serials.update(pd.Series(vf_year).value_counts().to_dict())
    permits["permit_id"] = cat(g.cfg.permit_prefix, "[", vf_year, "]第", np.char.zfill((seq + 0).astype(str), 4), "号")
    g.permit_index = permits
    out = permits[PERMIT_COLUMNS].copy()
    out["valid_from"] = fmt_dates(permits["valid_from"].to_numpy().astype("datetime64[D]"))
    out["valid_to"] = fmt_dates(permits["valid_to"].to_numpy().astype("datetime64[D]"))
    g.tables["permits"] = out.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    meters(g, rng, permits)


def _quotas(g: CityState, rng) -> np.ndarray:
    """Quota sized on normal use: the best full calendar year's monthly level, in a normal (not dry) year;
    without a full year, any year's (over-permit lines: the pre-violation level)."""
    m = np.arange(g.M)[None, :]
    monthly = np.where(g.active[g.line_e], g.line_quota_base, np.nan)
    years = np.unique(g.year)
    full = [y for y in years if (g.year == y).sum() == 12] or list(years)
    yearly = [np.nanmean(np.where(g.year[None, :] == y, monthly, np.nan), axis=1) for y in full]
    level = np.nanmax(np.stack(yearly), axis=0)
    anytime = np.nanmax(np.stack([np.nanmean(np.where(g.year[None, :] == y, monthly, np.nan), axis=1) for y in years]), axis=0)
    level = np.nan_to_num(np.where(np.isnan(level), anytime, level))
    quota_ok = level * 12 * confounders.quota_factors(g, rng)
    violations.tight_over_permit_quota(g, rng, monthly, m, quota_ok)
    step = np.where(quota_ok > 20000, 1000, 100)
    return np.maximum(np.ceil(quota_ok / step) * step, 100)  # rounded up: a quota is never below its basis


def _permit_frame(g, line, tag, uscc, holder, source, purpose, quota, vf, vt, status, wells, division):
    return pd.DataFrame(
        {
            "line": line,
            "tag": tag,
            "uscc": uscc,
            "holder_name": holder,
            "source": source,
            "purpose": purpose,
            "annual_quota_m3": quota,
            "valid_from": vf,
            "valid_to": vt,
            "status": status,
            "wells": wells,
            "division": division,
        }
    )


def _line_permits(g: CityState, rng, quota: np.ndarray) -> list[pd.DataFrame]:
    """Each line's chain: an old permit (before the window, for some), the current one, the renewal."""
    L, years, to1 = len(g.line_e), g.line_years, g.line_to1
    from1 = to1 - (years * 365).astype("timedelta64[D]") + np.timedelta64(1, "D")
    to2 = to1 + (years * 365).astype("timedelta64[D]")
    status1 = np.where(
        g.line_revoked, "revoked", np.where(g.line_lapsed & (rng.random(L) < 0.6), "cancelled", "valid")
    )
    e = g.line_e
    holder = np.where(rng.random(L) < 0.1, g.old_name[e], g.name[e]).astype(object)
    holder[rng.random(L) < 0.04] = None
    divisions = g.district_codes()[g.dist[e]]
    h, r = g.line_history, g.line_renewed
    rows = [
        (
            "old",
            np.flatnonzero(h),
            from1[h] - (years[h] * 365).astype("timedelta64[D]"),
            from1[h] - np.timedelta64(1, "D"),
            np.where(rng.random(h.sum()) < 0.3, "cancelled", "valid"),
            quota[h] * rng.uniform(0.6, 1.0, h.sum()),
        ),
        ("cur", np.arange(L), from1, to1, status1, quota),
    ]
    rows.append(
        (
            "new",
            np.flatnonzero(r),
            renewal_start(g)[r],
            to2[r],
            np.full(r.sum(), "valid"),
            quota[r] * rng.uniform(1.0, 1.15, r.sum()),
        )
    )
    return [
        _permit_frame(
            g, li, tag, g.uscc[e[li]], holder[li], g.line_src[li], g.line_purpose[li],
            np.maximum(round_to(q, 100), 100), vf, vt, st, g.line_wells[li], divisions[li],
        )
        for tag, li, vf, vt, st, q in rows
    ]  # fmt: skip


def _dewatering_permits(g: CityState, rng) -> pd.DataFrame:
    """Dewatering permits of legal works: from construction start for the works' term of one to three years (the
    pit is pumped for the first months of it; the permit runs on). The term is drawn from its own stream."""
    D, L = len(g.dw_e), len(g.line_e)
    term = (365 * g.rng("dewatering_terms").integers(1, 4, D) - 1).astype("timedelta64[D]")
    return _permit_frame(
        g, L + np.arange(D), "dw", g.uscc[g.dw_e], g.name[g.dw_e].astype(object), "groundwater", "dewatering",
        g.dw_quota, g.dw_from, g.dw_from + term, "valid", rng.integers(2, 9, D),
        g.district_codes()[g.dist[g.dw_e]],
    )  # fmt: skip


def _past_permits(g: CityState, rng, first_line: int) -> pd.DataFrame:
    """Permits of the past: firms that stopped abstracting (and some unpermitted abstractors who had one)."""
    n = g.cfg.entities
    honest = g.active.any(1) & (g.self_share == 0) & (rng.random(n) < 0.03)
    pe = np.flatnonzero(honest | violations.past_permit_of_unpermitted(g, rng))
    p_to = violations.past_permit_end_limit(g, pe) - rng.integers(20, 1500, len(pe)).astype("timedelta64[D]")
    quota = np.maximum(round_to(g.base[pe] * 12 * rng.uniform(0.3, 0.9, len(pe)), 100), 100)
    return _permit_frame(
        g, first_line + np.arange(len(pe)), "past", g.uscc[pe], g.name[pe].astype(object), "groundwater",
        purpose_of(g.code[pe]), quota, p_to - np.timedelta64(5 * 365, "D"), p_to,
        pick(rng, ["cancelled", "valid", "revoked"], len(pe), [0.5, 0.4, 0.1]), np.ones(len(pe), int),
        g.district_codes()[g.dist[pe]],
    )  # fmt: skip


def meters(g: CityState, rng, permits: pd.DataFrame) -> None:
    """One meter per well or intake, monthly totals; a replaced meter leaves a gap and returns under a new id."""
    M, L, D = g.M, len(g.line_e), len(g.dw_e)
    m = np.arange(M)[None, :]
    cur_id, new_id = _permit_ids_per_line(g, permits)
    renew_m = g.month_of(renewal_start(g))
    line_vol = np.concatenate([g.metered, g.dw_pumped]) if D else g.metered
    legal = line_activity(g) | (g.metered > 0)
    line_act = np.concatenate([legal, g.dw_pumped > 0]) if D else legal
    wells = np.concatenate([g.line_wells, np.ones(D, int)])
    line_of = np.repeat(np.arange(L + D), wells)
    K = len(line_of)
    w = rng.gamma(2.0, 1.0, K)
    share = w / np.bincount(line_of, w, minlength=L + D)[line_of]
    vol = line_vol[line_of] * share[:, None] * np.exp(rng.normal(0, 0.05, (K, M)))
    act = line_act[line_of] & g.billed[np.concatenate([g.line_e, g.dw_e])[line_of]]
    online = rng.random(K) < np.where(line_vol[line_of].mean(1) > 3000, 0.85, 0.3)
    replaced = rng.random(K) < g.cfg.meter_replacement_share
    gap_at = rng.integers(2, M - 4, K)
    gap_len = rng.integers(1, 4, K)
    vol = vol * confounders.meter_drift(g, rng, K, replaced, gap_at + gap_len)
    vol = np.where(online[:, None], np.round(vol, 1), np.round(vol))
    act &= ~(replaced[:, None] & (m >= gap_at[:, None]) & (m < (gap_at + gap_len)[:, None]))
    # months whose data never reached the table (a transmission outage, a manual reading not entered): the meter
    # recorded them, so the holder's tax declaration still counts them
    lost = confounders.lost_bills(g, g.rng("meter_gaps"), act, g.cfg.confounders.meter_gap)
    g.conf_meter_gap = lost
    recorded_act = act.copy()
    act &= ~lost
    meter_key = ids.key_for(g.cfg.seed, "meter")
    meter_no = (10**7 + ids.permute(g.numbers("meter", 2 * K), NUMBER_ROOM["meter"], meter_key)).astype(str)
    ki, mi = np.nonzero(act)
    after_gap = replaced[ki] & (mi >= gap_at[ki] + gap_len[ki])
    meter_id = np.where(after_gap, np.char.add("JL", meter_no[K + ki]), np.char.add("JL", meter_no[ki]))
    li = line_of[ki]
    dw_ids = permits.loc[permits["tag"] == "dw"].sort_values("line")["permit_id"].to_numpy()
    lic = np.minimum(li, max(L - 1, 0))
    permit_id = np.where(mi >= renew_m[lic] if L else False, new_id[lic] if L else "", cur_id[lic] if L else "")
    if D:
        permit_id = np.where(li >= L, dw_ids[np.maximum(li - L, 0)], permit_id)
    g.tables["abstraction"] = pd.DataFrame(
        {
            "permit_id": permit_id,
            "meter_id": meter_id,
            "month": g.month_text[mi],
            "volume_m3": vol[ki, mi],
            "reading": np.where(online[ki], "online", "manual"),
        }
    )
    # what each line's meters recorded, for the tax declarations
    g.recorded = np.zeros((L + D, M))
    ri, rm = np.nonzero(recorded_act)
    np.add.at(g.recorded, (line_of[ri], rm), vol[ri, rm])


def _permit_ids_per_line(g: CityState, permits: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each line's current permit id and its renewal's id (the current one where not renewed)."""
    L = len(g.line_e)
    ids_of = permits.set_index(["tag", "line"])["permit_id"]
    cur_id = ids_of.loc["cur"].reindex(np.arange(L)).to_numpy().astype(str)
    if not g.line_renewed.any():
        return cur_id, cur_id
    new_id = ids_of.loc["new"].reindex(np.arange(L)).fillna(pd.Series(cur_id)).to_numpy().astype(str)
    return cur_id, new_id
