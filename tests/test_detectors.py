"""Detectors on generated data with known answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.exceptions import NotFittedError

from models.breaches import DOCUMENTED_BREACH_COLUMNS, documented_breach
from models.detectors import (
    ECOD,
    HIDDEN_WATER_INDICATORS,
    HiddenWater,
    IsolationForestDetector,
    domain_detectors,
)


def _planted(n=600, d=5, outliers=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.zeros(n, dtype=int)
    y[:outliers] = 1
    X[:outliers] += rng.choice([-6.0, 6.0], size=(outliers, d))
    return X, y


@pytest.mark.parametrize("make", [ECOD, lambda: IsolationForestDetector(random_state=0)])
def test_generic_detectors_rank_planted_outliers_first_even_with_nan(make):
    X, y = _planted()
    X[np.random.default_rng(1).random(X.shape) < 0.05] = np.nan
    det = make().fit(X)
    score = det.anomaly_score(X)
    assert np.isfinite(score).all()
    assert roc_auc_score(y, score) > 0.97
    # scikit-learn's conventions: score_samples higher = more normal, decision_function = score_samples - offset_
    # negative for outliers, predict -1 = outlier
    assert np.array_equal(det.score_samples(X), -score)
    assert np.allclose(det.decision_function(X), det.score_samples(X) - det.offset_)
    assert (det.predict(X[:20]) == -1).mean() > 0.9
    assert (det.predict(X) == -1).mean() == pytest.approx(det.contamination, abs=0.02)


def test_ecod_is_deterministic_and_scores_tails_on_both_sides():
    X, _ = _planted(outliers=0)
    det = ECOD().fit(X)
    centre = np.zeros((1, X.shape[1]))
    low, high = centre - 5, centre + 5
    s = det.anomaly_score(np.vstack([centre, low, high]))
    assert s[1] > s[0] and s[2] > s[0]
    assert np.array_equal(det.score_samples(X), ECOD().fit(X).score_samples(X))
    # the per-feature tails point at the odd feature
    row = centre.copy()
    row[0, 3] = 8.0
    assert det.tail_contributions(row).argmax() == 3


def _snapshot(n_per_industry=40, seed=0):
    """Two industries whose metered dry-season discharge is 0.5 and 0.9 times their known water in (a log
    balance spread of 0.05 around it); plans used at about 80 %."""
    rng = np.random.default_rng(seed)
    rows = []
    for industry, k in (("C17", 0.5), ("C26", 0.9)):
        for _ in range(n_per_industry):
            log_ratio = np.log(k) + rng.normal(0, 0.05)
            rows.append({"industry_code": industry,
                         "balance_dry_log_12m": log_ratio, "balance_dry_ratio_12m": np.exp(log_ratio),
                         "balance_dry_step": rng.normal(0, 0.05), "balance_dry_step_score": rng.uniform(0.5, 3.0),
                         "plan_used_12m": 0.8 * np.exp(rng.normal(0, 0.1)), "quota_used_12m": np.nan,
                         "meter_unexplained_drop_share": np.nan, "inflow_step": np.nan, "inflow_step_score": np.nan,
                         "inflow_m3_12m": 1000.0, "water_recent_share_3m": 1.0})
    return pd.DataFrame(rows)


def test_hidden_water_judges_each_indicator_against_its_peers():
    snap = _snapshot()
    det = HiddenWater().fit(snap)
    probe = pd.DataFrame({
        "industry_code": ["C17", "C26", "C17", "C17", "X99"],
        # 0.9 is far above a C17 plant's 0.5 and ordinary for a C26 plant; plain; plain; unknown industry
        "balance_dry_log_12m": [np.log(0.9), np.log(0.9), np.log(0.5), np.log(0.5), np.log(0.5)],
        "balance_dry_ratio_12m": [0.9, 0.9, 0.5, 0.5, 0.5],
        "balance_dry_step": [0.0, 0.0, 0.0, 1.0, 0.0], "balance_dry_step_score": [1.0, 1.0, 1.0, 20.0, 1.0],
        "plan_used_12m": [0.8, 0.8, 0.8, 0.8, 0.8], "quota_used_12m": [np.nan] * 5,
        "meter_unexplained_drop_share": [np.nan] * 5, "inflow_step": [np.nan] * 5, "inflow_step_score": [np.nan] * 5,
    })
    z = det.indicator_z(probe)
    assert z.loc[0, "balance_excess"] == pytest.approx(det.cap)  # log(0.9 / 0.5) above C17's median: capped z
    assert abs(z.loc[1, "balance_excess"]) < 2.0  # the same ratio is ordinary for a C26 plant
    assert z.loc[3, "balance_step"] == pytest.approx(det.cap) and z.loc[2, "balance_step"] >= 0  # one-sided
    assert np.isnan(z.loc[0, "quota_shortfall"])  # no permit, no quota indicator
    assert np.isfinite(z.loc[4, "balance_excess"])  # an unknown industry is judged against the city
    # each indicator the row has adds its log-likelihood ratio w (z - w / 2); the parts add up to the score
    parts = det.contributions(probe)
    assert np.allclose(parts.sum(axis=1), det.anomaly_score(probe))
    w = pd.Series({ind.code: ind.weight for ind in HIDDEN_WATER_INDICATORS})
    expected = (w * (z.iloc[0] - w / 2)).sum(skipna=True)
    assert det.anomaly_score(probe)[0] == pytest.approx(expected)
    s = det.anomaly_score(probe)
    assert s[0] > s[2] and s[3] > s[2] and s[1] < s[0]
    # sklearn's sign convention on top
    assert np.array_equal(det.score_samples(probe), -s)


def test_hidden_water_a_disagreeing_record_pulls_the_score_down():
    det = HiddenWater().fit(_snapshot())
    base = {"industry_code": "C17", "balance_dry_step": 0.0, "balance_dry_step_score": 1.0, "quota_used_12m": np.nan,
            "meter_unexplained_drop_share": np.nan, "inflow_step": np.nan, "inflow_step_score": np.nan,
            "inflow_m3_12m": 1000.0, "water_recent_share_3m": 1.0}
    short_plan_balanced = pd.DataFrame([{**base, "plan_used_12m": 0.2, "balance_dry_log_12m": np.log(0.5),
                                         "balance_dry_ratio_12m": 0.5}])
    short_plan_only = pd.DataFrame([{**base, "plan_used_12m": 0.2, "balance_dry_log_12m": np.nan,
                                     "balance_dry_step_score": np.nan}])
    assert det.anomaly_score(short_plan_only)[0] > det.anomaly_score(short_plan_balanced)[0] > 0


def test_hidden_water_discounts_what_honest_entities_also_show():
    """Discharge with no known inflow at all (a park's shared bill) is held at a moderate z; a firm whose every
    record fell to nothing (closed or asleep) shows no shortfall or drop; dewatering works with no permit are
    a yes/no record worth EVENT_Z."""
    from models.detectors import EVENT_Z

    det = HiddenWater().fit(_snapshot())
    base = {"industry_code": "C17", "balance_dry_step": 0.0, "balance_dry_step_score": 1.0, "quota_used_12m": np.nan,
            "meter_unexplained_drop_share": np.nan, "inflow_step": np.nan, "inflow_step_score": np.nan,
            "plan_used_12m": np.nan}
    probe = pd.DataFrame([
        {**base, "balance_dry_log_12m": np.log(50.0), "balance_dry_ratio_12m": np.nan},  # no known inflow
        {**base, "balance_dry_log_12m": np.log(50.0), "balance_dry_ratio_12m": 50.0},
        {**base, "balance_dry_log_12m": np.nan, "plan_used_12m": 0.01, "water_recent_share_3m": 0.0},  # closed
        {**base, "balance_dry_log_12m": np.nan, "plan_used_12m": 0.01, "water_recent_share_3m": 1.0},
    ])
    z = det.indicator_z(probe)
    assert z.loc[0, "balance_excess"] == pytest.approx(3.0) and z.loc[1, "balance_excess"] == pytest.approx(det.cap)
    assert np.isnan(z.loc[2, "plan_shortfall"]) and z.loc[3, "plan_shortfall"] > 3
    works = pd.DataFrame({"dewatering_projects": [1.0] * 10 + [0.0], "dewatering_without_permit": [0.0] * 9 + [1.0, 0.0]})
    zw = HiddenWater().fit(works).indicator_z(works)["dewatering_unpermitted"]
    assert zw.iloc[9] == pytest.approx(EVENT_Z) and zw.iloc[0] == 0 and np.isnan(zw.iloc[10])
    # works pumping with no permit stay worth EVENT_Z where most works in the city hold none either
    most = pd.DataFrame({"dewatering_projects": [1.0] * 10, "dewatering_without_permit": [1.0] * 8 + [0.0] * 2})
    zm = HiddenWater().fit(most).indicator_z(most)["dewatering_unpermitted"]
    assert np.allclose(zm.iloc[:8], EVENT_Z) and (zm.iloc[8:] == 0).all()
    # with no known water in, the balance is the discharge itself: its level counts, a step on it adds nothing
    stepped = probe.assign(balance_dry_step=1.0, balance_dry_step_score=20.0)
    zs = det.indicator_z(stepped)["balance_step"]
    assert np.isnan(zs.loc[0]) and zs.loc[1] == pytest.approx(det.cap)
    # an ordinary small step, however sure, is no capped z: the spread of a step is at least BALANCE_STEP_SPREAD
    from models.indicators import BALANCE_STEP_SPREAD

    small = det.indicator_z(probe.assign(balance_dry_step=0.05, balance_dry_step_score=20.0))["balance_step"]
    assert small.loc[1] < 0.05 / BALANCE_STEP_SPREAD + 0.1 < 1.0  # (0.05 - the peers' median) / the spread


def test_hidden_water_scores_a_row_alone_as_in_a_batch_and_zero_without_its_columns():
    snap = _snapshot()
    det = HiddenWater().fit(snap)
    batch = det.anomaly_score(snap)
    assert np.array_equal(np.array([det.anomaly_score(snap.iloc[[i]])[0] for i in range(len(snap))]), batch)
    other = pd.DataFrame({"other": [1.0, 2.0, 3.0]})
    assert np.array_equal(HiddenWater().fit(other).anomaly_score(other), np.zeros(3))
    with pytest.raises(TypeError):
        HiddenWater().fit(np.ones((3, 2)))


def test_documented_breach_flags_the_case_tracks_evidence_only():
    X = pd.DataFrame({
        "abstraction_after_expiry_m3_12m": [0.0, 999.0, 0.0, 0.0, 0.0, 0.0],
        "tax_declared_without_permit_m3_4q": [0.0, 0.0, 0.0, 0.0, 99.0, 0.0],
        "permit_quota_used_max_12m": [0.9, np.nan, 1.5, np.nan, np.nan, 1.0],
        "tax_undeclared_share_4q": [0.05, np.nan, np.nan, 0.4, np.nan, 0.1],
    })
    # row 0: under every line; row 5: on the lines (quota exactly used, 10 % tolerance) is not a breach
    assert documented_breach(X).tolist() == [False, True, True, True, True, False]
    assert set(X.columns) <= set(DOCUMENTED_BREACH_COLUMNS)


def test_domain_detectors_are_the_hidden_water_detector():
    assert [d.name for d in domain_detectors()] == ["hidden_water"]


def test_nearest_distance_is_the_same_fixed_order_sum_for_one_row_and_for_many():
    """One-row scoring takes the loop-free path of nearest_distance; its sums must be the loop's, bit for bit."""
    from models.numerics import nearest_distance

    rng = np.random.default_rng(5)
    points = rng.random((300, 83))
    queries = rng.random((40, 83))

    def reference(q):  # the feature-by-feature sum, written out
        acc = np.zeros((len(q), len(points)))
        for j in range(q.shape[1]):
            acc += (q[:, [j]] - points[None, :, j]) ** 2
        return np.sqrt(acc.min(axis=1))

    alone = np.concatenate([nearest_distance(queries[[i]], points[:2]) for i in range(len(queries))])
    assert np.array_equal(alone, np.sqrt(np.array([min(((q - p) ** 2).cumsum()[-1] for p in points[:2])
                                                   for q in queries])))
    assert np.array_equal(nearest_distance(queries, points), reference(queries))  # the blocked loop
    assert np.array_equal(np.concatenate([nearest_distance(queries[[i]], points) for i in range(len(queries))]),
                          reference(queries))


def test_meter_indicators_read_a_fall_on_its_own_side_and_a_repeating_reading():
    """A meter's unexplained fall is judged by the honest meters' spread above their median (meters that grew
    run far below it and must not widen the yardstick); a reading repeated month after month is an event."""
    rng = np.random.default_rng(3)
    n = 400
    share = np.r_[rng.normal(0.0, 0.05, n // 2), -rng.exponential(3.0, n // 2)]  # half steady, half grew a lot
    snap = pd.DataFrame({
        "industry_code": "C17", "meter_unexplained_drop_share": share, "abstraction_m3_12m": 1000.0,
        "water_recent_share_3m": 1.0, "flat_reading_months_12m": 0.0,
    })
    det = HiddenWater().fit(snap)
    probe = snap.iloc[:3].copy()
    probe["meter_unexplained_drop_share"] = [0.5, 0.05, -2.0]  # fell by half; ordinary; grew
    probe["flat_reading_months_12m"] = [0.0, 4.0, 0.0]
    z = det.indicator_z(probe)
    assert z.loc[probe.index[0], "meter_drop"] > 3.5
    both_sides = tuple(dataclasses.replace(i, upper_spread=False) for i in HIDDEN_WATER_INDICATORS)
    assert HiddenWater(indicators=both_sides).fit(snap).indicator_z(probe).iloc[0]["meter_drop"] < 2.5
    assert z.loc[probe.index[2], "meter_drop"] == 0.0  # one-sided: a meter that grew says nothing
    assert z.loc[probe.index[1], "meter_flat"] > 2.0 and z.loc[probe.index[0], "meter_flat"] <= 0.0
    no_meter = probe.assign(abstraction_m3_12m=0.0)
    assert det.indicator_z(no_meter)["meter_flat"].isna().all()


def test_supply_drop_counts_the_water_lost_not_only_its_log():
    """The same fall to 40 % is a well's worth of water at 500 m3 a month and none at 5 m3: the drop is read as
    if VOLUME_FLOOR_M3 a month were added before and after, so the small user's indicator is far smaller."""
    from features.hidden_water import VOLUME_FLOOR_M3
    from models.indicators import _inflow_drop

    after = np.array([200.0, 2.0])  # m3 a month in the last 12 months, 40 % of before
    cols = {"inflow_step": np.log([0.4, 0.4]), "inflow_step_score": np.array([20.0, 20.0]),
            "inflow_after_share": np.array([0.4, 0.4]), "inflow_m3_12m": after * 12,
            "balance_dry_log_12m": np.array([np.nan, np.nan]), "water_recent_share_3m": np.array([1.0, 1.0]),
            "balance_dry_months_12m": np.array([0.0, 0.0]), "inflow_recovered_share": np.array([np.nan, np.nan])}
    drop = _inflow_drop(cols)
    big = np.log((200.0 / 0.4 + VOLUME_FLOOR_M3) / (200.0 + VOLUME_FLOOR_M3))
    assert drop[0] == pytest.approx(big) and drop[0] > 0.95 * -np.log(0.4)  # the floor barely matters at 200
    small = np.log((2.0 / 0.4 + VOLUME_FLOOR_M3) / (2.0 + VOLUME_FLOOR_M3))
    assert drop[1] == pytest.approx(small) and drop[1] < drop[0] / 3


def test_supply_drop_that_came_back_is_no_step():
    """A step down whose latest months climbed back over RECOVERED_SHARE of it was a pause (a shutdown that
    ended): read as no step. One that stayed down, or whose recovery is unknown, keeps its drop."""
    from models.indicators import RECOVERED_SHARE, _inflow_drop

    n = 3
    cols = {"inflow_step": np.full(n, np.log(0.3)), "inflow_step_score": np.full(n, 20.0),
            "inflow_after_share": np.full(n, 0.3), "inflow_m3_12m": np.full(n, 3000.0),
            "balance_dry_log_12m": np.full(n, np.nan), "water_recent_share_3m": np.ones(n),
            "balance_dry_months_12m": np.zeros(n),
            "inflow_recovered_share": np.array([RECOVERED_SHARE + 0.3, RECOVERED_SHARE - 0.3, np.nan])}
    drop = _inflow_drop(cols)
    assert drop[0] == 0.0
    assert drop[1] > 1.0 and drop[2] == pytest.approx(drop[1])


def test_supply_drop_net_of_its_trade_falling_at_the_same_month():
    """A fall most of its industry took in the same month (a downturn of the trade) is not one firm's well: the
    drop counts net of the industry's typical change then (the share that stepped times their median step); a
    firm falling alone in a steady trade keeps its whole drop, and so does one falling in another month."""
    from models.indicators import _inflow_drop, fit_shared_steps, shared_step

    n = 60  # 30 of a trade in a downturn at month 12 (25 follow it), 30 of a steady trade (one falls alone)
    step = np.zeros(n)
    since = np.full(n, 20.0)
    step[:25], since[:25] = np.log(0.6), np.array([11.0, 12.0, 13.0, 12.0, 12.0] * 5)
    step[29], since[29] = np.log(0.6), 30.0  # in the trade, but its own fall long before the downturn
    step[30], since[30] = np.log(0.6), 12.0  # alone in a steady trade
    trade = np.array(["C2614"] * 30 + ["C3670"] * 30, dtype=object)
    keys = [trade, np.array([c[:1] for c in trade], dtype=object)]
    cols = {"inflow_step": step, "months_since_inflow_step": since, "inflow_step_score": np.full(n, 20.0),
            "inflow_after_share": np.exp(step), "inflow_m3_12m": np.full(n, 6000.0),
            "balance_dry_log_12m": np.full(n, np.nan), "water_recent_share_3m": np.ones(n),
            "balance_dry_months_12m": np.zeros(n), "inflow_recovered_share": np.full(n, np.nan)}
    cols["inflow_peer_step"] = shared_step(fit_shared_steps(cols, keys), cols, keys)
    assert cols["inflow_peer_step"][3] < np.log(0.75)  # the trade's typical member fell by most of it
    assert cols["inflow_peer_step"][30] == pytest.approx(np.log(0.6) / 30)  # one firm is 1/30 of its trade
    drop = _inflow_drop(cols)
    assert drop[3] < 0.5 * drop[30]
    assert drop[29] == pytest.approx(drop[30], rel=0.1)
    assert np.isnan(shared_step(None, cols, keys)).sum() == 0 and not shared_step(None, cols, keys).any()


def test_balance_step_counts_the_meter_fall_the_bill_did_not_share():
    """A metered balance stepping up while bill and meter fell alike in the same months (bought reclaimed water
    taking a share of all the water) counts for nothing; a meter falling alone (bypassed) keeps the step, so does
    a step with no meter fall, or a meter fall in other months. The wet season between the meter's month and
    the balance's (dated at the next dry month) is "the same months"."""
    from models.indicators import _balance_step

    n = 4
    cols = {"balance_dry_step": np.full(n, 0.7), "balance_dry_step_score": np.full(n, 20.0),
            "months_since_balance_dry_step": np.full(n, 17.0),
            "meter_step": np.array([np.log(0.6), np.log(0.6), np.nan, np.log(0.6)]),
            "months_since_meter_step": np.array([14.0, 14.0, np.nan, 30.0]),
            "meter_unexplained_drop_share": np.array([0.0, 0.4, np.nan, 0.0]),
            "balance_dry_log_12m": np.full(n, 0.5), "balance_dry_ratio_12m": np.full(n, 1.6)}
    step = _balance_step(cols)
    assert step[0] == pytest.approx(0.0)  # fell alike: water bought elsewhere
    assert step[1] == pytest.approx(0.7) and step[2] == pytest.approx(0.7) and step[3] == pytest.approx(0.7)


def test_shared_step_of_many_rows_equals_the_dict_lookups_row_by_row():
    """A city's rows (one hash join per peer level) get exactly what each row gets alone (the dicts read key by
    key): groups too small or unknown, a class too small falling back to its section, steps in months no peer
    stepped in, rows with no step (NaN months), a group name holding the '|' the keys are joined with."""
    from models.indicators import SHARED_FEW_ROWS, fit_shared_steps, shared_step

    rng = np.random.default_rng(3)
    n = 5000
    trade = rng.choice(np.array(["C2614", "C2619", "C3670", "C3671", "D4410", "a|1", "", "E4700"], dtype=object), n,
                       p=[0.3, 0.005, 0.25, 0.2, 0.1, 0.1, 0.04, 0.005])
    keys = [trade, np.array([c[:1] for c in trade], dtype=object)]
    since = rng.integers(0, 36, n).astype(float)
    since[rng.random(n) < 0.3] = np.nan
    step = np.where(np.isnan(since), np.nan, np.log(rng.uniform(0.3, 1.2, n)))
    cols = {"inflow_step": step, "months_since_inflow_step": since}
    levels = fit_shared_steps(cols, keys)
    assert len(levels[0][0]) > 20  # falls shared at some months, in several classes
    many = shared_step(levels, cols, keys)
    alone = np.concatenate([shared_step(levels, {k: v[i : i + SHARED_FEW_ROWS] for k, v in cols.items()},
                                        [key[i : i + SHARED_FEW_ROWS] for key in keys])
                            for i in range(0, n, SHARED_FEW_ROWS)])
    assert (many < 0).sum() > 100
    np.testing.assert_array_equal(many, alone)
    # a model fitted on other rows: groups and months this city has not
    other = [np.array(["X9999"] * n, dtype=object), np.array(["X"] * n, dtype=object)]
    assert not shared_step(levels, cols, other).any()


def test_ecod_marginals_alone_equal_the_full_fit_and_refuse_to_score():
    X, _ = _planted()
    X[np.random.default_rng(2).random(X.shape) < 0.05] = np.nan
    full, marginals = ECOD().fit(X), ECOD().fit_marginals(X)
    assert np.array_equal(marginals.sorted_, full.sorted_, equal_nan=True)
    assert np.array_equal(marginals.n_valid_, full.n_valid_)
    assert not hasattr(marginals, "offset_")
    with pytest.raises(NotFittedError):  # no offset: its outlier methods do not answer
        marginals.anomaly_score(X)
