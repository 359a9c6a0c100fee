"""Candidate entities for the accounts that the linker has to match by name.

An account's candidates are the top-k entities of its district block by name score among
the entities whose normalised name shares a key with the account's: the name itself, the
name with one character deleted and, on the account's side, with two deleted or a garbled
place of up to three characters cut from its front. Two names one insertion, deletion,
substitution or adjacent swap apart always share a key, and so do a clerk's name with two
extra characters and the registered one. The keys are looked up by a hash join, so the work
grows with the accounts, not with accounts x entities (scoring every entity of a block was
quadratic: a 250,000-entity city did not finish linking in 13 minutes). Beyond the top-k the
linker also weighs the exact name elsewhere in the city and every entity at the account's
door, however its name scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

CITY = "__city__"  # block of accounts whose district cannot be inferred
TOP_K = 5  # name candidates per account that get the address comparison
ACCOUNT_DEPTH, ACCOUNT_STRIP = 2, 3  # an account's name may carry two extra characters, or a garbled place before it
SHARED_DOOR = 50  # entities at one local address beyond which it is not a door
MIN_KEY = 2  # shorter deletion keys (of 1 character) would join a name with half its district


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


def deletion_keys(names: list[str], depth: int = 1, strip: int = 0) -> tuple[list[str], np.ndarray]:
    """Each name, the name with up to ``depth`` characters deleted and with up to ``strip`` leading
    characters cut (keys of MIN_KEY characters or more; a cut leaves at least 4), with the position
    of the name each key came from. A name and its variants at depth 1 share a key with every name
    at most one insertion, deletion, substitution or adjacent swap away (Indel distance <= 2)."""
    keys: list[str] = []
    owner: list[int] = []
    for i, name in enumerate(names):
        found, level = {name}, {name}
        for _ in range(depth):
            level = {k[:j] + k[j + 1 :] for k in level if len(k) > MIN_KEY for j in range(len(k))}
            found |= level
        found.update(name[j:] for j in range(1, strip + 1) if len(name) - j >= 4)
        keys.extend(found)
        owner.extend([i] * len(found))
    return keys, np.asarray(owner, dtype=np.int64)


def key_block(acc: pd.DataFrame, ent: pd.DataFrame, k: int = TOP_K) -> pd.DataFrame:
    """(acc, ent, name_score): the top-k entities (index of ``ent``) by name score of every account
    of one block among the entities that share a deletion key with it (ties: the lower row)."""
    names, of = _names_once(acc)
    choices = ent["core"].to_numpy(dtype=object)
    a_keys, a_of = deletion_keys(names, ACCOUNT_DEPTH, ACCOUNT_STRIP)
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


def _at_door(acc: pd.DataFrame, ent: pd.DataFrame) -> pd.DataFrame:
    """(acc, ent, name_score) of the entities at the account's door: the same street and number, or
    the same whole local address of four characters or more (镇X村, where there is no street door;
    the linker's address evidence counts both as the door). A local address that more than
    SHARED_DOOR entities give is a zone or a town, not a door."""
    pairs = []
    a_local, e_local = acc[acc["local"].str.len() >= 4], ent[ent["local"].str.len() >= 4]
    e_local = e_local[e_local.groupby("local")["local"].transform("size") <= SHARED_DOOR]
    for keys, a, e in ((["street", "number"], acc, ent), (["local"], a_local, e_local)):
        a_door = a.dropna(subset=keys).reset_index(names="acc")[["acc", "core", *keys]]
        e_door = e.dropna(subset=keys).reset_index(names="ent")[["ent", "core", *keys]]
        pairs.append(a_door.merge(e_door, on=keys, suffixes=("_a", "_e")))
    door = pd.concat(pairs, ignore_index=True).drop_duplicates(["acc", "ent"])
    door["name_score"] = process.cpdist(door["core_a"].tolist(), door["core_e"].tolist(), scorer=fuzz.ratio, workers=2) if len(door) else []
    return door[["acc", "ent", "name_score"]]


def exact_and_door(acc: pd.DataFrame, ent: pd.DataFrame, cand: pd.DataFrame) -> pd.DataFrame:
    """Candidates beyond the block's top-k: the exact normalised name anywhere in the city when the
    block has none (a branch whose entity is registered in another district), and every entity at
    the account's door, however its name scores (a misspelt name at the right door must compete
    even when many similar names elsewhere fill the top-k)."""
    has_exact = cand.loc[cand["name_score"] >= 100, "acc"].unique()
    rest = acc[~acc.index.isin(has_exact)]
    exact = rest.reset_index(names="acc").merge(ent.reset_index(names="ent")[["ent", "core"]], on="core")[["acc", "ent"]]
    exact["name_score"] = 100.0
    return pd.concat([exact, _at_door(acc, ent)], ignore_index=True)


def candidate_pairs(acc: pd.DataFrame, ent: pd.DataFrame, progress=None) -> pd.DataFrame:
    """Account x candidate-entity pairs (acc, ent, name_score), blocked by district: the block's
    top-k by deletion keys, the exact name elsewhere and the entities at the account's door."""
    pairs = [pd.DataFrame({"acc": pd.Series(dtype="int64"), "ent": pd.Series(dtype="int64"), "name_score": pd.Series(dtype="float64")})]
    blocks = acc.groupby("block", sort=True)
    iterator = progress(blocks, desc="linkage blocks", total=blocks.ngroups) if progress else blocks
    for block, group in iterator:
        pool = ent if block == CITY else ent[ent["district"] == block]
        if not len(pool):
            pool = ent
        pairs.append(key_block(group, pool))
    cand = pd.concat(pairs, ignore_index=True)
    cand = pd.concat([cand, exact_and_door(acc, ent, cand)], ignore_index=True)
    return cand.drop_duplicates(["acc", "ent"])
