"""The officers' queue: mostly the model's top picks, plus a random share from where it is not looking.

Verdicts are the only labels the next model gets. A queue made only of top picks teaches the model
nothing about what it ranks low, so a share of each district's capacity is drawn at random from the
rest, stratified by industry section so that every kind of business keeps being visited. Each lead
keeps the probability with which it entered the queue; exported with its verdict it becomes an
inverse-propensity weight. Exploratory leads are shuffled into the queue so that their position does
not give them away to officers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

UNKNOWN = "未知"


def _stratum(industry_code: pd.Series) -> pd.Series:
    """Industry section letter: fine enough to spread visits, coarse enough that strata are not tiny."""
    return industry_code.astype("str").str.strip().str[:1].replace("", UNKNOWN).fillna(UNKNOWN)


def _largest_remainder(pool: pd.DataFrame, explore: pd.Series) -> pd.Series:
    """Exploration slots per (district, stratum), proportional to stratum size, summing to the district's."""
    sizes = pool.groupby(["district", "stratum"], sort=True).size().rename("size").reset_index()
    pool_size = sizes.groupby("district")["size"].transform("sum")
    target = sizes["district"].map(explore).to_numpy(dtype=float) * sizes["size"] / pool_size
    base = np.floor(target)
    left = sizes["district"].map(explore) - base.groupby(sizes["district"]).transform("sum")
    frac_rank = (target - base).groupby(sizes["district"]).rank(method="first", ascending=False)
    alloc = base + (frac_rank <= left).astype(float)
    alloc = np.minimum(alloc, sizes["size"])
    return pd.Series(alloc.to_numpy(dtype=int), index=pd.MultiIndex.from_frame(sizes[["district", "stratum"]]))


def _draw_exploration(df: pd.DataFrame, top: np.ndarray, crowded: pd.Series, explore: np.ndarray,
                      rng: np.random.Generator) -> None:
    """Sets ``queue_probability`` and ``exploratory`` of the rows below each crowded district's top picks:
    ``explore`` slots per district, allocated to industry sections by size, drawn without replacement."""
    df["queue_probability"] = np.where(top, 1.0, 0.0)
    df["exploratory"] = False
    pool_mask = ~top & crowded & (explore > 0)
    if not pool_mask.any():
        return
    pool = df.loc[pool_mask, ["district", "stratum"]].copy()
    per_district_explore = pd.Series(explore[pool_mask.to_numpy()], index=pool["district"]).groupby(level=0).first()
    alloc = _largest_remainder(pool, per_district_explore)
    slots = alloc.reindex(pd.MultiIndex.from_frame(pool[["district", "stratum"]])).to_numpy()
    sizes = pool.groupby(["district", "stratum"])["district"].transform("size").to_numpy()
    pool["u"] = rng.random(len(pool))
    order_in_stratum = pool.groupby(["district", "stratum"])["u"].rank(method="first").to_numpy()
    df.loc[pool_mask, "queue_probability"] = slots / sizes
    df.loc[pool_mask, "exploratory"] = order_in_stratum <= slots


def _positions(queued: pd.DataFrame, exploit: pd.Series, within: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    """Exploratory leads take random places among the top picks, so the order does not reveal them."""
    n_exploit = exploit[queued.index].to_numpy()
    queued["_key"] = np.where(queued["exploratory"], rng.uniform(0, np.maximum(n_exploit, 1)), within[queued.index])
    queued = queued.sort_values(["district", "_key", "rank"], kind="stable")
    queued["queue_position"] = queued.groupby("district").cumcount() + 1
    queued["exploratory"] = queued["exploratory"].astype(bool)
    return queued


def build_queue(
    leads: pd.DataFrame,
    capacity_per_district: int | Mapping[str, int],
    exploration_share: float = 0.10,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """The queue of each district: rows of ``leads`` that enter it, with ``queue_probability``,
    ``exploratory`` and ``queue_position`` (1 = first in the district's queue).

    ``leads`` needs ``uscc``, ``district``, ``industry_code`` and ``rank`` (1 = highest risk).
    Per district of n entities and capacity k: if n <= k every entity enters with probability 1;
    otherwise the top k - round(k * share) by rank enter with probability 1 and round(k * share)
    are drawn without replacement from the rest, allocated to industry sections in proportion to
    their size, each with probability (slots of its section / entities of its section).
    """
    if not 0 <= exploration_share <= 1:
        raise ValueError(f"exploration_share must be within [0, 1], got {exploration_share}")
    missing = {"uscc", "district", "industry_code", "rank"} - set(leads.columns)
    if missing:
        raise ValueError(f"leads lack the columns {sorted(missing)}")
    out_columns = [*leads.columns, "queue_probability", "exploratory", "queue_position"]
    df = leads.sort_values(["rank", "uscc"], kind="stable").reset_index(drop=True)
    df["district"] = df["district"].astype("str").fillna(UNKNOWN)
    if df.empty:
        return pd.DataFrame(columns=out_columns)
    df["stratum"] = _stratum(df["industry_code"])
    district_size = df.groupby("district")["uscc"].transform("size")
    if isinstance(capacity_per_district, Mapping):
        capacity = df["district"].map(capacity_per_district).fillna(0).astype(int)
    else:
        capacity = pd.Series(int(capacity_per_district), index=df.index)
    if (capacity < 0).any():
        raise ValueError("capacity_per_district must not be negative")
    crowded = district_size > capacity
    explore = np.where(crowded, np.round(capacity * exploration_share), 0).astype(int)
    exploit = np.minimum(capacity - explore, district_size)
    within = df.groupby("district").cumcount()
    top = (within < exploit).to_numpy()
    rng = np.random.default_rng(random_state)
    _draw_exploration(df, top, crowded, explore, rng)
    queued = _positions(df[top | df["exploratory"].to_numpy()].copy(), pd.Series(exploit, index=df.index), within, rng)
    return queued.sort_values(["rank", "uscc"], kind="stable").reset_index(drop=True)[out_columns]
