"""Temporal backtests: would the list we could have made at a past cut-off have found what came later?

At each cut-off c the model sees only entity snapshots built from data before c and
labels from inspections before c. It is judged on the officers' question: of the top
k entities on the list, how many were violators? Two targets, named apart:

- ``inspected``: hidden-type violations (``training.labels.HIDDEN_TYPES``: private wells, abstraction
  with no permit, meter tampering) that inspections found on or after c (what a real city has); few
  entities are visited, so unvisited leads count as misses (a lower bound), and ``labelled_at_k`` says
  how many of the top k carry any verdict at all.
- ``truth``: evaluation only (generated cities): entities whose planted hidden-type violation began
  before c + horizon (default horizon 0: only a violation already going on at c leaves
  a trace the list could have seen). The platform never reads it; tests and benchmarks pass it in.

Record-visible violations (expired permit in use, quota overrun, tax gap) are the case track's: they are
neither a target nor a label here, and the model never reads the snapshot columns that document them.

Entities already confirmed as violators before c are left out of the ranking evaluated:
re-finding them is not a lead. Baselines are computed in the same run on the same
entities: random (its expectation, exact) and the naive discharge/supply ratio rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from training.labels import HIDDEN_TYPES, hidden_violation, inspection_labels, label_vector, merge_inspections

NAIVE = "naive_discharge_supply_ratio"
# a precision read off fewer hidden-type violations than this is noise, not a measurement: such metrics are
# left empty (NaN: not logged to MLflow, "not measured" in reports), and Optuna does not run on them
MIN_LABELS = 10
SCORERS = ("model", "naive", "random")
TARGETS = ("inspected", "truth")
FIXED_KS = (50, 100, 200)


@dataclass
class Cutoff:
    """Everything one cut-off needs: features and labels known before it, outcomes after it."""

    cutoff: pd.Timestamp
    X: pd.DataFrame  # float features, index uscc
    meta: pd.DataFrame  # SNAPSHOT_META columns, same index
    y: pd.Series  # 1 / 0 / -1 known before the cut-off
    weight: pd.Series
    found: pd.Series  # bool: a violation found by inspection on/after the cut-off
    verdict: pd.Series  # bool: any decisive verdict (violation or no_violation) on/after the cut-off
    truth: pd.Series | None = None  # bool, evaluation only

    @property
    def naive(self) -> pd.Series:
        return self.X[NAIVE] if NAIVE in self.X else pd.Series(np.nan, index=self.X.index)

    @property
    def evaluated(self) -> np.ndarray:
        """Entities whose discovery would be news: not already confirmed before the cut-off."""
        return (self.y != 1).to_numpy()


@dataclass
class BacktestResult:
    metrics: pd.DataFrame  # one row per (cutoff, target, scorer); metric columns
    scores: dict[pd.Timestamp, pd.Series]  # model scores per cut-off, index uscc
    capacity_k: int
    audit: pd.DataFrame = field(default_factory=pd.DataFrame)
    importance: pd.Series | None = None

    def capacity_precision(self, target: str = "inspected", scorer: str = "model") -> pd.Series:
        rows = self.metrics[(self.metrics["target"] == target) & (self.metrics["scorer"] == scorer)]
        return rows.set_index("cutoff")[f"precision_at_{self.capacity_k}"]

    def steadiness(self, target: str = "inspected", scorer: str = "model") -> float:
        """Mean minus standard deviation of precision at capacity across cut-offs: rewards lists that
        are good every time, not once. NaN when any cut-off's precision was not measurable."""
        p = self.capacity_precision(target, scorer)
        return float(p.mean() - p.std(ddof=0)) if len(p) and p.notna().all() else float("nan")

    def positives(self, target: str = "inspected") -> pd.Series:
        """Per cut-off: how many target violations its window holds (the evidence behind its metrics)."""
        rows = self.metrics[(self.metrics["target"] == target) & (self.metrics["scorer"] == "model")]
        return rows.set_index("cutoff")["positives"]

    def measurable(self, target: str = "inspected") -> bool:
        """Every cut-off's window holds at least MIN_LABELS target violations."""
        p = self.positives(target)
        return bool(len(p)) and bool((p >= MIN_LABELS).all())

    def summary(self) -> pd.DataFrame:
        """Mean and std across cut-offs of every metric, per target and scorer (a std needs 2+ measured cut-offs)."""
        numeric = self.metrics.drop(columns=["cutoff"])
        grouped = numeric.groupby(["target", "scorer"], sort=False)
        mean = grouped.mean().add_suffix("_mean")
        std = grouped.std(ddof=0).where(grouped.count() >= 2).add_suffix("_std")  # one value has no spread, not 0
        return pd.concat([mean, std], axis=1)

    def flat_metrics(self) -> dict[str, float]:
        """Names MLflow accepts: <target>.<scorer>.<metric>[.<cutoff>] plus means and steadiness."""
        out: dict[str, float] = {}
        for row in self.metrics.itertuples(index=False):
            row = row._asdict()
            cut = pd.Timestamp(row.pop("cutoff")).strftime("%Y-%m")
            target, scorer = row.pop("target"), row.pop("scorer")
            for name, value in row.items():
                if pd.notna(value):
                    out[f"{target}.{scorer}.{name}.{cut}"] = float(value)
        for (target, scorer), row in self.summary().iterrows():
            for name, value in row.items():
                if pd.notna(value):
                    out[f"{target}.{scorer}.{name}"] = float(value)
        for target in self.metrics["target"].unique():
            if np.isfinite(self.steadiness(target)):
                out[f"{target}.model.steadiness_at_capacity"] = self.steadiness(target)
        return out


# -- building the cut-offs ------------------------------------------------------


def cutoff_dates(as_of: pd.Timestamp, n: int, step_months: int = 6) -> list[pd.Timestamp]:
    """``n`` cut-offs every ``step_months`` before ``as_of``, oldest first (the last one is as_of - step)."""
    as_of = pd.Timestamp(as_of)
    return [as_of - pd.DateOffset(months=step_months * i) for i in range(n, 0, -1)]


def truth_targets(truth: pd.DataFrame, cutoff: pd.Timestamp, horizon_months: int) -> set[str]:
    """Evaluation only: entities whose planted hidden-type violation started before cutoff + horizon."""
    since = pd.to_datetime(truth["since_month"].astype("str"), format="mixed")
    limit = pd.Timestamp(cutoff) + pd.DateOffset(months=horizon_months)
    hidden = truth["violation_type"].astype("str").isin(HIDDEN_TYPES)
    return set(truth.loc[(since < limit) & hidden, "uscc"].astype("str"))


def outcomes_after(inspections: pd.DataFrame, cutoff: pd.Timestamp, end: pd.Timestamp, index: pd.Index):
    """Per entity: a hidden-type violation found, and any decisive verdict, in [cutoff, end)."""
    window = inspections[(inspections["inspected_on"] >= cutoff) & (inspections["inspected_on"] < end)]
    found = index.isin(window.loc[hidden_violation(window), "uscc"])
    verdict = index.isin(window.loc[window["outcome"] != "unreachable", "uscc"])
    return pd.Series(found, index=index), pd.Series(verdict, index=index)


# meta columns the model also reads: the domain detectors compare an entity with its industry peers (text) and
# its water use with its registered staff (a number)
MODEL_TEXT_COLUMNS = ("industry_code",)
MODEL_META_NUMBERS = ("employees",)


def split_snapshot(snapshot: pd.DataFrame, meta_columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model input (float features plus the peer-group text columns) and the meta columns for audits. The
    columns that document a breach (``models.breaches.DOCUMENTED_BREACH_COLUMNS``) are not model input: the
    case track acts on them, and a documented breach alone must not lift an entity in the ranking."""
    from models.breaches import DOCUMENTED_BREACH_COLUMNS

    meta = snapshot[[c for c in meta_columns if c in snapshot.columns]]
    dropped = list(meta.columns) + [c for c in DOCUMENTED_BREACH_COLUMNS if c in snapshot.columns]
    X = snapshot.drop(columns=dropped).astype("float64")
    for col in MODEL_META_NUMBERS:
        if col in meta:
            X[col] = pd.to_numeric(meta[col], errors="coerce").astype("float64")
    for col in MODEL_TEXT_COLUMNS:
        if col in meta:
            X[col] = meta[col].astype("str")
    return X, meta


def make_cutoff(
    snapshot: pd.DataFrame,
    meta_columns: Sequence[str],
    inspections: pd.DataFrame,
    cutoff: pd.Timestamp,
    end: pd.Timestamp,
    truth: pd.DataFrame | None = None,
    horizon_months: int = 0,
) -> Cutoff:
    """One cut-off from a snapshot built as of ``cutoff`` and the (merged, normalised) inspections."""
    X, meta = split_snapshot(snapshot, meta_columns)
    labels = inspection_labels(inspections, cutoff)
    y, w = label_vector(labels, X.index)
    found, verdict = outcomes_after(inspections, cutoff, end, X.index)
    truth_mask = None
    if truth is not None:
        truth_mask = pd.Series(X.index.isin(list(truth_targets(truth, cutoff, horizon_months))), index=X.index)
    return Cutoff(pd.Timestamp(cutoff), X, meta, y, w, found, verdict, truth_mask)


def usable_cutoffs(tables: dict[str, pd.DataFrame], dates: list[pd.Timestamp], min_history_months: int) -> list[pd.Timestamp]:
    """Cut-offs with at least ``min_history_months`` of metered data before them: a snapshot of a city
    with no history yet says nothing about the model."""
    firsts = [tables[n]["month"].min() for n in ("supply", "discharge", "abstraction") if n in tables and len(tables[n])]
    if not firsts:
        raise ValueError("no monthly data (supply, discharge, abstraction): nothing to backtest")
    earliest = min(firsts) + pd.DateOffset(months=min_history_months)
    usable = [d for d in dates if d >= earliest]
    if not usable:
        raise ValueError(
            f"the data start {min(firsts):%Y-%m}: too little history for a backtest cut-off "
            f"(the last one, {dates[-1]:%Y-%m}, needs {min_history_months} months of data before it)"
        )
    return usable


def build_cutoffs(
    tables: dict[str, pd.DataFrame],
    links: pd.DataFrame,
    as_of: pd.Timestamp,
    n_cutoffs: int,
    step_months: int = 6,
    extra_labels: Sequence = (),
    truth: pd.DataFrame | None = None,
    horizon_months: int = 0,
    progress=None,
    profiles: pd.DataFrame | None = None,
    min_history_months: int = 6,
    snapshots: dict[pd.Timestamp, Callable[[], pd.DataFrame]] | None = None,
    sample_entities: int | None = None,
    random_state: int = 0,
) -> list[Cutoff]:
    """The snapshot at each cut-off sees only months before it. Profiles are rebuilt per cut-off unless
    ``profiles`` (built at a later as-of) is given: profile rows are causal (a later build has identical
    rows for earlier months, see features.profiles; guarded by a test), so the snapshot at c of those
    profiles equals one built at c, at a quarter of the cost."""
    from features.profiles import SNAPSHOT_META, build_profiles, entity_snapshot

    inspections = merge_inspections(tables["inspections"], extra_labels)
    dates = usable_cutoffs(tables, cutoff_dates(as_of, n_cutoffs, step_months), min_history_months)
    iterator = progress(dates, desc="backtest cut-offs", total=len(dates)) if progress else dates
    cutoffs = []
    for c in iterator:
        if snapshots is not None and pd.Timestamp(c) in snapshots:
            snapshot = snapshots[pd.Timestamp(c)]()
        else:
            built = profiles if profiles is not None else build_profiles(tables, links, c)
            snapshot = entity_snapshot(built, tables, c)
        cut = make_cutoff(snapshot, SNAPSHOT_META, inspections, c, pd.Timestamp(as_of), truth, horizon_months)
        if sample_entities is not None and len(cut.X) > sample_entities:
            cut = sample_cutoff(cut, sample_entities, random_state)
        cutoffs.append(cut)
    return cutoffs


def sample_cutoff(cut: Cutoff, n: int, random_state: int) -> Cutoff:
    """The cut-off on at most ``n`` entities: every entity with a label or an outcome after the cut-off
    (they carry the signal), the rest a seeded random draw; ranks are then measured on the sample."""
    keep = np.array(((cut.y != -1) | cut.found | cut.verdict).to_numpy(), dtype=bool)  # a writable copy
    rest = np.flatnonzero(~keep)
    room = max(0, n - int(keep.sum()))
    if room < len(rest):
        rng = np.random.default_rng(random_state)
        keep[np.sort(rng.choice(rest, size=room, replace=False))] = True
    else:
        keep[rest] = True
    idx = cut.X.index[keep]
    return Cutoff(cut.cutoff, cut.X.loc[idx], cut.meta.loc[idx], cut.y.loc[idx], cut.weight.loc[idx],
                  cut.found.loc[idx], cut.verdict.loc[idx], None if cut.truth is None else cut.truth.loc[idx])


# -- metrics --------------------------------------------------------------------


def ks_for(n: int, capacity_k: int) -> dict[str, int]:
    """Metric name suffix -> k: 50, 100, 200, 1 % of entities, and the officers' capacity."""
    ks = {str(k): k for k in FIXED_KS}
    ks["1pct"] = max(1, int(round(0.01 * n)))
    ks[str(capacity_k)] = capacity_k
    return ks


def order_of(score: np.ndarray) -> np.ndarray:
    """Descending score, missing last, ties broken by position (deterministic)."""
    s = np.where(np.isnan(score), -np.inf, score)
    return np.lexsort((np.arange(len(s)), -s))


def ranking_metrics(score: np.ndarray, target: np.ndarray, labelled: np.ndarray, ks: dict[str, int]) -> dict[str, float]:
    order = order_of(score)
    hits = np.cumsum(target[order])
    lab = np.cumsum(labelled[order])
    positives = int(target.sum())
    out: dict[str, float] = {"entities": float(len(score)), "positives": float(positives)}
    for name, k in ks.items():
        kk = min(k, len(score))
        h = hits[kk - 1] if kk else 0
        out[f"precision_at_{name}"] = h / k if k else np.nan
        out[f"recall_at_{name}"] = h / positives if positives else np.nan
        out[f"labelled_at_{name}"] = float(lab[kk - 1]) if kk else 0.0
    filled = np.where(np.isnan(score), np.nanmin(score) - 1 if np.isfinite(score).any() else 0, score)
    out["average_precision"] = float(average_precision_score(target, filled)) if positives else np.nan
    return out


def random_metrics(target: np.ndarray, labelled: np.ndarray, ks: dict[str, int]) -> dict[str, float]:
    """The exact expectation of a uniformly random list."""
    n, positives = len(target), int(target.sum())
    out: dict[str, float] = {"entities": float(n), "positives": float(positives)}
    for name, k in ks.items():
        kk = min(k, n)
        out[f"precision_at_{name}"] = kk * positives / n / k if n else np.nan
        out[f"recall_at_{name}"] = kk / n if positives else np.nan
        out[f"labelled_at_{name}"] = kk * labelled.sum() / n if n else 0.0
    out["average_precision"] = positives / n if positives else np.nan
    return out


def evaluate_cutoff(cut: Cutoff, model_score: np.ndarray, capacity_k: int) -> list[dict]:
    keep = cut.evaluated
    n = int(keep.sum())
    ks = ks_for(n, capacity_k)
    scores = {"model": np.asarray(model_score, dtype=float)[keep], "naive": cut.naive.to_numpy(dtype=float)[keep]}
    labelled = cut.verdict.to_numpy()[keep]
    targets = {"inspected": cut.found.to_numpy()[keep]}
    if cut.truth is not None:
        targets["truth"] = cut.truth.to_numpy()[keep]
    rows = []
    for tname, target in targets.items():
        for sname in SCORERS:
            if sname == "random":
                m = random_metrics(target, labelled, ks)
            else:
                m = ranking_metrics(scores[sname], target, labelled, ks)
            rows.append({"cutoff": cut.cutoff, "target": tname, "scorer": sname, **m})
    frame = pd.DataFrame(rows)
    measured = [c for c in frame.columns if c.startswith(("precision_at", "recall_at", "average_precision"))]
    too_few = (frame["target"] == "inspected") & (frame["positives"] < MIN_LABELS)
    frame.loc[too_few, measured] = np.nan
    for tname in targets:
        model = frame[(frame.target == tname) & (frame.scorer == "model")].iloc[0]
        for base in ("naive", "random"):
            b = frame[(frame.target == tname) & (frame.scorer == base)].iloc[0]
            for name in ks:
                col = f"precision_at_{name}"
                lift = model[col] / b[col] if b[col] > 0 else np.nan
                frame.loc[model.name, f"lift_vs_{base}_at_{name}"] = lift
    return frame.to_dict("records")


def audit(cutoffs: Sequence[Cutoff], scores: dict[pd.Timestamp, pd.Series], capacity_k: int) -> pd.DataFrame:
    """Who the list at the operating k falls on, pooled over cut-offs: flag rate by district, industry
    section and size band, and the share of flagged-and-verified entities the verdicts found clean."""
    parts = []
    for cut in cutoffs:
        keep = cut.evaluated
        score = scores[cut.cutoff].to_numpy(dtype=float)[keep]
        flagged = np.zeros(len(score), dtype=bool)
        flagged[order_of(score)[:capacity_k]] = True
        meta = cut.meta[keep]
        frame = pd.DataFrame(
            {
                "flagged": flagged,
                "verified": flagged & cut.verdict.to_numpy()[keep],
                "false_discovery": flagged & cut.verdict.to_numpy()[keep] & ~cut.found.to_numpy()[keep],
            },
            index=meta.index,
        )
        if cut.truth is not None:
            frame["truth_false_discovery"] = flagged & ~cut.truth.to_numpy()[keep]
        for col in ("district", "industry_section", "size_band"):
            if col in meta:
                parts.append(frame.assign(dimension=col, group=meta[col].astype("str").fillna("未知").to_numpy()))
    if not parts:
        return pd.DataFrame()
    pooled = pd.concat(parts, ignore_index=True)
    agg = {"entities": ("flagged", "size"), "flagged": ("flagged", "sum"), "verified": ("verified", "sum"),
           "false_discoveries": ("false_discovery", "sum")}
    if "truth_false_discovery" in pooled:
        agg["truth_false_discoveries"] = ("truth_false_discovery", "sum")
    table = pooled.groupby(["dimension", "group"], sort=True).agg(**agg)
    table["flag_rate"] = table["flagged"] / table["entities"]
    table["fdr_vs_verdicts"] = table["false_discoveries"] / table["verified"].where(table["verified"] > 0)
    if "truth_false_discoveries" in table:
        table["fdr_vs_truth"] = table["truth_false_discoveries"] / table["flagged"].where(table["flagged"] > 0)
    return table.reset_index()


def run_backtest(
    cutoffs: Sequence[Cutoff],
    fit_predict: Callable[[Cutoff], np.ndarray],
    capacity_k: int,
    on_cutoff: Callable[[int, float], None] | None = None,
    progress=None,
    workers: int = 1,
) -> BacktestResult:
    """Fit and score at every cut-off with ``fit_predict``; ``on_cutoff(step, precision@capacity so far)``
    lets a tuner prune a bad trial early (it may raise). ``workers`` > 1: without ``on_cutoff``, the cut-offs
    of a backtest of PARALLEL_ROWS rows or more are fitted in that many forked processes at once (each fit is
    single-threaded and its own, so the scores are the same)."""
    rows, scores = [], {}
    iterator = progress(cutoffs, desc="backtest", total=len(cutoffs)) if progress else cutoffs
    parallel = workers > 1 and on_cutoff is None and len(cutoffs) > 1 and forkable(cutoffs)
    found = _fitted_in_processes(cutoffs, fit_predict, workers) if parallel else (fit_predict(c) for c in cutoffs)
    for step, (cut, score) in enumerate(zip(iterator, found)):
        score = np.asarray(score, dtype=float)
        scores[cut.cutoff] = pd.Series(score, index=cut.X.index)
        rows.extend(evaluate_cutoff(cut, score, capacity_k))
        if on_cutoff is not None:
            frame = pd.DataFrame(rows)
            mine = frame[(frame.target == "inspected") & (frame.scorer == "model")][f"precision_at_{capacity_k}"]
            on_cutoff(step, float(mine.mean()))
    metrics = pd.DataFrame(rows)
    return BacktestResult(metrics, scores, capacity_k, audit(cutoffs, scores, capacity_k))


PARALLEL_ROWS = 50_000  # below this a backtest takes seconds: no processes
_FORKED: dict = {}


def forkable(cutoffs: Sequence[Cutoff]) -> bool:
    """Whether the cut-offs' fits go to forked processes: PARALLEL_ROWS rows or more, where fork exists."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods() and sum(len(c.X) for c in cutoffs) >= PARALLEL_ROWS


def _fitted_in_processes(cutoffs: Sequence[Cutoff], fit_predict, workers: int):
    """Each cut-off's scores, in order, fitted in forked processes."""
    yield from _forked_fits(cutoffs, fit_predict, workers)()


def _forked_fits(cutoffs: Sequence[Cutoff], fit_predict, workers: int) -> Callable[[], list[np.ndarray]]:
    """Forks ``workers`` processes now and starts each cut-off's fit in them: they inherit the cut-offs and the
    fit function (a closure, which could not be pickled) and send back only the scores. Returns the function
    that waits for the scores, in cut-off order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _FORKED.update(cutoffs=list(cutoffs), fit_predict=fit_predict)
    pool = ProcessPoolExecutor(min(workers, len(cutoffs)), mp_context=multiprocessing.get_context("fork"))
    try:  # with fork, the first submit starts every process (before any thread of the caller)
        futures = [pool.submit(_forked_fit_predict, i) for i in range(len(cutoffs))]
    finally:
        _FORKED.clear()  # the processes hold their copy

    def scores() -> list[np.ndarray]:
        with pool:
            return [f.result() for f in futures]

    return scores


def backtest_in_background(cutoffs: Sequence[Cutoff], fit_predict, capacity_k: int, workers: int = 1):
    """The backtest's fits started now in ``workers`` forked processes, so that the caller fits its final model
    meanwhile; the function returned waits for them and gives the BacktestResult ``run_backtest`` gives."""
    wait = _forked_fits(cutoffs, fit_predict, workers)

    def result() -> BacktestResult:
        found = iter(wait())
        return run_backtest(cutoffs, lambda cut: next(found), capacity_k)

    return result


def _forked_fit_predict(i: int) -> np.ndarray:
    from models import risk

    risk.PREDICT_THREADS = 1  # the processes share the cores (predictions do not depend on the thread count)
    return np.asarray(_FORKED["fit_predict"](_FORKED["cutoffs"][i]), dtype=float)


# RiskModel arguments for the entity snapshot, where RiskModel's own defaults suit a generic table:
# the domain indicators may only raise the risk in LightGBM; the labels (a handful of biased inspections)
# take half of the ranking only once SNAPSHOT_DEFAULTS["blend_half"] violations are known; and the blend
# mixes probit ranks, so that the detector's top stays near the top while the trees know little (on
# generated cities, averaging plain ranks with a few labels lowered the backtest's AP from 0.49 to 0.35).
# blend_half 40, not 20, since the generator's officers visit as many entities as outside drops show (33 per
# 1,000): with the drop's inspections as labels, AP 0.618 -> 0.632 on five dev cities (higher in each),
# 0.626 -> 0.631 on six held out; 80 gave 0.633 and 0.627
SNAPSHOT_DEFAULTS: dict = {"monotone_detectors": True, "blend_half": 40.0, "blend_scale": "probit"}


def make_model(params: dict, random_state: int):
    """A RiskModel for the entity snapshot from JSON-able params (over ``SNAPSHOT_DEFAULTS``): ``detectors`` is
    ``"domain"`` (the snapshot's domain detectors, the default) or ``"none"``; every other key is a RiskModel
    argument."""
    from models import RiskModel
    from models.detectors import domain_detectors

    params = {**SNAPSHOT_DEFAULTS, **params}
    detectors = domain_detectors() if params.pop("detectors", "domain") == "domain" else None
    return RiskModel(random_state=random_state, detectors=detectors, **params)


def risk_model_fit_predict(params: dict, random_state: int) -> Callable[[Cutoff], np.ndarray]:
    """Fit a RiskModel with ``params`` on a cut-off's labels and score that cut-off's entities."""

    def fit_predict(cut: Cutoff) -> np.ndarray:
        model = make_model(params, random_state)
        model.fit(cut.X, cut.y.to_numpy(), sample_weight=cut.weight.to_numpy())
        return model.predict_proba(cut.X)[:, 1]

    return fit_predict


# -- report ---------------------------------------------------------------------
