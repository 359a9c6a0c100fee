"""Monthly profiles and snapshots over partitions of entities, with the city's peer statistics.

Profiles are per entity except the industry peer z-scores, which compare an entity with every
entity of its industry in the month. A partitioned run therefore takes three steps, each calling
the definitions of ``features.profiles`` / ``features.compliance`` / ``features.snapshot``:

1. ``profile_partition``: ``build_profiles`` on the partition (with the city's first month), and the
   partition's peer observations (``peer_values``: what each z-score compares);
2. ``peer_part_statistics``: ``compliance.peer_statistics`` of all observations of a set of (group, month) cells;
3. ``finish_partition``: the z-scores of the partition's rows against the city's statistics
   (``compliance.peer_z_from``), then ``entity_snapshot`` at as-of and at the backtest cut-offs.

Run unpartitioned, the same functions give the same numbers (``tests/test_engine.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.compliance import combine_peer_z, peer_statistics, peer_z_from
from features.profile_series import month_no
from features.profiles import PEER_LEVELS, build_profiles, entity_snapshot, peer_groups, peer_values

# Parts of the peer observations computed together. A statistic is per (group, month), so a part holds whole
# months (every group of them; a month of a 250,000-entity city is 250,000 rows of a few numbers).
PEER_PARTS = 16


def peer_codes(industry_codes: pd.Series) -> dict[str, int]:
    """City-wide integer code of every peer group label (industry classes and section letters)."""
    groups = peer_groups(pd.Series(industry_codes).drop_duplicates())
    labels = sorted({g for level in PEER_LEVELS for g in groups[level] if g != ""})
    return {label: i for i, label in enumerate(labels)}


def _entity_groups(profiles: pd.DataFrame, entities: pd.DataFrame, codes: dict[str, int]) -> dict[str, np.ndarray]:
    """Each profile row's peer group code per level (-1: no group), worked out once per entity."""
    industry = entities.drop_duplicates("uscc").set_index("uscc")["industry_code"]
    rows, uscc = pd.factorize(profiles["uscc"])
    groups = peer_groups(pd.Series(uscc).map(industry).astype("str"))
    return {level: np.array([codes.get(g, -1) for g in groups[level]], dtype="int64")[rows] for level in PEER_LEVELS}


def peer_observation_rows(profiles: pd.DataFrame, entities: pd.DataFrame, codes: dict[str, int], bucket: int) -> pd.DataFrame:
    """One row per profile row: its month, its group per level (``group_<level>``) and the value each peer
    z-score compares (``x_<series>``)."""
    values = peer_values(profiles["active"].to_numpy() > 0, profiles)
    groups = _entity_groups(profiles, entities, codes)
    month = month_no(profiles["month"]).to_numpy(dtype="int64")
    frame = pd.DataFrame({"bucket": np.int32(bucket), "row": np.arange(len(month), dtype="int64"), "month": month,
                          "part": (month % PEER_PARTS).astype("int32")})
    for level in PEER_LEVELS:
        frame[f"group_{level}"] = groups[level]
    for series, x in values.items():
        frame[f"x_{series}"] = x
    return frame


def peer_part_statistics(rows: pd.DataFrame) -> pd.DataFrame:
    """``peer_statistics`` per (series, level) of the observations of some months; rows are taken in the city's
    order (partition, then row) so that sums add up in the same order however the rows came."""
    rows = rows.iloc[np.lexsort((rows["row"].to_numpy(), rows["bucket"].to_numpy()))]
    out = []
    series_names = sorted(c[2:] for c in rows.columns if c.startswith("x_"))
    for series in series_names:
        for level in sorted(PEER_LEVELS):
            obs = pd.DataFrame({"group": rows[f"group_{level}"].to_numpy(), "month": rows["month"].to_numpy(),
                                "x": rows[f"x_{series}"].to_numpy()})
            out.append(peer_statistics(obs).assign(series=series, level=level))
    if not out:
        return pd.DataFrame(columns=["series", "level", "group", "month", "median", "mad", "mean_ad", "n"])
    return pd.concat(out, ignore_index=True)


def apply_peer_statistics(profiles: pd.DataFrame, entities: pd.DataFrame, codes: dict[str, int], stats: pd.DataFrame) -> pd.DataFrame:
    """The profile rows with their peer z-score columns scored against the city's ``stats``."""
    values = peer_values(profiles["active"].to_numpy() > 0, profiles)
    groups = _entity_groups(profiles, entities, codes)
    month = month_no(profiles["month"]).to_numpy(dtype="int64")
    out = profiles.copy(deep=False)  # copy-on-write: the new columns do not reach the caller's frame
    for series, x in values.items():
        scored = []
        for level in PEER_LEVELS:
            obs = pd.DataFrame({"group": groups[level], "month": month, "x": x})
            s = stats[(stats["series"] == series) & (stats["level"] == level)]
            scored.append(peer_z_from(obs, s[["group", "month", "median", "mad", "mean_ad", "n"]]))
        (z_class, n_class), (z_section, n_section) = scored
        out[series] = combine_peer_z(z_class, n_class, z_section, n_section, x)
    return out


def profile_partition(tables: dict[str, pd.DataFrame], links: pd.DataFrame, ctx: dict) -> dict[str, pd.DataFrame]:
    """Step 1 on one partition: its profiles (peer z-scores still empty) and peer observations."""
    profiles = build_profiles(tables, links, ctx["as_of"], first_month=ctx["first_month"], peer_scores=False)
    return {
        "profiles_staged": profiles,
        "peer_observations": peer_observation_rows(profiles, tables["entities"], ctx["peer_codes"], ctx["bucket"]),
    }


def whole_city_partition(tables: dict[str, pd.DataFrame], links: pd.DataFrame, ctx: dict) -> dict[str, pd.DataFrame]:
    """A city that is one partition: its own peer statistics are the city's, so steps 1-3 are one."""
    profiles = build_profiles(tables, links, ctx["as_of"], first_month=ctx["first_month"])
    return snapshots(profiles, tables, ctx)


def snapshots(profiles: pd.DataFrame, tables: dict[str, pd.DataFrame], ctx: dict) -> dict[str, pd.DataFrame]:
    """The final profiles and the snapshots at as-of and at each backtest cut-off."""
    out = {"profiles": profiles, "snapshot": entity_snapshot(profiles, tables, ctx["as_of"]).reset_index()}
    for cut in ctx.get("cutoffs", ()):
        out[f"snapshot_{pd.Timestamp(cut):%Y-%m-%d}"] = entity_snapshot(profiles, tables, cut).reset_index()
    return out


def finish_partition(tables: dict[str, pd.DataFrame], links: pd.DataFrame, ctx: dict) -> dict[str, pd.DataFrame]:
    """Step 3 on one partition (its step-1 profiles in ``tables["profiles_staged"]``): city-wide peer
    z-scores, the snapshot at as-of and at each backtest cut-off."""
    staged = tables["profiles_staged"]
    profiles = apply_peer_statistics(staged, tables["entities"], ctx["peer_codes"], ctx["peer_stats"])
    return snapshots(profiles, tables, ctx)
