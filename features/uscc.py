"""Unified social credit code (GB 32100-2015) check characters, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)


def check_character(first17: str) -> str:
    """The 18th character for the given first 17 (raises on characters outside the alphabet)."""
    total = sum(_VALUE[ch] * int(w) for ch, w in zip(first17, _WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def _values(chars: np.ndarray) -> np.ndarray:
    """Alphabet values of an (n, k) array of single characters; -1 outside the alphabet."""
    return _code_values(np.ascontiguousarray(chars.astype("<U1")).view(np.uint32).reshape(chars.shape))


def _code_values(codes: np.ndarray) -> np.ndarray:
    """Alphabet values of an array of code points; -1 outside the alphabet."""
    lut = np.full(128, -1, dtype=np.int64)
    for ch, v in _VALUE.items():
        lut[ord(ch)] = v
    return lut[np.where(codes < 128, codes, 0)]


def _check_values(values: np.ndarray) -> np.ndarray:
    """Check character values (0-30) of an (n, 17) array of alphabet values."""
    total = (values[:, :17] * _WEIGHTS).sum(axis=1)
    return (31 - total % 31) % 31


def check_characters(first17: np.ndarray) -> np.ndarray:
    """The 18th character of each row of an (n, 17) array of characters from the alphabet
    (the vectorised ``check_character``; the generator makes valid codes with it)."""
    return np.array(list(ALPHABET))[_check_values(_values(first17))]


def uscc_valid(codes: pd.Series) -> pd.Series:
    """True where a code is 18 characters of the alphabet with a correct check character.

    Departments mistype codes; a failing code is a data-quality finding, so this
    returns False rather than raising. Missing codes give <NA>.
    """
    s = codes.astype("str")
    present = codes.notna().to_numpy()
    out = np.zeros(len(s), dtype=bool)
    idx = np.flatnonzero(present & (s.str.len() == 18).fillna(False).to_numpy())
    if len(idx):
        chars = np.asarray(s.iloc[idx].to_numpy(), dtype="<U18").view(np.uint32).reshape(len(idx), 18)
        vals = _code_values(chars)  # (n, 18)
        out[idx] = (vals >= 0).all(axis=1) & (_check_values(vals) == vals[:, 17])
    result = pd.Series(out, index=codes.index, dtype="boolean")
    result[~present] = pd.NA
    return result
