"""Stage 6, monthly billing: the supply and discharge tables as the companies bill them.

Supply: billed volume, with the occasional month not read and billed next
month. Discharge: metered (with noise and, on combined sewers, rain water in
the wet season) or estimated (flat within a year, from billed supply or last
year's level, rounded).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth import confounders
from synth.arrays import round_to
from synth.state import CityState
from synth.vocab import RAIN_MM


def billing(g: CityState) -> None:
    rng, misreads, gaps = g.rng("billing"), g.rng("misreads"), g.rng("bill_gaps")
    bimonthly, zeros = g.rng("bimonthly"), g.rng("zero_bills")
    g.acc_values, g.conf_misread, g.conf_lost, g.conf_bimonthly, g.conf_zero_bill = {}, {}, {}, {}, {}
    for source in ("supply", "discharge"):
        frame, vol, act = g.acc[source]
        if source == "supply":
            values, measured = _supply_values(g, rng, vol), None
        else:
            values, measured = _discharge_values(g, rng, frame, vol, act)
        g.acc_values[source] = np.where(act, values, 0.0)
        share = g.cfg.confounders.bimonthly_supply if source == "supply" else g.cfg.confounders.bimonthly_discharge
        values, g.conf_bimonthly[source] = confounders.bimonthly_bills(g, bimonthly, values, act, share)
        g.conf_zero_bill[source] = confounders.zero_bills(g, zeros, values, act)
        values = np.where(g.conf_zero_bill[source], 0.0, values)
        lost = confounders.lost_bills(g, gaps, act)
        keyed = confounders.misread_bills(g, misreads, values, act & ~lost)
        g.conf_misread[source], g.conf_lost[source] = keyed != values, lost
        values = keyed
        if measured is not None:  # per row of act, in row-major order: to cells, then to the rows kept
            cells = np.zeros(act.shape, dtype=bool)
            cells[np.nonzero(act)] = measured
            measured = cells[act & ~lost]
        ai, mi = np.nonzero(act & ~lost)
        cols = {
            "account_id": frame["account_id"].to_numpy()[ai],
            "account_name": frame["account_name"].to_numpy()[ai],
            "address": frame["address"].to_numpy()[ai],
            "uscc": frame["uscc"].to_numpy()[ai],
            "month": g.month_text[mi],
            "volume_m3": values[ai, mi] if source == "discharge" else values[ai, mi].astype(np.int64),
        }
        if measured is not None:
            cols["measured"] = np.where(measured, "true", "false")
        g.tables[source] = pd.DataFrame(cols)


def _supply_values(g: CityState, rng, vol: np.ndarray) -> np.ndarray:
    """A meter read once in two months: zero, then double."""
    A = len(vol)
    catch = rng.random(A) < 0.03
    k = rng.integers(1, g.M - 1, A)
    rows = np.flatnonzero(catch)
    vol = vol.copy()
    vol[rows, k[rows] + 1] += vol[rows, k[rows]]
    vol[rows, k[rows]] = 0.0
    return np.round(vol)


def _discharge_values(g: CityState, rng, frame, vol, act) -> tuple[np.ndarray, np.ndarray]:
    cfg, A, M = g.cfg, len(vol), g.M
    base_mean = np.where(act, vol, np.nan)
    mean = np.nan_to_num(np.nanmean(np.where(act.any(1)[:, None], base_mean, 0.0), axis=1))
    small = mean < np.quantile(mean, 0.5) if A else np.zeros(0, bool)
    estimated = rng.random(A) < np.where(small, 1.4, 0.6) * cfg.estimated_discharge_share
    combined = ~estimated & (rng.random(A) < cfg.combined_sewer_share)
    # combined sewers take storm water in the wet season (June to September)
    wet = np.isin(g.cal, [5, 6, 7, 8])
    rain = np.where(wet, np.array(RAIN_MM)[g.cal] * confounders.rain_factor(g) * np.exp(rng.normal(0, 0.35, M)), 0.0)
    inflow = combined[:, None] * rng.uniform(0.3, 1.6, A)[:, None] * mean[:, None] * rain[None, :] / 100.0
    measured_vol = vol * np.exp(rng.normal(0, 0.06, (A, M))) + inflow
    owner = frame["owner"].to_numpy()
    billed = _billed_supply(g, owner)
    from_supply = confounders.estimated_from_supply(g, rng, owner, estimated) & (billed.sum(1) > 0)
    ratio = rng.choice([0.8, 0.85, 0.9], A)[:, None]
    est = np.where(from_supply[:, None], ratio * billed, _flat_estimates(g, owner, vol, act, mean))
    values = np.round(np.where(estimated[:, None], est, measured_vol), 1)
    g.acc_discharge_flags = (estimated, combined, from_supply)
    g.conf_supply_estimable = estimated & (owner >= 0) & (billed.sum(1) > 0)  # could be estimated from supply
    return values, np.repeat(~estimated, act.sum(1))


def _billed_supply(g: CityState, owner: np.ndarray) -> np.ndarray:
    """(A, M) what the water company billed the owner of each discharge account (all its supply accounts)."""
    frame, values = g.acc["supply"][0], g.acc_values["supply"]
    per_entity = np.zeros((g.cfg.entities, g.M))
    own = frame["owner"].to_numpy()
    np.add.at(per_entity, own[own >= 0], values[own >= 0])
    return per_entity[np.maximum(owner, 0)] * (owner >= 0)[:, None]


def _flat_estimates(g: CityState, owner, vol, act, mean) -> np.ndarray:
    """Flat within a year (包干), from last year's level of the owner's water use or of the metered volume."""
    basis = vol.copy()
    ent = owner >= 0
    s_use = g.supply_use[np.maximum(owner, 0)]
    basis[ent] = np.where(s_use[ent].sum(1, keepdims=True) > 0, 0.85 * s_use[ent], vol[ent])
    est = np.zeros_like(vol)
    step = np.where(mean > 2000, 100.0, 10.0)[:, None]
    years = np.unique(g.year)
    for k, y in enumerate(years):
        cols = g.year == y
        prev = g.year == (y - 1) if k > 0 else cols
        level = np.nanmean(np.where(act[:, prev], basis[:, prev], np.nan), axis=1)
        est[:, cols] = np.nan_to_num(round_to(level, step[:, 0]))[:, None]
    return est
