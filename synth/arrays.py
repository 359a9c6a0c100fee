"""Small vectorised helpers over numpy arrays of text, dates and numbers."""

from __future__ import annotations

import numpy as np


def cat(*parts) -> np.ndarray:
    """Element-wise concatenation of text arrays (scalars broadcast)."""
    out = np.asarray(parts[0]).astype(str)
    for p in parts[1:]:
        out = np.char.add(out, np.asarray(p).astype(str))
    return out


def pick(rng, pool, n, p=None) -> np.ndarray:
    return np.asarray(pool)[rng.choice(len(pool), size=n, p=p)]


def chars(rng, alphabet: str, shape) -> np.ndarray:
    return np.array(list(alphabet))[rng.integers(0, len(alphabet), size=shape)]


def join_chars(table: np.ndarray) -> np.ndarray:
    """An (n, k) array of single characters -> n strings of k characters."""
    return np.ascontiguousarray(table.astype("<U1")).view(f"<U{table.shape[1]}").ravel()


def round_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    return np.round(np.asarray(x) / step) * step


def fmt_dates(d: np.ndarray) -> np.ndarray:
    """datetime64[D] -> 'YYYY-MM-DD' text, NaT -> empty."""
    out = np.datetime_as_string(d.astype("datetime64[D]"), unit="D").astype(object)
    out[np.isnat(d)] = None
    return out
