"""Stage 4, project approvals and construction permits (发改, 住建): works, and the pit water dewatering pumps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth import confounders, ids, violations
from synth.arrays import cat, fmt_dates, pick
from synth.state import NUMBER_ROOM, CityState


def projects(g: CityState) -> None:
    """Project approvals; dewatering works pump groundwater into the sewer, with a permit or without."""
    cfg, rng, n = g.cfg, g.rng("projects"), g.cfg.entities
    sec = np.array([c[0] for c in g.code])
    owners_pool = np.flatnonzero(g.full_window & np.isin(sec, ["K", "E", "C"]) & ~g.violator)
    count = cfg.projects if cfg.projects is not None else max(5, int(round(0.015 * n)))
    own = (
        rng.choice(owners_pool, size=min(count, len(owners_pool)), replace=False, p=_owner_weight(sec[owners_pool]))
        if len(owners_pool)
        else np.zeros(0, int)
    )
    unp = violations.dewatering_works(g)
    owner = np.concatenate([own, unp])
    J = len(owner)
    osec = sec[owner]
    kind = np.select(
        [osec == "K", (osec == "E") & (rng.random(J) < 0.6), osec == "C"],
        ["real_estate", "infrastructure", "industrial"],
        "other",
    )
    window_days = (g.end - g.start).astype(int)
    approved = g.start - np.timedelta64(365, "D") + rng.integers(0, window_days + 365 - 60, J).astype("timedelta64[D]")
    start = approved + rng.integers(30, 300, J).astype("timedelta64[D]")
    started = (start <= g.end) & (rng.random(J) < 0.85)
    works = np.isin(kind, ["real_estate", "infrastructure"])
    dewater = rng.random(J) < np.select([works, kind == "industrial"], [0.45, 0.15], 0.08)
    is_unp = np.arange(J) >= len(own)
    violations.time_unpermitted_works(g, rng, unp, is_unp, start, approved, started, dewater)
    expected = np.round(rng.uniform(2000, 60000, J), -2)
    expected[rng.random(J) < 0.4] = np.nan
    names = _project_names(g, rng, owner, kind)
    pid = _project_ids(g, owner, kind, approved)
    uscc = g.uscc[owner].astype(object)
    uscc[(rng.random(J) < 0.03) & ~is_unp] = None
    g.tables["projects"] = pd.DataFrame(
        {
            "project_id": pid,
            "uscc": uscc,
            "project_name": names,
            "kind": kind,
            "approved_on": fmt_dates(approved),
            "construction_start_on": fmt_dates(np.where(started, start, np.datetime64("NaT"))),
            "district": g.dname[owner],
            "dewatering": dewater,
            "expected_annual_water_m3": expected,
        }
    )
    legal = np.flatnonzero(dewater & started & ~is_unp)
    by_contractor = confounders.dewatering_by_contractor(g, g.rng("dewatering_contractors"), owner[legal])
    _legal_dewatering(g, rng, legal[~by_contractor], owner, start)


def _owner_weight(sec: np.ndarray) -> np.ndarray:
    """Draw probabilities that give builders (K), utilities and civil works (E) and manufacturers (C) their
    share of a city's approvals (36 / 26 / 38 %), however many of each the registry holds."""
    share = {"K": 0.36, "E": 0.26, "C": 0.38}
    w = np.array([share[s] for s in sec]) / pd.Series(sec).map(pd.Series(sec).value_counts()).to_numpy()
    return w / w.sum()


def _project_names(g: CityState, rng, owner: np.ndarray, kind: np.ndarray) -> np.ndarray:
    J = len(owner)
    return np.select(
        [kind == "real_estate", kind == "infrastructure", kind == "industrial"],
        [
            cat(g.trade[owner], pick(rng, ["花园住宅小区项目", "家园二期项目", "商住楼项目"], J)),
            cat(g.dshort[owner], pick(rng, ["道路改造工程", "污水管网工程", "雨污分流改造工程"], J)),
            cat(g.word[owner], pick(rng, ["生产线扩建项目", "技术改造项目", "新建厂房项目"], J)),
        ],
        cat(g.trade[owner], "综合楼项目"),
    )


def _project_ids(g: CityState, owner, kind, approved) -> np.ndarray:
    """Approval codes as the investment platform issues them: year-division-industry-serial."""
    J = len(owner)
    seq = 10**5 + ids.permute(g.numbers("project", J), NUMBER_ROOM["project"], ids.key_for(g.cfg.seed, "project"))
    ind2 = np.select(
        [kind == "real_estate", kind == "infrastructure", kind == "industrial"],
        ["70-02", "48-03", "36-03"],
        "72-03",
    )
    dcode = g.district_codes()[g.dist[owner]]
    return cat(approved.astype("datetime64[Y]").astype(str), "-", dcode, "-", ind2, "-", seq.astype(str))


def _legal_dewatering(g: CityState, rng, legal: np.ndarray, owner: np.ndarray, start: np.ndarray) -> None:
    """Legal dewatering: a dewatering permit, a meter, and the pumped water in the sewer or a storm drain."""
    M = g.M
    m0 = g.month_of(start[legal])
    in_window = (m0 >= 0) & (m0 < M)
    legal, m0 = legal[in_window], m0[in_window]
    dur = rng.integers(4, 11, len(legal))
    vol = rng.uniform(2000, 20000, len(legal))
    m = np.arange(M)[None, :]
    pumped = np.where(
        (m >= m0[:, None]) & (m < (m0 + dur)[:, None]),
        vol[:, None] * np.exp(rng.normal(0, 0.15, (len(legal), M))),
        0.0,
    )
    g.dw_e = owner[legal]
    g.dw_from = start[legal]
    g.dw_quota = np.round(vol * dur * rng.uniform(1.3, 1.7, len(legal)), -2)
    g.dw_pumped = pumped
    to_sewer = ~confounders.pit_water_to_storm_drain(g, g.rng("dewatering_contractors"), len(legal))
    np.add.at(g.discharge_use, g.dw_e[to_sewer], 0.9 * pumped[to_sewer])
