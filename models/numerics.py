"""Arithmetic whose result for a row does not depend on the other rows scored with it or on the CPU.

A matrix product lets BLAS pick a kernel by batch size and instruction set, and the last bit of its result
moves with them; a rank read off an exact-match ECDF then jumps a tie, and a steep calibration turns that into
a visible change of risk (issue #10). So the risk model sums in a fixed column order, measures distances feature
by feature, fits Platt scaling with elementwise Newton steps, and looks scores up in ECDFs that tolerate a
last-bit difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ECDF_TOLERANCE = 1e-9  # relative: scores this close to a reference value tie with it


def ecdf(sorted_ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of the reference at or below x, mid-ranked for ties, in (0, 1).

    Tolerant: a value within ECDF_TOLERANCE (relative) of reference values ties with them, so that the last bit
    of a score (which may differ between CPUs or batch sizes in any arithmetic a library does not pin down)
    cannot move a row off its own tie."""
    n = len(sorted_ref)
    x = np.asarray(x, dtype="float64")
    if n == 0:
        return np.full(len(x), 0.5)
    tol = ECDF_TOLERANCE * np.maximum(np.abs(x), 1.0)
    lo = np.searchsorted(sorted_ref, x - tol, side="left")
    hi = np.searchsorted(sorted_ref, x + tol, side="right")
    return (0.5 * (lo + hi) + 0.5) / (n + 1.0)


def weighted_sum(columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise sum of ``columns * weights`` in column order: the same operations for every row whatever the
    batch, where a matrix product would pick a BLAS kernel by batch size and CPU."""
    out = np.zeros(len(columns))
    for j, w in enumerate(weights):
        out += columns[:, j] * w
    return out


def nearest_distance(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest point, summed feature by feature in a fixed order
    (no BLAS: the result of one row does not depend on the others or on the CPU)."""
    if len(queries) * len(points) * queries.shape[1] <= 1 << 16:  # a few rows: no loop over the features
        # cumsum adds the squares one feature after the other, the same sums in the same order as the loop below
        squares = (queries[:, None, :] - points[None, :, :]) ** 2
        acc = np.cumsum(squares, axis=2)[:, :, -1] if squares.shape[2] else np.zeros(squares.shape[:2])
        return np.sqrt(acc.min(axis=1, initial=np.inf))
    best = np.full(len(queries), np.inf)
    columns = np.ascontiguousarray(np.asarray(queries, dtype="float64").T)  # a feature's values side by side
    # a few thousand queries at a time, against blocks of points: each distance is the same fixed-order sum
    # whatever the blocks, so a few queries (one-row scoring) take every point at once, in d numpy steps
    for rows in range(0, len(queries), 4096):
        q = columns[:, rows : rows + 4096]
        size = max(64, (1 << 20) // max(q.shape[1], 1))
        for start in range(0, len(points), size):
            block = points[start : start + size]
            acc = np.zeros((q.shape[1], len(block)))
            for j in range(q.shape[0]):
                acc += (q[j][:, None] - block[None, :, j]) ** 2
            best[rows : rows + 4096] = np.minimum(best[rows : rows + 4096], acc.min(axis=1))
    return np.sqrt(best)


def pairwise_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Euclidean distances between the rows of a and b, in the same fixed order."""
    acc = np.zeros((len(a), len(b)))
    for j in range(a.shape[1]):
        acc += (a[:, [j]] - b[None, :, j]) ** 2
    return np.sqrt(acc)


def float_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The named columns as one float64 matrix in one conversion (no per-column casts); a column that does not
    hold numbers is an error naming it."""
    sub = frame if list(frame.columns) == names else frame[names]
    try:
        return sub.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        for name in names:
            try:
                sub[name].to_numpy(dtype="float64", na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"feature {name!r} must be a number: {exc}") from None
        raise


def sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def platt_fit(score: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float = 1.0, steps: int = 100):
    """Platt scaling p = sigmoid(a * logit(score) + b): damped Newton steps on the weighted log-loss with an L2
    penalty ``l2 / 2 * a**2`` (as LogisticRegression(C=1) on one feature), in plain elementwise arithmetic
    and 1-D sums (no BLAS: the same coefficients on every CPU). Returns (a, b)."""
    x = logit(score)
    y = np.asarray(y, dtype="float64")

    def loss(a: float, b: float) -> float:
        z = a * x + b
        return float(np.sum(weight * (np.logaddexp(0.0, z) - y * z))) + 0.5 * l2 * a * a

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(steps):
        p = sigmoid(a * x + b)
        r = weight * (p - y)
        h = weight * p * (1.0 - p)
        ga, gb = float(np.sum(r * x)) + l2 * a, float(np.sum(r))
        haa, hab, hbb = float(np.sum(h * x * x)) + l2, float(np.sum(h * x)), float(np.sum(h)) + 1e-12
        det = haa * hbb - hab * hab
        if det <= 0:
            break
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        step = 1.0
        while step > 1e-6:  # halve the step until the loss does not rise
            trial = loss(a - step * da, b - step * db)
            if trial <= current:
                break
            step *= 0.5
        if step <= 1e-6:
            break
        a, b, current = a - step * da, b - step * db, trial
        if step * (abs(da) + abs(db)) < 1e-10:
            break
    return a, b


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


