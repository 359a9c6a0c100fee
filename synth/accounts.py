"""Stage 5, the water company's and the sewer operator's accounts: who has one, parks, orphans, their volumes.

An account belongs to an entity (its own account, or a second one for a branch
site), to an industrial park (several small firms behind one meter), or to no
registered entity at all (residential compounds, public bodies).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth import clerks, confounders, ids, violations
from synth.arrays import cat, chars, pick
from synth.permits import lapsed_or_revoked
from synth.state import NUMBER_ROOM, CityState
from synth.vocab import ORPHAN_PUBLIC, ORPHAN_RESIDENTIAL, ROADS, SEASONS, TRADE_CHARS


def accounts(g: CityState) -> None:
    """Supply and discharge accounts: own, second, industrial-park (shared) and orphan accounts.

    Who has a sewer account depends on industry, size and water source, never on violation."""
    cfg, rng, n = g.cfg, g.rng("accounts"), g.cfg.entities
    live = g.active.any(axis=1)
    in_park = _parks(g, rng, live)
    p_sup = np.where(np.char.startswith(g.code, "A"), 0.45, cfg.supply_share)
    has_sup = live & ~in_park & (rng.random(n) < p_sup)
    needs_supply = violations.needs_supply_account(g) | lapsed_or_revoked(g) | (g.self_share > 0)
    has_sup |= live & ~in_park & needs_supply
    has_dis = live & ~in_park & (rng.random(n) < _discharge_account_chance(g))
    has_dis |= live & (g.self_share > 0) & (rng.random(n) < 0.6)  # permit holders hold a discharge permit
    # a sewer account needs water from somewhere: the mains, a permit, or a dewatering pit
    has_dis &= has_sup | (g.self_share > 0)
    has_dis |= live & violations.pumps_into_the_sewer(g)
    own_dis = confounders.park_members_with_own_discharge(g, rng)
    has_dis |= own_dis
    g.park_own_discharge = own_dis
    second = has_sup & (rng.random(n) < cfg.second_account_share)
    split = np.where(second, rng.uniform(0.55, 0.85, n), 1.0)
    orphans = _orphans(g, rng)
    parks = _park_accounts(g, rng, own_dis)
    g.acc = {
        "supply": account_frame(g, rng, "supply", has_sup, second, split, orphans, parks),
        "discharge": account_frame(
            g, rng, "discharge", has_dis, np.zeros(n, bool), np.ones(n), orphans, parks, orphan_factor=0.85
        ),
    }


def _discharge_account_chance(g: CityState) -> np.ndarray:
    """Industry and size: factories and large users are on a metered or estimated sewer account more often."""
    industrial = np.char.startswith(g.code, "C") | np.char.startswith(g.code, "D")
    size = np.clip((g.base / 100.0) ** 0.15, 0.6, 1.4)
    chance = g.cfg.discharge_share * np.where(industrial, 1.6, 0.8) * np.where(g.coef < 0.1, 0.2, 1.0) * size
    return np.clip(chance, 0, 0.95)


def _parks(g: CityState, rng, live: np.ndarray) -> np.ndarray:
    """Groups of 2-6 small factories of one district behind one account; returns who is in a park."""
    n = g.cfg.entities
    small_factory = live & np.char.startswith(g.code, "C") & (g.emp < 60) & ~g.violator
    small_factory &= ~np.isin(np.arange(n), g.holder_e)
    in_park = small_factory & (rng.random(n) < g.cfg.park_share / 0.35)
    park_e = np.flatnonzero(in_park)
    park_e = park_e[np.lexsort((rng.random(len(park_e)), g.dist[park_e]))]
    sizes = rng.integers(2, 7, max(1, len(park_e)))
    park_id = np.repeat(np.arange(len(sizes)), sizes)[: len(park_e)]
    brk = np.r_[True, g.dist[park_e][1:] != g.dist[park_e][:-1]]  # a park never spans districts
    park_id = np.cumsum(brk | np.r_[True, park_id[1:] != park_id[:-1]]) - 1
    single = np.bincount(park_id)[park_id] < 2 if len(park_e) else np.zeros(0, bool)
    in_park[park_e[single]] = False  # a lone firm rents on its own account
    park_e = park_e[~single]
    park_id = np.unique(park_id[~single], return_inverse=True)[1] if len(park_e) else park_id[:0]
    g.park_e, g.park_id = park_e, park_id
    g.P = int(park_id.max() + 1) if len(park_e) else 0
    return in_park


def _orphans(g: CityState, rng) -> dict:
    """Accounts of no registered entity: residential compounds and public bodies."""
    cfg = g.cfg
    O = int(round(cfg.orphan_account_share * cfg.entities))
    o_dist = rng.choice(len(cfg.districts), O, p=np.asarray(cfg.district_weights) / sum(cfg.district_weights))
    residential = rng.random(O) < 0.6
    dnames = np.array([d[0] for d in cfg.districts])
    name = np.where(
        residential,
        cat(
            cat(*chars(rng, TRADE_CHARS, (2, O))),
            pick(rng, ORPHAN_RESIDENTIAL, O),
            np.where(rng.random(O) < 0.3, "物业", ""),
        ),
        cat(dnames[o_dist], pick(rng, ORPHAN_PUBLIC, O)),
    )
    addr = cat(
        np.where(rng.random(O) < 0.5, dnames[o_dist], ""),
        pick(rng, ROADS, O),
        rng.integers(1, 1500, O).astype(str),
        "号",
    )
    base = np.where(
        residential, np.exp(rng.normal(np.log(3000), 0.8, O)), np.exp(rng.normal(np.log(600), 1.0, O))
    )
    season = np.where(
        residential[:, None],
        np.array(SEASONS["residential"])[g.cal][None, :],
        np.array(SEASONS["school"])[g.cal][None, :],
    )
    use = base[:, None] * season * np.exp(rng.normal(0, 0.1, (O, g.M)))
    return {"name": name, "address": addr, "use": use}


def _park_accounts(g: CityState, rng, own_dis: np.ndarray) -> dict:
    """Park accounts: names of the standard factory buildings and the members' summed use
    (discharge: only of the members the sewer operator does not bill on their own)."""
    cfg, P, park_e, park_id = g.cfg, g.P, g.park_e, g.park_id
    p_dist = g.dist[park_e][np.r_[True, park_id[1:] != park_id[:-1]]] if P else np.zeros(0, int)
    dshort = np.array([d[2] for d in cfg.districts])
    dnames = np.array([d[0] for d in cfg.districts])
    name = cat(
        dshort[p_dist],
        pick(rng, ["经济开发区", "工业园", "创业园", "中小企业孵化园"], P),
        "标准化厂房",
        rng.integers(1, 30, P).astype(str),
        "号楼",
    )
    addr = cat(
        dnames[p_dist],
        dshort[p_dist],
        "经济开发区",
        pick(rng, ROADS, P),
        rng.integers(1, 800, P).astype(str),
        "号",
    )
    sup = np.zeros((P, g.M))
    dis = np.zeros((P, g.M))
    np.add.at(sup, park_id, g.supply_use[park_e])
    np.add.at(dis, park_id, g.discharge_use[park_e] * ~own_dis[park_e][:, None])
    return {"name": name, "address": addr, "supply": sup, "discharge": dis}


def account_frame(g, rng, source, has, second, split, orphans, parks, orphan_factor=1.0):
    """One row per account: owner (entity index, -1 none), written name/address/uscc, and its (A, M) volumes."""
    own, sec = np.flatnonzero(has), np.flatnonzero(second)
    P, O = len(parks["name"]), len(orphans["name"])
    owner = np.concatenate([own, sec, np.full(P, -1), np.full(O, -1)])
    kind = np.concatenate([np.full(len(own), "own"), np.full(len(sec), "second"), np.full(P, "park"), np.full(O, "orphan")])
    A, first_park = len(owner), len(own) + len(sec)
    vol_src = g.supply_use if source == "supply" else g.discharge_use
    vol = np.zeros((A, g.M))
    vol[: len(own)] = vol_src[own] * split[own][:, None]
    vol[len(own) : first_park] = vol_src[sec] * (1 - split[sec])[:, None]
    vol[first_park : first_park + P] = parks[source]
    # orphans keep their accounts for the whole window; a few orphans exist in one source only
    vol[A - O :] = orphans["use"] * orphan_factor
    active = np.zeros((A, g.M), bool)
    active[:first_park] = g.billed[owner[:first_park]]
    active[first_park:] = True
    keep = np.ones(A, bool)
    keep[A - O :] = rng.random(O) < (0.97 if source == "supply" else 0.45)
    if source == "discharge":  # half the parks have a sewer account; none where each member has one
        keep[first_park : first_park + P] = (rng.random(P) < 0.5) & ~g.conf_park_alone
    written = clerks.written_names(g, rng, owner, kind)
    written[first_park : first_park + P] = parks["name"]
    written[A - O :] = orphans["name"]
    addr = clerks.written_addresses(g, rng, owner)
    addr[first_park : first_park + P] = parks["address"]
    addr[A - O :] = orphans["address"]
    addr[rng.random(A) < 0.03] = None
    written_uscc = clerks.written_uscc(g, rng, owner, source)
    prefix = "0" if source == "supply" else "PS"
    number = 10**7 + ids.permute(g.numbers(source, A), NUMBER_ROOM[source], ids.key_for(g.cfg.seed, source))
    frame = pd.DataFrame(
        {
            "account_id": np.char.add(prefix, number.astype(str)),
            "account_name": written,
            "address": addr,
            "uscc": written_uscc,
            "owner": owner,
            "kind": kind,
            "park": np.concatenate([np.full(first_park, -1), np.arange(P), np.full(O, -1)]),
        }
    )[keep]
    return frame.reset_index(drop=True), vol[keep], active[keep]
