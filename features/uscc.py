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


def check_characters(first17: np.ndarray) -> np.ndarray:
    """Check characters of an (n, 17) array of single characters (the vectorised ``check_character``)."""
    lut = np.full(128, -1, dtype=np.int64)
    for ch, v in _VALUE.items():
        lut[ord(ch)] = v
    codes = np.ascontiguousarray(first17.astype("<U1")).view(np.uint32).reshape(first17.shape)
    total = (lut[codes] * _WEIGHTS).sum(axis=1)
    return np.array(list(ALPHABET))[(31 - total % 31) % 31]


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
        chars = np.array([list(x) for x in s.iloc[idx].to_numpy()])  # (n, 18)
        lut = np.full(128, -1, dtype=np.int64)
        for ch, v in _VALUE.items():
            lut[ord(ch)] = v
        codes_arr = chars.view(np.uint32).reshape(chars.shape) if chars.dtype.kind == "U" else None
        codes_arr = np.where(codes_arr < 128, codes_arr, 0)
        vals = lut[codes_arr]
        ok_chars = (vals >= 0).all(axis=1)
        total = (vals[:, :17] * _WEIGHTS).sum(axis=1)
        expected = (31 - total % 31) % 31
        out[idx] = ok_chars & (expected == vals[:, 17])
    result = pd.Series(out, index=codes.index, dtype="boolean")
    result[~present] = pd.NA
    return result
