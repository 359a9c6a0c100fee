"""Identifiers that are unique city-wide without any coordination between entity blocks.

A keyed bijection (a Feistel network with cycle walking) maps the running
number of an entity, account or meter to a number that looks random but can
never repeat, so a block of entities generated on its own never collides with
another block.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def key_for(seed: int, purpose: str) -> np.uint64:
    """A 64-bit key per (seed, purpose), stable across runs and platforms."""
    tag = int.from_bytes(purpose.encode("utf-8")[:8].ljust(8, b"\0"), "little")
    return np.random.SeedSequence([seed, tag]).generate_state(1, dtype=np.uint64)[0]


def _mix(x: np.ndarray, key: np.uint64, r: int) -> np.ndarray:
    z = x + key + np.uint64(r + 1) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _feistel(x: np.ndarray, half: int, key: np.uint64) -> np.ndarray:
    mask = np.uint64((1 << half) - 1)
    left, right = x >> np.uint64(half), x & mask
    for r in range(4):
        left, right = right, left ^ (_mix(right, key, r) & mask)
    return (left << np.uint64(half)) | right


def permute(index: np.ndarray, domain: int, key: np.uint64) -> np.ndarray:
    """The image of ``index`` (integers in [0, domain)) under a keyed permutation of [0, domain)."""
    index = np.asarray(index, dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= domain):
        raise ValueError(f"index outside [0, {domain})")
    bits = max(2, int(np.ceil(np.log2(domain))))
    half = (bits + 1) // 2
    out = index.astype(np.uint64)
    todo = np.ones(len(out), bool)
    with np.errstate(over="ignore"):
        while todo.any():  # cycle walking: stays a bijection of [0, domain)
            out[todo] = _feistel(out[todo], half, key)
            todo = out >= np.uint64(domain)
    return out.astype(np.int64)


def digits(numbers: np.ndarray, width: int, alphabet: str = "0123456789") -> np.ndarray:
    """(n, width) array of characters: ``numbers`` written in the alphabet's base, most significant first."""
    base = len(alphabet)
    n = np.asarray(numbers, dtype=np.int64).copy()
    out = np.empty((len(n), width), dtype="<U1")
    table = np.array(list(alphabet))
    for pos in range(width - 1, -1, -1):
        out[:, pos] = table[n % base]
        n //= base
    return out
