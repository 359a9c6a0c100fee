"""Stage 8, field inspections (水行政服务官核查) and the generator's truth (evaluation only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth.arrays import cat, fmt_dates
from synth.state import CityState


def inspections(g: CityState) -> None:
    """Officers went where an old rule pointed (high discharge/supply ratio, big users), plus tip-offs."""
    cfg, rng, n = g.cfg, g.rng("inspections"), g.cfg.entities
    count = cfg.inspections if cfg.inspections is not None else int(np.clip(round(0.03 * n), 30, 1500))
    weight = _visit_weight(g)
    tip = rng.random(n) < 0.1
    live = weight > 0
    weight = np.where(live & tip, weight + np.exp(6 * 0.5), weight)
    who = rng.choice(n, size=min(count, int((weight > 0).sum())), replace=False, p=weight / weight.sum())
    again = who[rng.random(len(who)) < 0.1]
    who = np.concatenate([who, again])
    N = len(who)
    first_day = g.end - np.timedelta64(730, "D")
    day = first_day + rng.integers(0, 730, N).astype("timedelta64[D]")
    day_m = g.month_of(day)
    found = g.violator[who] & (day_m >= g.since[who]) & (rng.random(N) < 0.85)
    gone = ~np.isnat(g.dereg[who]) & (g.dereg[who] < day)
    unreachable = gone | (rng.random(N) < 0.05)
    outcome = np.where(unreachable, "unreachable", np.where(found, "violation", "no_violation"))
    vtype = np.where(outcome == "violation", g.vtype[who], None).astype(object)
    order = np.argsort(day, kind="stable")
    day, who, outcome, vtype = day[order], who[order], outcome[order], vtype[order]
    officer = cat("WS", g.district_codes()[g.dist[who]], "-", np.char.zfill(rng.integers(1, 9, N).astype(str), 2))
    ids = cat("HC", np.char.replace(fmt_dates(day).astype(str), "-", ""), np.char.zfill(np.arange(N).astype(str), 4))
    g.tables["inspections"] = pd.DataFrame(
        {
            "inspection_id": ids,
            "uscc": g.uscc[who],
            "inspected_on": fmt_dates(day),
            "officer_id": officer,
            "outcome": outcome,
            "violation_type": vtype,
        }
    )


def _visit_weight(g: CityState) -> np.ndarray:
    """The old rule's pull: discharge/supply ratio rank and size rank, for live entities."""
    n = g.cfg.entities
    dis, sup = np.zeros(n), np.zeros(n)
    for source, target in (("supply", sup), ("discharge", dis)):
        owner = g.acc[source][0]["owner"].to_numpy()
        ent = owner >= 0
        np.add.at(target, owner[ent], g.acc_values[source][ent].sum(1))
    ratio = np.where(sup > 0, dis / np.maximum(sup, 1), np.where(dis > 0, 3.0, 0.0))
    score = 0.6 * pd.Series(ratio).rank(pct=True).to_numpy() + 0.4 * pd.Series(g.use.sum(1)).rank(pct=True).to_numpy()
    return np.where(g.active.any(1), np.exp(6 * score), 0.0)


def truth(g: CityState) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """truth.csv (violators), link_truth.csv (who is behind each account) and the park members."""
    v = np.flatnonzero(g.violator)
    truth = pd.DataFrame(
        {"uscc": g.uscc[v], "violation_type": g.vtype[v].astype(str), "since_month": g.month_text[g.since[v]]}
    )
    links, members = [], []
    for source in ("supply", "discharge"):
        frame = g.acc[source][0]
        mine = _park_members(g, frame, source)
        owner = frame["owner"].to_numpy()
        codes = np.where(owner >= 0, g.uscc[np.maximum(owner, 0)], "").astype(object)
        joined = mine.groupby("account_id", sort=False)["uscc"].agg(";".join)
        park = (frame["kind"] == "park").to_numpy()
        codes[park] = frame.loc[park, "account_id"].map(joined).fillna("").to_numpy()
        links.append(
            pd.DataFrame(
                {
                    "source": source,
                    "account_id": frame["account_id"],
                    "uscc": codes,
                    "shared": np.where(park, "true", "false"),
                }
            )
        )
        members.append(mine)
    return (
        truth.sort_values("uscc").reset_index(drop=True),
        pd.concat(links, ignore_index=True),
        pd.concat(members, ignore_index=True),
    )


def _park_members(g: CityState, frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """source, account_id, uscc of every firm behind a park account (not those the sewer operator bills alone)."""
    parks = frame[frame["kind"] == "park"]
    account = pd.Series(parks["account_id"].to_numpy(), index=parks["park"].to_numpy()).reindex(g.park_id).to_numpy()
    has = pd.notna(account)
    if source == "discharge":
        has &= ~g.park_own_discharge[g.park_e]
    return pd.DataFrame({"source": source, "account_id": account[has].astype(str), "uscc": g.uscc[g.park_e[has]]})
