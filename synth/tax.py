"""Stage 7, water-resource tax declarations (水资源税) and annual water-use plans (计划用水)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth import confounders, violations
from synth.arrays import cat, round_to
from synth.state import CityState

# yuan per m3 of groundwater by purpose; surface water pays a flat rate
GROUNDWATER_RATES = {"industrial": 2.0, "services": 4.0, "domestic": 1.0, "agriculture": 0.2, "dewatering": 1.0}
SURFACE_RATE = 0.4


def tax(g: CityState) -> None:
    """Quarterly declarations per (taxpayer, source): what the meters recorded, give or take."""
    rng = g.rng("tax")
    q = g.cal // 3
    qkey = g.year * 4 + q
    complete = pd.Series(qkey).map(pd.Series(qkey).value_counts()).to_numpy() == 3
    quarters = np.unique(qkey[complete])
    D = len(g.dw_e)
    ents = np.concatenate([g.line_e, g.dw_e])
    src = np.concatenate([g.line_src, np.full(D, "groundwater")])
    purpose = np.concatenate([g.line_purpose, np.full(D, "dewatering")])
    qsum = np.stack([g.recorded[:, qkey == k].sum(1) for k in quarters], axis=1)  # (lines, Q)
    decl = qsum * rng.uniform(0.97, 1.03, qsum.shape)
    decl = confounders.misdeclared(g, rng, ents, decl)
    qstart = np.array([np.flatnonzero(qkey == k)[0] for k in quarters])
    decl = violations.underreport_tax(g, rng, ents, decl, qstart)
    wells_e, wq = violations.declared_well_water(g, rng, quarters, qkey)
    ents = np.concatenate([ents, wells_e])
    src = np.concatenate([src, np.full(len(wells_e), "groundwater")])
    purpose = np.concatenate([purpose, np.full(len(wells_e), "industrial")])
    decl = np.concatenate([decl, wq])
    li, qi = np.nonzero(decl >= 1)
    frame = pd.DataFrame(
        {
            "uscc": g.uscc[ents[li]],
            "source": src[li],
            "purpose": purpose[li],
            "k": quarters[qi],
            "declared_m3": np.round(decl[li, qi]),
        }
    )
    frame = frame.groupby(["uscc", "k", "source"], as_index=False, sort=True).agg(
        declared_m3=("declared_m3", "sum"), purpose=("purpose", "first")
    )
    rate = np.where(frame["source"] == "groundwater", frame["purpose"].map(GROUNDWATER_RATES).to_numpy(), SURFACE_RATE)
    tax_yuan = np.round(frame["declared_m3"].to_numpy() * rate, 2)
    tax_yuan[rng.random(len(frame)) < 0.04] = np.nan
    late = rng.random(len(frame)) < 0.02
    period = cat((frame["k"] // 4).astype(str).to_numpy(), "-Q", (frame["k"] % 4 + 1).astype(str).to_numpy())
    g.tables["tax"] = pd.DataFrame(
        {
            "uscc": frame["uscc"].to_numpy(),
            "period": period,
            "source": frame["source"].to_numpy(),
            "declared_m3": frame["declared_m3"].to_numpy(),
            "tax_yuan": tax_yuan,
        }
    )[~late].reset_index(drop=True)


def plans(g: CityState) -> None:
    """Plans for permit holders and the largest users of public supply, from last year's use plus a margin."""
    rng = g.rng("plans")
    annual_supply = g.supply_use.sum(1) * 12 / g.M
    big = annual_supply >= max(np.quantile(annual_supply, 0.96), 3000)
    who = np.flatnonzero(big | (g.self_share > 0))
    years = np.unique(g.year)
    parts = []
    for k, y in enumerate(years):
        cols = g.year == (y - 1) if k > 0 else g.year == y
        level = g.use[who][:, cols].mean(1) * 12
        alive = g.active[who][:, g.year == y].any(1) & (level > 0)
        planned = np.maximum(round_to(level * rng.uniform(1.0, 1.25, len(who)), 100), 100)
        parts.append(pd.DataFrame({"uscc": g.uscc[who][alive], "year": y, "planned_m3": planned[alive]}))
    g.tables["plans"] = pd.concat(parts, ignore_index=True)
