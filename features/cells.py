"""Parsing a column's cells as the contract's kind: typed values, the cells present but unparseable, and what
was expected (``features.ingest`` quarantines those). Our own vectorised code, nothing guessed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.contract import ColumnSpec

_PATTERNS = {
    "date": (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d", "a date YYYY-MM-DD"),
    "month": (r"\d{4}-\d{2}", "%Y-%m", "a month YYYY-MM"),
}
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False, "yes": True, "no": False}


EXACT_FLOAT = 2.0**53  # below it a float64 holds every whole number exactly


def as_text(raw: pd.Series) -> pd.Series:
    """Cells as stripped text, empty ones missing. A column Parquet holds as float (pandas writes an id column
    with gaps so) gives whole numbers as their integer text: 240639490.0 is "240639490", as the department wrote it."""
    if pd.api.types.is_float_dtype(raw.dtype):
        values = raw.astype("float64")
        whole = _whole(values)
        text = values.astype("str").where(~whole, values.where(whole, 0.0).astype("int64").astype("str"))
        return text.mask(values.isna())
    text = raw.astype("str").str.strip()
    return text.mask(raw.isna() | (text == ""))


def _whole(values: pd.Series) -> pd.Series:
    """Floats that are whole numbers a float64 holds exactly."""
    finite = values.notna() & np.isfinite(values.fillna(0.0))
    return finite & (values == values.round()) & (values.abs() < EXACT_FLOAT)


def _parquet_dates(raw: pd.Series) -> pd.Series:
    """A Parquet column of calendar days as naive datetimes: ``date`` values (read as Python dates) and
    timestamps with a zone (read at the wall-clock time of their zone: the day the department wrote, never
    shifted to UTC); any other column as it is."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_localize(None)
    if raw.dtype == object:
        present = raw.dropna()
        if len(present) and present.map(lambda v: isinstance(v, dt.date)).all():
            return pd.to_datetime(raw)
    return raw


def parse_column(raw: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, pd.Series, str]:
    """Typed values, a mask of cells present but unparseable, and what was expected."""
    kind = spec.kind
    if kind in ("date", "month"):
        raw = _parquet_dates(raw)
    if kind in ("date", "month") and pd.api.types.is_datetime64_any_dtype(raw):
        values = raw.astype("datetime64[s]")
        if kind == "month":
            values = values.dt.to_period("M").dt.start_time.astype("datetime64[s]")
        return values, pd.Series(False, index=raw.index), ""
    if kind in ("decimal", "int") and raw.dtype in (np.dtype("float64"), np.dtype("int64")):
        return _parse_numbers(raw, kind)
    text = as_text(raw)
    present = text.notna()
    if kind == "text":
        if spec.is_code and pd.api.types.is_float_dtype(raw.dtype):  # 2.5 is no account number: quarantine it
            bad = present & ~_whole(raw.astype("float64"))
            return text.mask(bad).astype("str"), bad, "a code (a whole number, when stored as a float)"
        return text.astype("str"), pd.Series(False, index=raw.index), ""
    if kind in ("date", "month"):
        pattern, fmt, expected = _PATTERNS[kind]
        shaped = text.str.fullmatch(pattern).fillna(False).astype(bool)
        values = pd.to_datetime(text.where(shaped), format=fmt, errors="coerce").astype("datetime64[s]")
        return values, present & values.isna(), expected
    if kind == "quarter":
        shaped = text.str.fullmatch(r"\d{4}-Q[1-4]").fillna(False).astype(bool)
        return text.where(shaped).astype("str"), present & ~shaped, "a quarter YYYY-Qn"
    if kind in ("decimal", "int"):
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        return _of_kind(numbers, present & (numbers.isna() | ~np.isfinite(numbers.fillna(0.0))), kind)
    if kind == "bool":
        mapped = text.str.lower().map(_BOOLS)
        return mapped.astype("boolean"), present & mapped.isna(), "true or false"
    raise ValueError(f"unknown column kind {kind!r}")


def _parse_numbers(raw: pd.Series, kind: str) -> tuple[pd.Series, pd.Series, str]:
    """``parse_column`` of a column a Parquet file already holds as float64 or int64: the numbers its text
    would give back (a float64 prints and reads back exactly), without the text."""
    numbers = raw.astype("float64")
    return _of_kind(numbers, raw.notna() & ~np.isfinite(numbers.fillna(0.0)), kind)


def _of_kind(numbers: pd.Series, bad: pd.Series, kind: str) -> tuple[pd.Series, pd.Series, str]:
    """Numbers typed as the contract's ``decimal`` or ``int`` (a fractional value is no whole number)."""
    if kind == "int":
        fractional = numbers.notna() & (numbers != numbers.round())
        return numbers.mask(fractional).round().astype("Int64"), bad | fractional, "a whole number"
    return numbers.mask(bad), bad, "a number"
