"""Candidate entities for the accounts that the linker has to match by name.

Two ways to find an account's top-k entities by name score in its district block:

* ``key_block``: the entities whose normalised name shares a deletion key with the
  account's (one insertion, deletion, substitution or adjacent swap apart), found by a
  hash join. It grows with the accounts, not with accounts x entities, and finds every
  name that can win a clear link (an exact name, or a fuzzy one within a typo).
* ``scan_block``: every entity of the block scored (rapidfuzz ``cdist``), quadratic in the
  block. The linker runs it only for the few accounts that the keys leave without a
  clear link (reviews, orphans, names garbled beyond one typo), so that those keep
  exactly the evidence a full scan gives them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

CITY = "__city__"  # block of accounts whose district cannot be inferred
TOP_K = 5  # name candidates per account that get the address comparison
MIN_KEY = 2  # shorter deletion keys (of 1 character) would join a name with half its district
_CELLS = 4_000_000  # account x entity scores per cdist call of a scan


def _names_once(acc: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The distinct names of the accounts, and each account's position among them: accounts of
    one name (an entity's supply and sewer accounts) are scored once."""
    first: dict = {}
    of = np.fromiter((first.setdefault(v, len(first)) for v in acc["core"].tolist()), dtype=np.int64, count=len(acc))
    return list(first), of


def _per_account(acc: pd.DataFrame, of: np.ndarray, a: np.ndarray, ent_rows: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    top = pd.DataFrame({"a": a, "ent": ent_rows, "name_score": score.astype(np.float64)})
    rows = pd.DataFrame({"acc": acc.index.to_numpy(), "a": of})
    return rows.merge(top, on="a")[["acc", "ent", "name_score"]]


def deletion_keys(names: list[str]) -> tuple[list[str], np.ndarray]:
    """Each name, and each name with one character deleted (keys of MIN_KEY characters or more),
    with the position of the name it came from. Two names share a key exactly when they are at
    most one insertion, deletion, substitution or adjacent swap apart (Indel distance <= 2)."""
    keys: list[str] = []
    owner: list[int] = []
    for i, name in enumerate(names):
        found = {name}
        if len(name) > MIN_KEY:
            found.update(name[:j] + name[j + 1 :] for j in range(len(name)))
        keys.extend(found)
        owner.extend([i] * len(found))
    return keys, np.asarray(owner, dtype=np.int64)


def key_block(acc: pd.DataFrame, ent: pd.DataFrame, k: int = TOP_K) -> pd.DataFrame:
    """(acc, ent, name_score): the top-k entities (index of ``ent``) by name score of every account
    of one block among the entities that share a deletion key with it (ties: the lower row)."""
    names, of = _names_once(acc)
    choices = ent["core"].to_numpy(dtype=object)
    a_keys, a_of = deletion_keys(names)
    e_keys, e_of = deletion_keys(choices.tolist())
    pairs = pd.DataFrame({"key": a_keys, "a": a_of}).merge(pd.DataFrame({"key": e_keys, "e": e_of}), on="key")
    pairs = pairs[["a", "e"]].drop_duplicates()
    a, e = pairs["a"].to_numpy(), pairs["e"].to_numpy()
    score = np.empty(0, np.uint8)
    if len(a):
        score = process.cpdist([names[i] for i in a], choices[e].tolist(), scorer=fuzz.ratio, dtype=np.uint8, workers=2)
    order = np.lexsort((e, -score.astype(np.int16), a))
    a, e, score = a[order], e[order], score[order]
    keep = (np.arange(len(a)) - np.searchsorted(a, a)) < k  # rank within the name's candidates
    return _per_account(acc, of, a[keep], ent.index.to_numpy()[e[keep]], score[keep])


def scan_block(acc: pd.DataFrame, ent: pd.DataFrame, k: int = TOP_K) -> pd.DataFrame:
    """(acc, ent, name_score): the top-k entities by name score among every entity of the block."""
    k = min(k, len(ent))
    names, of = _names_once(acc)
    idx = np.empty((len(names), k), dtype=np.int64)
    score = np.empty((len(names), k), dtype=np.uint8)
    choices = ent["core"].tolist()
    rows = max(16, _CELLS // max(len(ent), 1))  # score matrix and partition indices stay ~tens of MB
    for start in range(0, len(names), rows):
        queries = names[start : start + rows]
        sim = process.cdist(queries, choices, scorer=fuzz.ratio, dtype=np.uint8, workers=2)
        top = np.argpartition(sim, -k, axis=1)[:, -k:] if k < sim.shape[1] else np.tile(np.arange(k), (len(queries), 1))
        idx[start : start + len(queries)] = top
        score[start : start + len(queries)] = np.take_along_axis(sim, top, axis=1)
    a = np.repeat(np.arange(len(names)), k)
    return _per_account(acc, of, a, ent.index.to_numpy()[idx.ravel()], score.ravel())


def exact_and_door(acc: pd.DataFrame, ent: pd.DataFrame, cand: pd.DataFrame) -> pd.DataFrame:
    """Candidates beyond the block's top-k: the exact normalised name anywhere in the city when the
    block has none (a branch whose entity is registered in another district), and every entity at
    the account's door, however its name scores (a misspelt name at the right door must compete
    even when many similar names elsewhere fill the top-k)."""
    has_exact = cand.loc[cand["name_score"] >= 100, "acc"].unique()
    rest = acc[~acc.index.isin(has_exact)]
    exact = rest.reset_index(names="acc").merge(ent.reset_index(names="ent")[["ent", "core"]], on="core")[["acc", "ent"]]
    exact["name_score"] = 100.0
    keys = ["street", "number"]
    a_door = acc.dropna(subset=keys).reset_index(names="acc")[["acc", "core", *keys]]
    e_door = ent.dropna(subset=keys).reset_index(names="ent")[["ent", "core", *keys]]
    door = a_door.merge(e_door, on=keys, suffixes=("_a", "_e"))
    door["name_score"] = process.cpdist(door["core_a"].tolist(), door["core_e"].tolist(), scorer=fuzz.ratio, workers=2) if len(door) else []
    return pd.concat([exact, door[["acc", "ent", "name_score"]]], ignore_index=True)


def candidate_pairs(acc: pd.DataFrame, ent: pd.DataFrame, progress=None, scan: bool = False) -> pd.DataFrame:
    """Account x candidate-entity pairs (acc, ent, name_score), blocked by district: the block's
    top-k by deletion keys (or, with ``scan``, by scoring the whole block), the exact name
    elsewhere and the entities at the account's door."""
    pairs = [pd.DataFrame({"acc": pd.Series(dtype="int64"), "ent": pd.Series(dtype="int64"), "name_score": pd.Series(dtype="float64")})]
    blocks = acc.groupby("block", sort=True)
    iterator = progress(blocks, desc="linkage blocks", total=blocks.ngroups) if progress else blocks
    for block, group in iterator:
        pool = ent if block == CITY else ent[ent["district"] == block]
        if not len(pool):
            pool = ent
        pairs.append((scan_block if scan else key_block)(group, pool))
    cand = pd.concat(pairs, ignore_index=True)
    cand = pd.concat([cand, exact_and_door(acc, ent, cand)], ignore_index=True)
    return cand.drop_duplicates(["acc", "ent"])
