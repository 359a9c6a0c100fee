"""Causal operations on entity x month arrays (rows: entities, columns: consecutive months).

Every value at column j depends on columns <= j only, so profiles never look
past their own month.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def month_no(dates: pd.Series) -> pd.Series:
    """Months since year 0 (year * 12 + month - 1) as float, NaN for missing dates."""
    dates = pd.to_datetime(dates)
    return (dates.dt.year * 12 + dates.dt.month - 1).astype("float64")


def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last `window` months including this one; NaN until the window is inside the grid."""
    x = np.nan_to_num(np.asarray(x, dtype="float64"))
    cum = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    out = np.full(x.shape, np.nan)
    if x.shape[1] >= window:
        out[:, window - 1 :] = cum[:, window:] - cum[:, : x.shape[1] - window + 1]
    return out


def trailing_median(x: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Median of the `window` months before this one (this month excluded), NaN-aware."""
    E, M = x.shape
    padded = np.concatenate([np.full((E, window), np.nan), np.asarray(x, dtype="float64")], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)[:, :M]
    count = np.sum(~np.isnan(windows), axis=2)
    # np.nanmedian's numbers, by one sort (missing months sort last): the middle value, or the mean of the two
    ordered = np.sort(windows, axis=2)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[..., None], axis=2)[..., 0]
    high = np.take_along_axis(ordered, (count // 2)[..., None], axis=2)[..., 0]
    med = np.where(count % 2 == 1, low, (low + high) / 2.0)
    return np.where(count >= min_count, med, np.nan)


MISREAD_FACTOR = 4.0  # a bill this many times both neighbours and the months around it is a keying slip
MISREAD_REACH = 6  # months on each side whose median stands for the usual bill


def _median_around(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, reach: int,
                   unknown: np.ndarray | None = None) -> np.ndarray:
    """For each cell (rows, cols): the median of its row's months within ``reach`` on either side, the cell itself,
    months outside the grid, ``unknown`` months and NaN left out (NaN where none is left)."""
    offsets = np.concatenate([np.arange(-reach, 0), np.arange(1, reach + 1)])
    around = cols[:, None] + offsets[None, :]
    usable = (around >= 0) & (around < x.shape[1])
    around = np.clip(around, 0, x.shape[1] - 1)
    if unknown is not None:
        usable &= ~unknown[rows[:, None], around]
    values = np.where(usable, x[rows[:, None], around], np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=1)


def without_misreads(x: np.ndarray, copy: bool = True, block: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Rows x months volumes with each misread bill replaced by its usual level, and where they were.

    A clerk who keys an extra digit bills one month at about ten times its water; the next bill is right
    again. Such a month is more than MISREAD_FACTOR times both its neighbours and the median of the
    MISREAD_REACH months on either side: a seasonal peak has neighbours of its own season, and a step up keeps
    its new level next month. The first and last months have one neighbour and are left as billed. The
    neighbour test runs ``block`` rows at a time and only the few cells that pass it are looked at further, so
    a province's grid costs little memory; ``copy=False`` replaces in ``x`` itself.
    """
    x = np.array(x, dtype="float64") if copy else np.asarray(x, dtype="float64")
    E, M = x.shape
    flags = np.zeros((E, M), dtype=bool)
    if M < 3:
        return x, flags
    found = []
    for lo in range(0, E, block):
        v = np.nan_to_num(x[lo:lo + block])
        r, c = np.nonzero(v[:, 1:-1] > MISREAD_FACTOR * np.maximum(v[:, :-2], v[:, 2:]))
        found.append((r + lo, c + 1))
    rows, cols = (np.concatenate(parts) for parts in zip(*found)) if found else (np.zeros(0, int),) * 2
    if not len(rows):
        return x, flags
    usual = _median_around(x, rows, cols, MISREAD_REACH)
    slip = (usual > 0) & (x[rows, cols] > MISREAD_FACTOR * usual)
    x[rows[slip], cols[slip]] = usual[slip]
    flags[rows[slip], cols[slip]] = True
    return x, flags


COVERED_FACTOR = 1.5  # a bill after a month billed 0, this many times the usual bill, covers both months


def zero_bills(x: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Rows x months: the months billed 0 between two bills that the next bill does not cover, to be read as
    unknown (like a lost bill) rather than as a month without water.

    A 0 whose next bill is at its usual level is a reading recorded as nothing: a factory that stops for a while
    bills 0 for more than one month, and in log terms a single 0 is a drop to nothing, a step and a month of
    discharge no water explains. A 0 that the next bill covers is left as billed, since the two bills' sum is the
    water: a reading skipped once (the next bill at least COVERED_FACTOR times the median of the non-zero bills
    within MISREAD_REACH months) or a meter read every second month (0 again two months before or after). Months
    outside the entity's ``active`` ones take no part."""
    unknown = np.zeros(np.shape(x), dtype=bool)
    M = unknown.shape[1]
    if M < 3:
        return unknown
    seen = np.asarray(x, dtype="float64") if active is None else np.where(active, x, np.nan)
    rows, cols = np.nonzero((seen[:, 1:-1] == 0) & (seen[:, :-2] > 0) & (seen[:, 2:] > 0))
    cols = cols + 1
    if not len(rows):
        return unknown
    usual = _median_around(seen, rows, cols, MISREAD_REACH, unknown=seen == 0)
    caught_up = seen[rows, cols + 1] >= COVERED_FACTOR * usual
    every_second = (seen[rows, np.maximum(cols - 2, 0)] == 0) & (cols >= 2)
    every_second |= (seen[rows, np.minimum(cols + 2, M - 1)] == 0) & (cols + 2 < M)
    lone = ~caught_up & ~every_second
    unknown[rows[lone], cols[lone]] = True
    return unknown


def fill_gaps(x: np.ndarray, gaps: np.ndarray, unknown: np.ndarray | None = None,
              reach: int = MISREAD_REACH, copy: bool = True) -> np.ndarray:
    """Rows x months ``x`` with each cell of ``gaps`` read at the median of the months within ``reach`` on either
    side that are not ``unknown`` (default: the gaps themselves); a gap with no such month stays. ``copy=False``
    fills ``x`` itself.

    A month with no bill between two bills is a lost record, not a month without water: read as zero, it would
    show as a drop and as discharge no water explains."""
    x = np.array(x, dtype="float64") if copy else np.asarray(x, dtype="float64")
    rows, cols = np.nonzero(gaps)
    if not len(rows):
        return x
    usual = _median_around(x, rows, cols, reach, gaps if unknown is None else unknown)
    ok = ~np.isnan(usual)
    x[rows[ok], cols[ok]] = usual[ok]
    return x


def interior_gaps(missing: np.ndarray) -> np.ndarray:
    """Rows x months: the ``missing`` months (no record although the entity had one before) that a later record
    follows. Months after the last record are not gaps: the account may have stopped."""
    missing = np.asarray(missing, dtype=bool)
    later = np.flip(np.logical_or.accumulate(np.flip(~missing, axis=1), axis=1), axis=1)
    return missing & later


def forward_quarter(x: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The value at the latest quarter-end month (Mar, Jun, Sep, Dec) on or before each month."""
    j = np.arange(len(months)) - ((months - 2) % 3)
    out = x[:, np.maximum(j, 0)].copy()
    out[:, j < 0] = np.nan
    return out


def change_point(
    x: np.ndarray, window: int, min_segment: int, relative: bool, sd_floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best single level shift in the trailing `window` months ending at each month.

    For every month t and every split k in (t - window, t], the mean of [k, t]
    is compared with the mean of [t - window + 1, k - 1] (both at least
    `min_segment` observed months) by a two-sample t-like score with a pooled
    standard deviation floored at 5 % of the level and at `sd_floor` (a flat
    series with a clean step would otherwise score infinity). Returns the
    shift (after/before - 1 clipped to [-1, 10] when `relative`, else
    after - before), its score and the column index k where it starts.
    """
    x = np.asarray(x, dtype="float64")
    E, M = x.shape
    shift = np.full((E, M), np.nan)
    score = np.full((E, M), np.nan)
    since = np.full((E, M), np.nan)
    for r in range(0, E, 4096):  # a few thousand entities at a time: the temporaries stay in cache
        rows = slice(r, r + 4096)
        sums = _prefix_sums(x[rows])
        for t in range(M):  # months, not entities
            shift[rows, t], score[rows, t], since[rows, t] = _change_point_at(sums, t, window, min_segment, relative, sd_floor)
    return shift, score, since


def change_point_last(
    x: np.ndarray, window: int, min_segment: int, relative: bool, sd_floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``change_point`` at the last month only (what a snapshot reads): the same numbers as its last
    column, without computing the months before."""
    x = np.asarray(x, dtype="float64")
    E, M = x.shape
    if M == 0:
        empty = np.full(E, np.nan)
        return empty, empty.copy(), empty.copy()
    return _change_point_at(_prefix_sums(x), M - 1, window, min_segment, relative, sd_floor)


def _prefix_sums(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running count, sum and sum of squares of the observed months, with a leading zero column."""
    seen = ~np.isnan(x)
    x0 = np.where(seen, x, 0.0)
    zero = np.zeros((x.shape[0], 1))
    C = np.concatenate([zero, np.cumsum(seen, axis=1)], axis=1)
    S = np.concatenate([zero, np.cumsum(x0, axis=1)], axis=1)
    Q = np.concatenate([zero, np.cumsum(x0 * x0, axis=1)], axis=1)
    return C, S, Q


def _spread(q: np.ndarray, n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """max(q - n * mu * mu, 0): a side's sum of squared deviations, in a new array."""
    out = n * mu
    out *= mu
    np.subtract(q, out, out=out)
    return np.maximum(out, 0, out=out)


def _change_point_at(sums, t: int, window: int, min_segment: int, relative: bool, sd_floor: float):
    """Shift, score and start column of the best split of the window ending at month ``t``.

    Only rows with at least 2 x min_segment observed months in the window can have a split (each side needs
    min_segment), so the search runs on those rows alone: most entities have no meter, no metered discharge
    or no balance, and their answer is NaN whatever is computed. Each row's numbers are its own (elementwise,
    then the best split of that row), so they are the same on the rows kept."""
    C, S, Q = sums
    E = C.shape[0]
    a = max(0, t - window + 1)
    ks = np.arange(a + 1, t + 1)
    if not len(ks):
        return np.full(E, np.nan), np.full(E, np.nan), np.full(E, np.nan)
    live = (C[:, t + 1] - C[:, a]) >= 2 * min_segment
    if live.mean() > 0.75:  # nearly every row: picking them out would cost more than it saves
        return _split_search(C, S, Q, t, a, ks, min_segment, relative, sd_floor)
    out = np.full(E, np.nan), np.full(E, np.nan), np.full(E, np.nan)
    if live.any():
        found = _split_search(C[live], S[live], Q[live], t, a, ks, min_segment, relative, sd_floor)
        for column, values in zip(out, found):
            column[live] = values
    return out


def _split_search(C, S, Q, t: int, a: int, ks: np.ndarray, min_segment: int, relative: bool, sd_floor: float):
    """``_change_point_at`` of the rows given (their prefix sums). The splits ks are the columns a+1..t, so each
    side's sums are slices, and the arithmetic runs in place (the same operations, in the same order)."""
    E = C.shape[0]
    rows = np.arange(E)
    lo, hi = a + 1, t + 1
    n1 = C[:, lo:hi] - C[:, a:a + 1]
    s1 = S[:, lo:hi] - S[:, a:a + 1]
    q1 = Q[:, lo:hi] - Q[:, a:a + 1]
    n2 = C[:, hi:hi + 1] - C[:, lo:hi]
    s2 = S[:, hi:hi + 1] - S[:, lo:hi]
    q2 = Q[:, hi:hi + 1] - Q[:, lo:hi]
    ok = n1 >= min_segment
    ok &= n2 >= min_segment
    with np.errstate(divide="ignore", invalid="ignore"):
        mu1 = s1 / n1
        mu2 = s2 / n2
        ss = _spread(q1, n1, mu1)
        ss += _spread(q2, n2, mu2)
        ss /= np.maximum(C[:, hi:hi + 1] - C[:, a:a + 1] - 2, 1)  # n1 + n2: whole counts, the same every split
        floor = np.abs(mu1)
        floor += np.abs(mu2)
        np.multiply(0.05, floor, out=floor)
        floor /= 2
        np.square(floor, out=floor)
        floor += sd_floor**2
        np.maximum(ss, floor, out=ss)
        inv = np.divide(1, n1, out=s1)
        inv += np.divide(1, n2, out=s2)
        ss *= inv
        np.sqrt(ss, out=ss)
        z = np.subtract(mu2, mu1, out=q1)
        np.abs(z, out=z)
        z /= ss
    z[~ok] = -np.inf
    best = np.argmax(z, axis=1)
    zb = z[rows, best]
    found = np.isfinite(zb)
    m1, m2 = mu1[rows, best], mu2[rows, best]
    if relative:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(m1 > sd_floor, m2 / m1 - 1.0, np.where(m2 > sd_floor, 10.0, 0.0))
        delta = np.clip(rel, -1.0, 10.0)
    else:
        delta = m2 - m1
    return np.where(found, delta, np.nan), np.where(found, zb, np.nan), np.where(found, ks[best], np.nan).astype("float64")
