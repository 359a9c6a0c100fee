"""Detectors on generated data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.detectors import (
    ECOD,
    ComplianceEvidence,
    IsolationForestDetector,
    LevelShift,
    PeerZScore,
    WaterBalanceExcess,
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


def _snapshot():
    """Two industries: C17 discharges half its inflow, C26 nine tenths. Peers have a 1/3 wet share."""
    rng = np.random.default_rng(0)
    rows = []
    for industry, k in (("C17", 0.5), ("C26", 0.9)):
        for _ in range(40):
            supply = rng.uniform(1_000, 5_000)
            rows.append({"industry_code": industry, "supply_m3_12m": supply, "abstraction_m3_12m": 0.0,
                         "discharge_m3_12m": k * supply, "wet_season_discharge_share_12m": 1 / 3})
    return pd.DataFrame(rows)


def test_water_balance_excess_uses_the_industry_coefficient():
    snap = _snapshot()
    det = WaterBalanceExcess().fit(snap)
    assert det.coefficient_["C17"] == pytest.approx(0.5)
    assert det.coefficient_["C26"] == pytest.approx(0.9)
    probe = pd.DataFrame({
        "industry_code": ["C17", "C26", "C17"],
        "supply_m3_12m": [1_000.0, 1_000.0, 1_000.0],
        "abstraction_m3_12m": [np.nan, 0.0, 500.0],  # metered abstraction explains the third's discharge
        "discharge_m3_12m": [1_000.0, 1_000.0, 750.0],
        "wet_season_discharge_share_12m": [1 / 3, 1 / 3, 1 / 3],
    })
    s = det.anomaly_score(probe)
    # discharge twice what a C17 peer would send: log(1 + 1000) - log(1 + 500)
    assert s[0] == pytest.approx(np.log1p(1000) - np.log1p(500))
    assert 0 < s[1] < s[0]  # same ratio is ordinary for a C26 plant: only 1/0.9 above
    assert s[2] == pytest.approx(0.0)


def test_water_balance_excess_discounts_rain_inflow():
    det = WaterBalanceExcess().fit(_snapshot())
    probe = pd.DataFrame({
        "industry_code": ["C17", "C17"], "supply_m3_12m": [1_000.0, 1_000.0], "abstraction_m3_12m": [0.0, 0.0],
        "discharge_m3_12m": [800.0, 800.0], "wet_season_discharge_share_12m": [1 / 3, 0.6],
    })
    s = det.anomaly_score(probe)
    assert s[0] > 0.3
    assert s[1] == pytest.approx(0.0)  # 60 % in the wet season: the excess is rain water


def test_level_shift_scores_recent_significant_rises():
    X = pd.DataFrame({
        "balance_shift": [0.0, 0.6, 0.6, 0.6, -0.6],
        "balance_shift_score": [0.0, 8.0, 8.0, 1.0, 8.0],
        "months_since_balance_shift": [np.nan, 2.0, 20.0, np.nan, 2.0],
    })
    s = LevelShift().fit(X).anomaly_score(X)
    assert s[0] == 0 and s[3] == 0 and s[4] == 0  # none, not significant, falling balance
    assert s[1] > s[2] > 0  # a recent shift outranks an old one


def test_peer_z_is_robust_and_within_industry():
    X = pd.DataFrame({"industry_code": ["A"] * 10 + ["B"] * 10,
                      "use": [10.0, 11, 9, 10, 12, 8, 10, 11, 9, 10] + [100.0, 110, 90, 100, 120, 80, 100, 110, 90, 100]})
    det = PeerZScore(features=["use"], min_peers=5).fit(X)
    probe = pd.DataFrame({"industry_code": ["A", "B", "Z"], "use": [10.0 + 3 * 1.4826, 100.0, 10.0]})
    z = det.z(probe)[:, 0]
    assert z[0] == pytest.approx(3.0)  # median 10, MAD 1
    assert z[1] == pytest.approx(0.0)  # 100 is ordinary among B
    assert z[2] < 0  # unknown industry: the city-wide median (55) is the reference
    assert det.anomaly_score(probe)[0] == pytest.approx(3.0)


def test_domain_detectors_score_zero_without_their_columns():
    X = pd.DataFrame({"other": [1.0, 2.0, 3.0]})
    for det in (WaterBalanceExcess(), LevelShift(), ComplianceEvidence()):
        assert np.array_equal(det.fit(X).anomaly_score(X), np.zeros(3))
    with pytest.raises(TypeError):
        WaterBalanceExcess().fit(np.ones((3, 2)))


def test_compliance_evidence_severity_exact():
    X = pd.DataFrame({
        "abstraction_after_expiry_m3_12m": [0.0, 999.0, 0.0, 0.0, 0.0, 0.5],
        "tax_declared_without_permit_m3_4q": [0.0, 0.0, 0.0, 0.0, 99.0, 0.0],
        "permit_quota_used_max_12m": [0.9, np.nan, 1.5, 3.0, np.nan, 1.0],
        "permit_quota_pace_max_3m": [1.1, np.nan, 1.5, 3.0, np.nan, 1.0],
        "tax_undeclared_share_4q": [0.05, np.nan, np.nan, 0.4, np.nan, 0.1],
    })
    det = ComplianceEvidence().fit(X)
    parts = det.parts(X)
    assert parts.loc[1, "abstraction_after_expiry_m3_12m"] == pytest.approx(1.5)  # 1 + log10(1000) / 6
    assert parts.loc[4, "tax_declared_without_permit_m3_4q"] == pytest.approx(1 + 2 / 6)
    assert parts.loc[2, "permit_quota_used_max_12m"] == pytest.approx(1.5)
    assert parts.loc[3, "permit_quota_used_max_12m"] == pytest.approx(2.0)  # share over the line capped at 1
    assert parts.loc[2, "permit_quota_pace_max_3m"] == pytest.approx(0.5 * 1.3)  # weak: pace over 1.2
    assert parts.loc[3, "tax_undeclared_share_4q"] == pytest.approx(1.3)
    score = det.anomaly_score(X)
    # row 0: under every line; row 5: on the lines (quota exactly used, 10 % tolerance, < 1 m³) is not a breach
    assert score[0] == 0 and score[5] == 0
    assert score[1] == pytest.approx(1.5) and score[2] == pytest.approx(1.5 + 0.1 * 0.65)
    assert score[3] == pytest.approx(2.0 + 0.1 * (1.3 + 0.5 * 2.0))  # largest item plus a tenth of the others
    assert (score[1:5] >= 1).all()  # any documented breach outranks every merely unusual row
    assert ComplianceEvidence.evidence and ComplianceEvidence().fit(X[["tax_undeclared_share_4q"]]).anomaly_score(
        X[["tax_undeclared_share_4q"]]).tolist() == [0, 0, 0, pytest.approx(1.3), 0, 0]


def test_domain_detectors_include_the_evidence_detector():
    names = [d.name for d in domain_detectors()]
    assert "compliance_evidence" in names and "water_balance_excess" in names
    assert sum(bool(getattr(d, "evidence", False)) for d in domain_detectors()) == 1
