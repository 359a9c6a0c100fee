"""Stage 2, water use: what each entity really uses per month, and where that water comes from and goes."""

from __future__ import annotations

import numpy as np

from synth import confounders, violations
from synth.permits import line_activity
from synth.state import CityState
from synth.vocab import INDUSTRIES, SEASONS


def water_use(g: CityState) -> None:
    """True monthly use (n, M): industry scale and season, growth or decline, retrofits, ramp-up of new firms."""
    rng, n, M = g.rng("water_use"), g.cfg.entities, g.M
    season = np.array([SEASONS[r[5]] for r in INDUSTRIES])[g.ind][:, g.cal]  # (n, M)
    amp = rng.uniform(0.6, 1.2, n)[:, None]
    t = (np.arange(M) / 12.0)[None, :]
    growth = rng.normal(0.0, 0.05, n)
    grow = rng.random(n) < g.cfg.growth_share
    growth[grow] = rng.uniform(0.15, 0.45, grow.sum())
    decline = ~grow & (rng.random(n) < 0.08)
    growth[decline] = rng.uniform(-0.3, -0.1, decline.sum())
    use = g.base[:, None] * season**amp * np.exp(growth[:, None] * t)
    use *= np.exp(rng.normal(0, 0.1, (n, M)))
    # legitimate efficiency drops (water-saving retrofit): a step down in all use
    g.efficiency = rng.random(n) < g.cfg.efficiency_drop_share
    step = rng.integers(4, M - 4, n)
    factor = np.where(g.efficiency, rng.uniform(0.55, 0.8, n), 1.0)
    use *= np.where(np.arange(M)[None, :] >= step[:, None], factor[:, None], 1.0)
    # new firms ramp up over their first months
    since_open = np.arange(M)[None, :] - g.reg_m[:, None]
    use *= np.clip(since_open / 4.0, 0.25, 1.0)
    use *= confounders.production_changes(g, rng)
    use *= confounders.sector_downturns(g, g.rng("downturns"))
    use *= confounders.shutdowns(g, rng)
    g.dry = confounders.dry_year(g, rng)
    g.use = np.where(g.active, use * g.dry, 0.0)


def volumes(g: CityState) -> None:
    """Split use into permitted abstraction (per line), public supply, hidden wells, and what reaches the sewer."""
    rng, n, M = g.rng("volumes"), g.cfg.entities, g.M
    m = np.arange(M)[None, :]
    after = (m >= g.since[:, None]) & g.violator[:, None]
    act = line_activity(g)
    g.reclaimed = confounders.reclaimed_water(g, rng)
    bought = g.use - g.reclaimed  # water from the mains or the permitted wells
    line_true = bought[g.line_e] * g.self_share[g.line_e][:, None] * g.line_share[:, None] * act
    supply_use = bought.copy()
    np.subtract.at(supply_use, g.line_e, line_true)
    g.supply_use = np.maximum(supply_use, 0)
    g.well = np.zeros((n, M))
    violations.plant_hidden_use(g, rng, after)
    # use the quota was sized on: before the violation, in a normal year
    g.line_quota_base = line_true / g.dry[g.line_e]
    violations.plant_over_permit(g, rng, m, line_true)
    g.line_true = line_true
    # what the meters record: tampering lowers it, the true use carries on
    g.metered = line_true.copy()
    violations.plant_tampering(g, rng, m)
    # discharge: a coefficient of all water used, noisy; dewatering water goes to the sewer too
    coef = g.coef[:, None] * confounders.evaporation_season(g)
    g.discharge_use = coef * g.use * np.exp(rng.normal(0, 0.08, (n, M)))
    violations.plant_unpermitted_dewatering(g, rng, m)
