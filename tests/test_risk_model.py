"""RiskModel on generated data with known answers, reasons, and the ADBench bar (slow)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from conftest import ADBENCH_DIR  # ../shared, or WATERWATCH_SHARED in a worktree
from features.dictionary import DATA_DICTIONARY
from models import RiskModel
from models.detectors import domain_detectors
from models.reason_texts import FALL_SHOWN, _volume
from models.reasons import INDICATOR_REASONS, _pct, _times, explain, explain_reasons

INDICATOR_CODES = set(INDICATOR_REASONS)



def _city(n=1500, seed=0, inspected=0.2):
    """A snapshot-like table: 6 % violators discharge 2-4x what their supply and metered abstraction
    explain (since a step up some months ago); inspections (biased to the odd ones) know some of them."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["C17", "C26", "D44"], n)
    k = pd.Series(industry).map({"C17": 0.5, "C26": 0.9, "D44": 0.7}).to_numpy()
    supply = rng.lognormal(8, 1, n)
    abstraction = rng.lognormal(7, 1, n) * (rng.random(n) < 0.4)
    bad = rng.random(n) < 0.06
    excess = np.where(bad, rng.uniform(2, 4, n), 1.0)
    discharge = k * (supply + abstraction) * rng.lognormal(0, 0.1, n) * excess
    ratio = discharge / (supply + abstraction)
    X = pd.DataFrame({
        "industry_code": industry,
        "supply_m3_12m": supply,
        "abstraction_m3_12m": abstraction,
        "discharge_m3_12m": discharge,
        "inflow_m3_12m": supply + abstraction,
        "balance_ratio_12m": ratio,
        "balance_dry_ratio_12m": ratio,
        "balance_dry_log_12m": np.log(ratio),
        "balance_dry_step": np.where(bad, np.log(excess), rng.normal(0, 0.05, n)),
        "balance_dry_step_score": np.where(bad, rng.uniform(8, 20, n), rng.uniform(0.5, 3, n)),
        "months_since_balance_dry_step": rng.integers(6, 30, n).astype(float),
        "wet_season_discharge_share_12m": rng.uniform(0.3, 0.37, n),
        "employees": rng.integers(5, 500, n).astype(float),
        "noise": rng.normal(size=n),
    })
    X.loc[rng.random(n) < 0.05, "employees"] = np.nan
    y = np.full(n, -1.0)
    looked = rng.random(n) < np.where(bad, 2 * inspected, inspected)
    y[looked] = bad[looked].astype(float)
    return X, y, bad


def test_cold_start_uses_detectors_alone_and_stays_in_unit_interval():
    X, _, bad = _city()
    num = X.drop(columns="industry_code")
    model = RiskModel(random_state=0).fit(num, np.full(len(X), -1))
    p = model.predict_proba(num)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(axis=1), 1.0)
    assert (p >= 0).all() and (p <= 1).all()
    assert model.classifier_ is None and model.blend_ == 0.0
    assert list(model.classes_) == [0, 1]
    assert roc_auc_score(bad, p[:, 1]) > 0.75  # the planted excess is an outlier of balance_ratio_12m
    assert p[:, 1].mean() == pytest.approx(model.prior_, abs=0.02)  # rank mapped onto the prior


def test_labels_lift_the_ranking_and_the_blend_follows_label_count():
    X, y, bad = _city()
    num = X.drop(columns="industry_code")
    few = np.where((y == -1) | (np.cumsum(y == 1) > 2), -1.0, y)  # only the first 2 violations known
    cold = RiskModel(random_state=0).fit(num, np.full(len(X), -1.0))
    some = RiskModel(random_state=0).fit(num, few)
    many = RiskModel(random_state=0).fit(num, y)
    assert 0 < some.blend_ < many.blend_ < 1
    assert many.proximity_share_ <= many.min_labels / many.n_positive_  # trees take over with many labels
    unseen = y == -1
    auc = {m: roc_auc_score(bad[unseen], model.predict_proba(num[unseen])[:, 1])
           for m, model in (("cold", cold), ("many", many))}
    assert auc["many"] > max(auc["cold"], 0.95)
    assert many.calibrator_ is not None  # enough violations and clean verdicts for Platt scaling


def test_proximity_is_trusted_when_known_violations_are_of_one_kind():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    y = np.full(2000, -1.0)
    # one kind: a tight cluster that no marginal tail betrays
    one_kind = X.copy()
    one_kind[:8] = [0.8, -0.8, 0.8, -0.8] + rng.normal(scale=0.05, size=(8, 4))
    # many kinds: each violation far out along its own axis and sign
    many_kinds = X.copy()
    for i in range(8):
        many_kinds[i] = 0.0
        many_kinds[i, i % 4] = 6.0 if i < 4 else -6.0
    y[:8] = 1
    share = {name: RiskModel(random_state=0).fit(data, y).proximity_share_
             for name, data in (("one", one_kind), ("many", many_kinds))}
    assert share["one"] > 0.6 and share["many"] < 0.2
    y1 = np.full(2000, -1.0)
    y1[0] = 1
    assert RiskModel(random_state=0).fit(one_kind, y1).proximity_share_ == 1.0  # a lone example: proximity only


def test_probability_is_monotone_in_the_blended_score_and_predict_thresholds():
    X, y, _ = _city(seed=1)
    num = X.drop(columns="industry_code")
    for labels in (y, np.full(len(X), -1.0)):
        model = RiskModel(random_state=0).fit(num, labels)
        s = model.score_samples(num)
        p = model.predict_proba(num)[:, 1]
        order = np.argsort(s, kind="stable")
        assert (np.diff(p[order]) >= -1e-12).all()
        assert np.array_equal(model.predict(num), (p > model.threshold).astype(int))
        assert np.array_equal(model.predict(num), (model.decision_function(num) > 0).astype(int))
        assert np.isfinite(model.decision_function(num)).any() and (model.decision_function(num) < 0).any()


def test_same_seed_same_scores_and_joblib_round_trip(tmp_path):
    X, y, _ = _city(seed=2)
    num = X.drop(columns="industry_code")
    a = RiskModel(random_state=7).fit(num, y).predict_proba(num)[:, 1]
    model = RiskModel(random_state=7).fit(num, y)
    b = model.predict_proba(num)[:, 1]
    assert np.array_equal(a, b)
    joblib.dump(model, tmp_path / "m.joblib")
    assert np.array_equal(joblib.load(tmp_path / "m.joblib").predict_proba(num)[:, 1], b)
    c = RiskModel(random_state=8).fit(num, y).predict_proba(num)[:, 1]
    assert not np.array_equal(b, c)  # the seed reaches the forest and the trees


def test_numpy_input_nan_params_and_sample_weight():
    X, y, _ = _city(seed=3)
    arr = X.drop(columns="industry_code").to_numpy()
    model = RiskModel(random_state=0, n_estimators=50).fit(arr, y)
    assert model.get_params()["n_estimators"] == 50
    assert clone(model).set_params(blend=0.3).get_params()["blend"] == 0.3
    p = model.predict_proba(arr)[:, 1]
    assert np.isfinite(p).all()
    with pytest.raises(ValueError):
        model.predict_proba(arr[:, :3])
    w = np.where(arr[:, 0] > np.median(arr[:, 0]), 5.0, 1.0)  # inverse queue propensities
    weighted = RiskModel(random_state=0, n_estimators=50).fit(arr, y, sample_weight=w)
    assert not np.array_equal(weighted.predict_proba(arr)[:, 1], p)


def test_hidden_water_leads_the_cold_ranking_and_reasons_quote_their_numbers():
    X, y, bad = _city(seed=4)
    cold = RiskModel(random_state=0, detectors=domain_detectors()).fit(X, np.full(len(X), -1))
    assert cold.detector_names_ == ["hidden_water"]  # generic detectors stay out beside a domain detector
    assert roc_auc_score(bad, cold.predict_proba(X)[:, 1]) > 0.95
    model = RiskModel(random_state=0, detectors=domain_detectors(), monotone_detectors=True).fit(X, y)
    contrib = model.contributions(X)
    assert contrib.shape == (len(X), model.n_features_in_ + 1 + len(model.indicator_names_))
    assert "industry_code" not in contrib.columns  # text columns feed detectors, not the trees

    top = np.argsort(-model.predict_proba(X)[:, 1])[:20]
    found = explain_reasons(model, X.iloc[top], top=3)
    assert len(found) == 20 and all(1 <= len(r) <= 3 for r in found)
    ratio = X["balance_dry_ratio_12m"].iloc[top].to_numpy()
    # the planted excess is named, with the row's own ratio in the sentence and as the code's value
    named = [next((r for r in rs if r.code == "balance_excess"), None) for rs in found]
    assert sum(r is not None for r in named) >= 15
    for r, v in zip(named, ratio):
        if r is not None:
            assert r.value == pytest.approx(v) and f"{v:.1f}倍" in r.text_zh and f"{v:.1f}x" in r.text_en
    assert explain(model, X.iloc[top[:3]]) == [[r.text_zh for r in rs] for rs in found[:3]]


def test_reasons_words_agree_with_their_numbers():
    """Issue #9 item 7: each sentence quotes the code's value in the code's unit, and says "rose" only for a
    rise and "fell" only for a fall."""
    X, y, _ = _city(seed=7)
    model = RiskModel(random_state=0, detectors=domain_detectors()).fit(X, y)
    percent = {"meter_drop", "supply_drop", "plan_shortfall", "quota_shortfall"}
    seen = set()
    for rs in explain_reasons(model, X, top=3):
        for r in rs:
            seen.add(r.code)
            if r.code in INDICATOR_CODES:
                # shares and multiples as the reasons print them (a non-zero one never as 0 %, models.reasons)
                shown = {"meter_flat": f"{r.value:.0f}", "use_per_employee": _volume(r.value)}.get(r.code) or (
                    _pct(r.value) if r.code in percent else _times(r.value))
            else:
                if r.code in DATA_DICTIONARY and DATA_DICTIONARY[r.code]["reason_zh"]:
                    spec = re.search(r"\{value:([^}]*)\}", DATA_DICTIONARY[r.code]["reason_zh"]).group(1)
                elif r.code in ("known_use", "discharge_without_inflow", "documented_breach"):
                    spec = ".0%" if r.unit == "share" else ",.0f"
                else:  # a feature the dictionary does not describe
                    spec = ",.3g"
                shown = format(r.value, spec)
            assert shown in r.text_zh and shown in r.text_en, (shown, r)  # both languages quote the value
            if r.code == "balance_step":
                assert ("升至" in r.text_zh) == (r.value >= 1.0) and ("rose" in r.text_en) == (r.value >= 1.0)
            if "降至" in r.text_zh and r.code in INDICATOR_CODES:  # "fell" only for a fall worth the word
                assert r.value <= FALL_SHOWN and "fell" in r.text_en, r
    assert {"balance_excess", "balance_step"} <= seen


def test_a_documented_breach_alone_does_not_lift_an_entity_and_is_named_last():
    from training.backtest import SNAPSHOT_DEFAULTS, make_model, split_snapshot

    X, y, bad = _city(seed=5)
    snap = X.assign(name="某公司", district="德城区", industry_section="C", size_band="small")
    ordinary = np.flatnonzero(~bad)[:12]
    breached = snap.copy()
    breached["abstraction_after_expiry_m3_12m"] = 0.0
    breached.loc[breached.index[ordinary], "abstraction_after_expiry_m3_12m"] = np.linspace(500.0, 30_000.0, 12)
    meta = ["name", "district", "industry_code", "industry_section", "employees", "size_band"]
    Xb, _ = split_snapshot(breached, meta)
    assert "abstraction_after_expiry_m3_12m" not in Xb.columns  # the model never reads it
    assert SNAPSHOT_DEFAULTS["monotone_detectors"]
    model = make_model({}, 0).fit(Xb, y)
    base, _ = split_snapshot(snap, meta)
    assert np.array_equal(model.predict_proba(Xb)[:, 1], make_model({}, 0).fit(base, y).predict_proba(base)[:, 1])
    # named for information after the hidden-water reasons, with its volume
    reasons = explain_reasons(model, pd.concat([Xb, breached[["abstraction_after_expiry_m3_12m"]]],
                                               axis=1).iloc[ordinary[-1:]])
    assert reasons[0][-1].code == "documented_breach" and "30,000立方米" in reasons[0][-1].text_zh


def test_every_row_gets_reasons_in_the_same_form_even_an_ordinary_one():
    X, y, bad = _city(seed=6)
    model = RiskModel(random_state=0, detectors=domain_detectors()).fit(X, y)
    ordinary = np.argsort(model.predict_proba(X)[:, 1])[:30]  # the least risky rows
    found = explain_reasons(model, X.iloc[ordinary], top=3)
    assert all(1 <= len(r) <= 3 for r in found)
    assert all(re.search(r"\d", r.text_zh) and r.code for rs in found for r in rs)
    # nothing tells an exploratory lead from a top one: the same codes, no "low risk" sentence
    top = explain_reasons(model, X.iloc[np.argsort(-model.predict_proba(X)[:, 1])[:30]], top=3)
    vocabulary = INDICATOR_CODES | set(X.columns) | {"known_use", "discharge_without_inflow"}
    assert all(r.code in vocabulary for rs in found + top for r in rs)
    assert not any("风险" in r.text_zh for rs in found for r in rs)


def test_reasons_of_a_generic_table_come_from_the_data_dictionary():
    X, y, _ = _city(seed=5)
    num = X.drop(columns="industry_code")[["supply_m3_12m", "abstraction_m3_12m", "discharge_m3_12m",
                                           "balance_ratio_12m", "employees", "noise"]]
    model = RiskModel(random_state=0).fit(num, y)
    top = np.argsort(-model.predict_proba(num)[:, 1])[:20]
    found = explain_reasons(model, num.iloc[top], top=3)
    ratio = num["balance_ratio_12m"].iloc[top].to_numpy()
    hits = [i for i, rs in enumerate(found)
            if any(r.code == "balance_ratio_12m" and f"排水量是供水与取水量之和的{ratio[i]:.1f}倍" in r.text_zh for r in rs)]
    assert len(hits) >= 10


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_adbench.py"
    spec = importlib.util.spec_from_file_location("bench_adbench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_adbench_beats_lightgbm_default_and_best_unsupervised(capsys, report_metric):
    if not ADBENCH_DIR.is_dir():
        pytest.skip(f"ADBench data not found at {ADBENCH_DIR}")
    bench = _bench()
    rows = bench.table(folder=ADBENCH_DIR)
    text = bench.render(rows)
    with capsys.disabled():
        print("\nADBench, AUCROC % (RiskModel vs default LightGBM and the best published unsupervised)\n" + text)
    for line in text.splitlines()[2:]:
        report_metric("adbench " + line)
    for r in rows:
        bars = [r["lightgbm"], r["best_unsupervised"]] + ([r["published_lightgbm"]] if r["published_lightgbm"] else [])
        assert r["risk_model"] > max(bars), r


def test_every_training_row_scored_alone_equals_its_batch_score():
    """Issue #10 item 1: one row through POST /scores/predict must get its leads.csv score, bit for bit."""
    X, y, _ = _city(n=600, seed=4, inspected=0.3)
    model = RiskModel(random_state=0, detectors=domain_detectors()).fit(X, y)
    assert model.classifier_ is not None and model.proximity_share_ > 0 and model.calibrator_ is not None
    batch = model.predict_proba(X)[:, 1]
    alone = np.array([model.predict_proba(X.iloc[[i]])[0, 1] for i in range(len(X))])
    assert np.array_equal(alone, batch)
    half = model.predict_proba(X.iloc[::2])[:, 1]
    assert np.array_equal(half, batch[::2])


def test_with_domain_detectors_ecod_keeps_only_the_feature_ranks_and_scores_do_not_change(monkeypatch):
    """Beside domain detectors ECOD is no detector, only the features' ranks: it is fitted without its offset (every
    training row scored), and every number of the model is what the full ECOD fit gives."""
    from models.detectors import ECOD

    X, y, _ = _city(n=600, seed=4, inspected=0.3)
    model = RiskModel(random_state=0, detectors=domain_detectors()).fit(X, y)
    assert "ecod" not in model.detector_names_ and not hasattr(model.ecod_, "offset_")
    monkeypatch.setattr(ECOD, "fit_marginals", ECOD.fit)
    full = RiskModel(random_state=0, detectors=domain_detectors()).fit(X, y)
    assert hasattr(full.ecod_, "offset_")
    assert np.array_equal(model.predict_proba(X), full.predict_proba(X))
    assert np.array_equal(model.contributions(X).to_numpy(), full.contributions(X).to_numpy(), equal_nan=True)
    generic = RiskModel(random_state=0).fit(X, y)  # no domain detector: ECOD is one, with its offset
    assert "ecod" in generic.detector_names_ and hasattr(generic.ecod_, "offset_")


def test_feature_dicts_scored_one_at_a_time_equal_the_bundle_batch_score():
    """The service's fast path (ModelBundle.predict_records: dicts straight into one float block, no DataFrame)
    gives each row, sent alone, its batch score bit for bit, a missing industry code included."""
    from training.artifacts import FeatureTypeError, ModelBundle

    X, y, _ = _city(n=300, seed=6, inspected=0.3)
    X.loc[[3, 40], "industry_code"] = [None, np.nan]  # an industry code the caller does not know
    bundle = ModelBundle(RiskModel(random_state=0, detectors=domain_detectors()).fit(X, y), list(X.columns))
    batch = bundle.predict(X).to_numpy()  # the pipeline's path (more than 64 rows: the DataFrame matrix)
    records = [{k: (None if not isinstance(v, str) and pd.isna(v) else v if isinstance(v, str) else float(v))
                for k, v in row.items()} for row in X.to_dict("records")]
    alone = np.array([bundle.predict_records([r])[0] for r in records])
    assert np.array_equal(alone, batch)
    assert np.array_equal(bundle.predict_records(records), batch)
    assert np.array_equal(bundle.predict(X.iloc[[3]]).to_numpy(), batch[[3]])  # the small-frame path too
    with pytest.raises(FeatureTypeError) as wrong:
        bundle.predict_records([records[0], {**records[1], "noise": "abc"}])
    assert (wrong.value.feature, wrong.value.row) == ("noise", 1)


def test_labels_and_weights_are_validated_with_clear_errors():
    X, y, _ = _city(n=400, seed=5, inspected=0.3)
    num = X.drop(columns="industry_code")
    with pytest.raises(ValueError, match="NaN"):
        RiskModel().fit(num, np.where(y == -1, np.nan, y))  # never-inspected is -1, not NaN
    three = y.copy()
    three[0] = 2
    with pytest.raises(ValueError, match="binary"):
        RiskModel().fit(num, three)
    with pytest.raises(ValueError, match="continuous"):
        RiskModel().fit(num, np.linspace(0, 1, len(num)))
    with pytest.raises(ValueError, match="one class"):
        RiskModel().fit(num, np.ones(len(num)))
    with pytest.raises(ValueError, match="(?i)negative"):
        RiskModel().fit(num, y, sample_weight=np.full(len(num), -1.0))
    with pytest.raises(ValueError, match="rows"):
        RiskModel().fit(num, y[:-1])
    # zero weights are kept: a zero-weighted violation is not a training positive
    first = int(np.flatnonzero(y == 1)[0])
    w = np.ones(len(num))
    w[first] = 0.0
    assert RiskModel(n_estimators=20).fit(num, y, sample_weight=w).n_positive_ == int((y == 1).sum()) - 1
    # any two class labels, -1 still meaning never inspected; classes_ and predict speak them
    named = np.array([{1: "违规", 0: "合规"}.get(int(v), -1) for v in y], dtype=object)
    model = RiskModel(n_estimators=20).fit(num, named)
    assert list(model.classes_) == ["合规", "违规"] and set(model.predict(num)) <= {"合规", "违规"}
    # random_state may be a RandomState, as everywhere in scikit-learn
    a = RiskModel(n_estimators=20, random_state=np.random.RandomState(3)).fit(num, y).predict_proba(num)
    b = RiskModel(n_estimators=20, random_state=np.random.RandomState(3)).fit(num, y).predict_proba(num)
    assert np.array_equal(a, b)
