"""The peer statistics and z-scores equal the pandas group reductions they replaced, number for number, and a
partitioned run's peer observations give the same statistics in any order of parts."""

import numpy as np
import pandas as pd
import pytest

from features.compliance import MAD_TO_SD, MEAN_AD_TO_SD, peer_statistics, peer_z_from


def reference_statistics(observations: pd.DataFrame) -> pd.DataFrame:
    """pandas' groupby median / count / mean, as computed before the sort-based version."""
    key = ["group", "month"]
    g = observations.groupby(key, sort=True)["x"]
    stats = pd.DataFrame({"median": g.median(), "n": g.count()})
    med = stats["median"].reindex(pd.MultiIndex.from_frame(observations[key])).to_numpy()
    dev = pd.Series(np.abs(observations["x"].to_numpy() - med), index=observations.index)
    gd = dev.groupby([observations[k] for k in key], sort=True)
    stats["mad"] = gd.median()
    stats["mean_ad"] = gd.mean()
    stats.loc[stats.index.get_level_values("group") < 0, "n"] = 0
    return stats.reset_index()[[*key, "median", "mad", "mean_ad", "n"]]


def reference_z(observations: pd.DataFrame, stats: pd.DataFrame):
    key = ["group", "month"]
    at = stats.set_index(key).reindex(pd.MultiIndex.from_frame(observations[key]))
    values = observations["x"].to_numpy(dtype="float64")
    med, mad, mean_ad = (at[c].to_numpy(dtype="float64") for c in ("median", "mad", "mean_ad"))
    n = at["n"].fillna(0).to_numpy(dtype="float64")
    scale = np.where(mad > 0, MAD_TO_SD * mad, MEAN_AD_TO_SD * mean_ad)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (values - med) / scale, np.where(np.isnan(values), np.nan, 0.0))
    return z, n


def observations(seed: int, rows: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(0, 2, rows)
    x[rng.random(rows) < 0.3] = np.nan  # not observed
    ties = rng.random(rows) < 0.3
    x[ties] = np.round(x[ties])  # many equal values: zero MADs, mean deviations decide
    x[rng.random(rows) < 0.05] = 0.0
    group = rng.integers(-1, 40, rows)
    group[rng.random(rows) < 0.02] = 99  # a few groups of one or two rows
    month = rng.integers(24_200, 24_236, rows)
    frame = pd.DataFrame({"group": group, "month": month, "x": x})
    lonely = pd.DataFrame({"group": [77, 77, 78], "month": [24_200, 24_200, 24_201], "x": [np.nan, np.nan, 1.5]})
    return pd.concat([frame, lonely], ignore_index=True)  # a group never observed; a group of one


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_peer_statistics_equal_pandas_group_reductions(seed):
    obs = observations(seed)
    got, want = peer_statistics(obs), reference_statistics(obs)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert (got["n"] == 0).any() and (got["mad"] == 0).any()  # the cases that matter were generated


@pytest.mark.parametrize("seed", [4, 5])
def test_peer_z_equal_reference(seed):
    obs = observations(seed)
    stats = peer_statistics(obs.iloc[: len(obs) // 2])  # some observations' cells have no statistics
    z, n = peer_z_from(obs, stats)
    rz, rn = reference_z(obs, reference_statistics(obs.iloc[: len(obs) // 2]))
    np.testing.assert_array_equal(z, rz)
    np.testing.assert_array_equal(n, rn)


def test_peer_statistics_of_known_numbers():
    obs = pd.DataFrame({"group": [0, 0, 0, 0, 1, 1, 1, -1], "month": [5] * 8,
                        "x": [1.0, 2.0, 4.0, 10.0, 3.0, 3.0, np.nan, 7.0]})
    stats = peer_statistics(obs).set_index("group")
    assert stats.loc[0, "median"] == 3.0 and stats.loc[0, "mad"] == 1.5  # deviations 2, 1, 1, 7
    assert stats.loc[0, "mean_ad"] == 11.0 / 4 and stats.loc[0, "n"] == 4
    assert stats.loc[1, "median"] == 3.0 and stats.loc[1, "mad"] == 0.0 and stats.loc[1, "n"] == 2
    assert stats.loc[-1, "n"] == 0  # no group: never a peer count


def naive_change_point_last(x, window, min_segment, relative, sd_floor):
    """The level-shift score of the last month written out split by split (the formula of
    ``profile_series.change_point``), for comparing the in-place kernel number for number."""
    E, M = x.shape
    t, a = M - 1, max(0, M - window)
    seen = ~np.isnan(x)
    x0 = np.where(seen, x, 0.0)
    C, S, Q = (np.concatenate([np.zeros((E, 1)), np.cumsum(v, axis=1)], axis=1) for v in (seen, x0, x0 * x0))
    best = np.full(E, -np.inf)
    out = np.full((3, E), np.nan)
    for k in range(a + 1, t + 1):  # running sums: [a, k) before the split, [k, t] after
        n1, n2 = C[:, k] - C[:, a], C[:, t + 1] - C[:, k]
        s1, s2 = S[:, k] - S[:, a], S[:, t + 1] - S[:, k]
        q1, q2 = Q[:, k] - Q[:, a], Q[:, t + 1] - Q[:, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            mu1, mu2 = s1 / n1, s2 / n2
            ss = np.maximum(q1 - n1 * mu1 * mu1, 0) + np.maximum(q2 - n2 * mu2 * mu2, 0)
            var = ss / np.maximum(n1 + n2 - 2, 1)
            floor = (0.05 * (np.abs(mu1) + np.abs(mu2)) / 2) ** 2 + sd_floor**2
            z = np.abs(mu2 - mu1) / np.sqrt(np.maximum(var, floor) * (1 / n1 + 1 / n2))
        z = np.where((n1 >= min_segment) & (n2 >= min_segment), z, -np.inf)
        better = z > best
        best = np.where(better, z, best)
        delta = mu2 - mu1 if not relative else np.clip(
            np.where(mu1 > sd_floor, mu2 / mu1 - 1.0, np.where(mu2 > sd_floor, 10.0, 0.0)), -1.0, 10.0)
        out[:, better] = np.stack([delta, z, np.full(E, float(k))])[:, better]
    return out


@pytest.mark.parametrize("relative, sd_floor", [(True, 1.0), (False, 0.05)])
def test_level_shift_kernel_equals_the_formula(relative, sd_floor):
    from features.profile_series import change_point_last

    rng = np.random.default_rng(7)
    x = rng.lognormal(3, 1, (400, 30))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:100, 18:] *= 3  # steps
    x[100:120] = 5.0  # flat: the floors decide
    with np.errstate(invalid="ignore", divide="ignore"):
        want = naive_change_point_last(x, 24, 3, relative, sd_floor)
    got = change_point_last(x, 24, 3, relative, sd_floor)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
