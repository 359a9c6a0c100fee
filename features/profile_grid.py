"""The dense entity x month grid the monthly profiles are computed on, and its small helpers.

Entity i, month j of a grid is month number m0 + j (months since year 0: year * 12 + month - 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile_series import month_no

PERMIT_STATUS = ["none", "valid", "expiring", "expired", "revoked"]  # codes of a cell's permit status
SHIFT_SERIES = ["balance", "supply", "abstraction", "discharge"]  # series searched for level shifts


def month_starts(numbers: np.ndarray) -> np.ndarray:
    """Month numbers (year * 12 + month - 1; NaN allowed) as datetime64[s] month starts."""
    numbers = np.asarray(numbers, dtype="float64")
    ok = ~np.isnan(numbers)
    months = np.where(ok, numbers - 1970 * 12, 0).astype("int64").astype("datetime64[M]").astype("datetime64[s]")
    return np.where(ok, months, np.datetime64("NaT"))


def safe_div(num, den) -> np.ndarray:
    """num / den, NaN where the denominator is not positive or the result is not finite."""
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(np.isfinite(out) & (den > 0), out, np.nan)


class EntityMonthGrid:
    """Dense entity x month frame: entity i, month j is month number m0 + j."""

    def __init__(self, uscc: np.ndarray, m0: int, months: int):
        self.uscc = uscc
        self.m0 = m0
        self.M = months
        self.E = len(uscc)
        self._index = pd.Index(uscc)

    def entity_index(self, uscc: pd.Series) -> np.ndarray:
        """Row of each code in the grid, -1 when the entity is not in it."""
        return self._index.get_indexer(pd.Series(uscc).astype("str"))

    def rows(self, uscc: pd.Series, month_numbers: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Flat cell index of each row and a mask of rows inside the grid."""
        ent = self.entity_index(uscc)
        j = np.asarray(month_numbers, dtype="float64") - self.m0
        ok = (ent >= 0) & (j >= 0) & (j < self.M)
        return np.where(ok, ent * self.M + np.where(ok, j, 0).astype("int64"), 0), ok

    def total(self, uscc, month_numbers, weights=None) -> np.ndarray:
        """Sum of ``weights`` (or the row count) per cell."""
        flat, ok = self.rows(uscc, month_numbers)
        w = np.ones(len(flat)) if weights is None else np.nan_to_num(np.asarray(weights, dtype="float64"))
        return np.bincount(flat[ok], weights=w[ok], minlength=self.E * self.M).reshape(self.E, self.M)

    def maximum(self, uscc, month_numbers, values) -> np.ndarray:
        """Largest value per cell (0 where a cell has none)."""
        flat, ok = self.rows(uscc, month_numbers)
        out = np.zeros(self.E * self.M)
        np.maximum.at(out, flat[ok], np.asarray(values, dtype="float64")[ok])
        return out.reshape(self.E, self.M)


def registered_entities(entities: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Entities registered before as_of, one row each, by uscc; a later deregistration is not known yet."""
    ent = entities[entities["registered_on"].isna() | (entities["registered_on"] < as_of)]
    ent = ent.drop_duplicates("uscc").sort_values("uscc", kind="stable").reset_index(drop=True)
    dereg = ent["deregistered_on"].where(ent["deregistered_on"] < as_of)
    return ent.assign(deregistered_on=dereg)


def first_data_month(tables: dict[str, pd.DataFrame], before: int) -> int:
    """The first month number with supply, discharge or metered data before month ``before``."""
    numbers = [month_no(tables[n]["month"]) for n in ("supply", "discharge", "abstraction") if len(tables[n])]
    numbers = [m[m < before] for m in numbers]
    numbers = [int(m.min()) for m in numbers if len(m)]
    return min(numbers) if numbers else before - 12


def cells_by_month(profiles: pd.DataFrame, index: pd.Index, months: pd.DatetimeIndex):
    """Where each profile row goes in an entities (``index``) x ``months`` array: the rows kept and their flat
    cell; False when two rows share a cell (a profile has one row per entity and month)."""
    codes, uscc = pd.factorize(profiles["uscc"])  # each code looked up once, not once per month
    rows = np.where(codes >= 0, index.get_indexer(uscc)[np.maximum(codes, 0)] if len(uscc) else -1, -1)
    cols = months.get_indexer(profiles["month"])
    keep = (rows >= 0) & (cols >= 0)
    cell = rows[keep].astype("int64") * len(months) + cols[keep]
    if len(cell) and np.bincount(cell, minlength=len(index) * len(months)).max() > 1:
        return False
    return keep, cell


def wide_by_month(profiles: pd.DataFrame, column: str, index: pd.Index, months: pd.DatetimeIndex,
                  cells=None) -> np.ndarray:
    """Entities (``index``) x ``months`` of a profile column: the sum of the column's rows of each cell (a cell
    whose only value is missing sums to 0), NaN where the cell has no row. Each row is put in its cell directly
    (``cells``, from ``cells_by_month``); rows sharing a cell are added up by ``pivot_table``."""
    cells = cells_by_month(profiles, index, months) if cells is None else cells
    if cells is False:
        table = profiles.pivot_table(index="uscc", columns="month", values=column, aggfunc="sum", dropna=False)
        return table.reindex(index=index, columns=months).to_numpy(dtype="float64")
    keep, cell = cells
    values = profiles[column].to_numpy(dtype="float64", na_value=np.nan)[keep]
    out = np.full(len(index) * len(months), np.nan)
    out[cell] = np.where(np.isnan(values), 0.0, values)
    return out.reshape(len(index), len(months))
