"""How the water company's and the sewer operator's clerks write an account's name, address and code.

Short names, a dropped or added city prefix, old names after a rename, branch
suffixes, brackets, typos; addresses at any level of detail; the USCC filled
for only part of the accounts and sometimes mistyped.
"""

from __future__ import annotations

import numpy as np

from synth.arrays import cat, chars, join_chars, pick
from synth.state import CityState
from synth.vocab import BRANCH_SUFFIXES, DOOR_SUFFIXES, TYPO_CHARS


def written_names(g: CityState, rng, owner: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """The account name as written (object array; rows of no entity are left empty for the caller)."""
    cfg, A = g.cfg, len(owner)
    ent, e = owner >= 0, np.maximum(owner, 0)
    reg_name = np.where(ent, g.name[e], "")
    short = cat(g.trade[e], g.word[e])
    u = rng.random(A)
    written = np.select(
        [u < 0.42, u < 0.62, u < 0.72, u < 0.78],
        [
            reg_name,
            np.where(g.kind[e] == "company", short, reg_name),
            np.where(g.prefix[e] == "", cat(cfg.city, reg_name), np.char.replace(reg_name, g.prefix[e], "")),
            np.where(g.renamed[e], g.old_name[e], reg_name),
        ],
        np.char.replace(reg_name, "有限公司", "公司"),
    )
    branch = (kind == "second") | (ent & (rng.random(A) < 0.04))
    written = np.where(branch, cat(written, pick(rng, BRANCH_SUFFIXES, A)), written)
    brackets = ent & (g.kind[e] == "company") & (rng.random(A) < 0.05)
    written = np.where(brackets, cat(g.trade[e], "(", cfg.city_short, ")", g.word[e], g.form[e]), written)
    written = typos(rng, written, ent & (rng.random(A) < 0.07))
    return written.astype(object)


def written_addresses(g: CityState, rng, owner: np.ndarray) -> np.ndarray:
    """The owner's address at a random level of detail, zone names shortened, door hints added (object array)."""
    cfg, A, e = g.cfg, len(owner), np.maximum(owner, 0)
    v = rng.random(A)
    full = cat(cfg.province, cfg.city, g.dname[e], g.local[e])
    addr = np.select(
        [v < 0.15, v < 0.5, v < 0.8],
        [full, cat(cfg.city, g.dname[e], g.local[e]), cat(g.dname[e], g.local[e])],
        g.local[e],
    )
    addr = np.where(
        g.zone[e] & (rng.random(A) < 0.3),
        np.char.replace(addr, g.zone_name[e], cat(g.dshort[e], "开发区")),
        addr,
    )
    addr = np.where(rng.random(A) < 0.1, cat(addr, pick(rng, DOOR_SUFFIXES, A)), addr)
    return addr.astype(object)


def written_uscc(g: CityState, rng, owner: np.ndarray, source: str) -> np.ndarray:
    """The code the clerk filled in: for part of the entities' accounts, sometimes with a mistyped digit."""
    cfg, A = g.cfg, len(owner)
    ent, e = owner >= 0, np.maximum(owner, 0)
    filled = ent & (rng.random(A) < (cfg.uscc_filled_supply if source == "supply" else cfg.uscc_filled_discharge))
    code = np.where(ent, g.uscc[e], "")
    typo = filled & (rng.random(A) < cfg.uscc_typo_share)
    if typo.any():
        table = np.array([list(c) for c in code[typo]])
        pos = rng.integers(8, 17, typo.sum())
        table[np.arange(typo.sum()), pos] = chars(rng, "0123456789", typo.sum())
        code[typo] = join_chars(table)
    return np.where(filled, code, None).astype(object)


def typos(rng, names: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Swap two neighbouring characters or type a wrong one, as clerks do."""
    idx = np.flatnonzero(mask & (np.char.str_len(names.astype(str)) >= 4))
    if not len(idx):
        return names
    width = max(np.char.str_len(names[idx]).max(), 4)
    arr = names[idx].astype(f"<U{width}")
    codes = arr.view(np.uint32).reshape(len(idx), width).copy()
    lens = np.char.str_len(arr)
    pos = (rng.random(len(idx)) * (lens - 2)).astype(int)
    rows = np.arange(len(idx))
    swap = rng.random(len(idx)) < 0.5
    a, b = codes[rows, pos].copy(), codes[rows, pos + 1].copy()
    codes[rows[swap], pos[swap]], codes[rows[swap], pos[swap] + 1] = b[swap], a[swap]
    wrong = np.array([ord(c) for c in TYPO_CHARS])[rng.integers(0, len(TYPO_CHARS), len(idx))]
    codes[rows[~swap], pos[~swap]] = wrong[~swap]
    out = names.astype(object).copy()
    out[idx] = codes.view(f"<U{width}").ravel()
    return out.astype(str)
