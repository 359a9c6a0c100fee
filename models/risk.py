"""RiskModel: unsupervised detectors, proximity to known violations and a positive-unlabeled LightGBM,
blended by how many violations are known.

Inspections find few violations and only where officers chose to look, so labels are scarce and
biased. The model therefore (1) scores every row with label-free detectors (ECOD + IsolationForest,
plus optional domain detectors), rank-normalised on the training rows so that a score means "more
anomalous than that share of the city"; (2) learns from the known violations twice: a lazy learner
(closeness to the nearest known violation in per-feature rank space), which is all a handful of
labels supports, and LightGBM on the labelled rows plus the never-inspected rows as down-weighted
negatives (positive-unlabeled learning), with the detector ranks among its inputs and optional
inspection-propensity weights; proximity yields to the trees as min_labels / n_pos; (3) blends
supervised and unsupervised ranks with weight n_pos / (n_pos + blend_half), counting only violations
that no documented breach explains; (3b) adds ``evidence_weight`` x the severity of evidence detectors
(``evidence = True``: documented breaches such as pumping after a permit expired, which are rare and
nearly always violations), so one strong signal puts a row ahead of every merely unusual one
instead of being averaged away among weak ones; (4) maps the final rank to
a probability: Platt scaling on inspected rows when both verdicts number min_labels or more, else
rank ** k with k chosen so that the mean risk is the prior rate. Both maps are monotone.

Measured on ADBench (benchmarks/bench_adbench.py): blend_half = 5 and proximity-first below 10
violations beat the best published unsupervised detector and default LightGBM at 1, 5 and 10 %
labelled anomalies on cardio, thyroid and annthyroid; trees alone with 1-4 labels did worse than
the detectors alone (cardio 72.7 vs 93.5 at 1 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_array, check_is_fitted

from models.detectors import ECOD, IsolationForestDetector, as_float_frame

UNSUPERVISED = ("ecod", "isolation_forest")


def _ecdf(sorted_ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of the reference at or below x, mid-ranked for ties, in (0, 1)."""
    n = len(sorted_ref)
    if n == 0:
        return np.full(len(x), 0.5)
    lo = np.searchsorted(sorted_ref, x, side="left")
    hi = np.searchsorted(sorted_ref, x, side="right")
    return (0.5 * (lo + hi) + 0.5) / (n + 1.0)


# Prediction is deterministic whatever the thread count (unlike training), so scoring uses every core
# (0 = LightGBM's OpenMP default). TreeSHAP contributions are the slow part of explaining a whole city.
PREDICT_THREADS = 0

class RiskModel(ClassifierMixin, BaseEstimator):
    """Calibrated violation risk on any numeric table (numpy or DataFrame, NaN allowed).

    ``fit(X, y, sample_weight=None)``: y = 1 known violation, 0 verified clean, -1 or NaN never
    inspected. ``sample_weight``: e.g. inverse inspection propensity of the labelled rows.
    ``detectors``: extra estimators with fit/score_samples on the DataFrame (domain detectors of
    ``models.detectors``); their scores join the unsupervised part and LightGBM's inputs.
    ``blend``: weight of the supervised part; None adapts it to the number of known violations as
    n_pos / (n_pos + blend_half), i.e. ``blend_half`` violations make it an even mix.
    ``proximity_share``: share of the supervised part given to closeness to known violations; None
    sets it from leave-one-out evidence (see ``_proximity_evidence``) times min(1, min_labels / n_pos).
    ``domain_weight``: weight of each domain detector in the unsupervised mean (generic ones: 1).
    ``evidence_weight``: multiplier of the evidence detectors' severity (>= 1 for a documented breach),
    added to the blended rank in (0, 1); they take no part in the mean. Without evidence detectors
    (any non-snapshot table) it has no effect.
    Text columns of a DataFrame are ignored by the trees but passed to ``detectors``.
    """

    def __init__(
        self,
        random_state=0,
        detectors=None,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        max_depth: int = -1,
        min_child_samples: int = 5,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        unlabeled_weight: float = 0.1,
        blend=None,
        blend_half: float = 5.0,
        min_labels: int = 10,
        prior: float | None = None,
        forest_trees: int = 200,
        domain_weight: float = 2.0,
        monotone_detectors: bool = False,
        proximity_share: float | None = None,
        evidence_weight: float = 1.0,
        threshold: float = 0.5,
        n_jobs: int = 1,
    ):
        self.random_state = random_state
        self.detectors = detectors
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.unlabeled_weight = unlabeled_weight
        self.blend = blend
        self.blend_half = blend_half
        self.min_labels = min_labels
        self.prior = prior
        self.forest_trees = forest_trees
        self.domain_weight = domain_weight
        self.monotone_detectors = monotone_detectors
        self.proximity_share = proximity_share
        self.evidence_weight = evidence_weight
        self.threshold = threshold
        self.n_jobs = n_jobs

    # -- inputs --------------------------------------------------------------------

    def _frame(self, X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        arr = check_array(X, ensure_all_finite="allow-nan", dtype="float64", ensure_min_samples=1)
        frame = as_float_frame(arr)
        frame.attrs["from_array"] = True  # columns are positions, not names
        return frame

    def _matrix(self, X: pd.DataFrame, fitting: bool = False) -> np.ndarray:
        num = as_float_frame(X)
        if fitting:
            self.feature_names_in_ = np.asarray(num.columns, dtype=object)
            self.n_features_in_ = num.shape[1]
        elif not X.attrs.get("from_array") and set(self.feature_names_in_) <= set(num.columns):
            num = num[list(self.feature_names_in_)]
        if not fitting and num.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {num.shape[1]} features, RiskModel was fitted with {self.n_features_in_}")
        arr = num.to_numpy(dtype="float64", na_value=np.nan)
        return np.where(np.isfinite(arr), arr, np.nan)

    def _raw_detector_scores(self, frame: pd.DataFrame, arr: np.ndarray) -> np.ndarray:
        cols = [self.ecod_.score_samples(arr), self.forest_.score_samples(arr)]
        cols += [d.score_samples(frame) for d in self.domain_]
        return np.column_stack(cols)

    def _detector_ranks(self, frame: pd.DataFrame, arr: np.ndarray) -> np.ndarray:
        raw = self._raw_detector_scores(frame, arr)
        return np.column_stack([_ecdf(ref, raw[:, j]) for j, ref in enumerate(self.detector_ref_)])

    def _unsupervised(self, ranks: np.ndarray) -> np.ndarray:
        return ranks @ self.detector_weights_

    # -- fit -----------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        frame = self._frame(X)
        arr = self._matrix(frame, fitting=True)
        n = len(arr)
        y = np.full(n, np.nan) if y is None else np.asarray(y).ravel()
        y = pd.to_numeric(pd.Series(y), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} rows, X has {n}")
        if np.isinf(y).any():
            raise ValueError("y contains inf: use 1, 0, -1 or NaN")
        y = np.where(np.isin(y, (0.0, 1.0)), y, -1.0)  # anything else is 'not inspected'
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype="float64").ravel()
        w = np.where(np.isfinite(w) & (w > 0), w, 1.0)
        self.classes_ = np.array([0, 1])
        seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0

        # 1. unsupervised detectors, rank-normalised on the training rows
        self.ecod_ = ECOD().fit(arr)
        self.forest_ = IsolationForestDetector(n_estimators=self.forest_trees, random_state=seed, n_jobs=1).fit(arr)
        self.domain_ = [clone(d).fit(frame) for d in (self.detectors or [])]
        self.detector_names_ = list(UNSUPERVISED) + [getattr(d, "name", type(d).__name__) for d in self.domain_]
        raw = self._raw_detector_scores(frame, arr)
        self.detector_ref_ = [np.sort(raw[:, j]) for j in range(raw.shape[1])]
        ranks = np.column_stack([_ecdf(ref, raw[:, j]) for j, ref in enumerate(self.detector_ref_)])
        # evidence detectors (documented breaches) stay out of the mean: their severity is added on top
        self.evidence_ = np.array([bool(getattr(d, "evidence", False)) for d in self.domain_], dtype=bool)
        weights = np.r_[np.ones(len(UNSUPERVISED)), np.where(self.evidence_, 0.0, float(self.domain_weight))]
        self.detector_weights_ = weights / weights.sum()
        unsup = self._unsupervised(ranks)
        self.unsupervised_ref_ = np.sort(unsup)

        # 2. positive-unlabeled LightGBM on the features plus the detector ranks
        pos, neg, unl = y == 1, y == 0, y == -1
        self.n_positive_, self.n_negative_ = int(pos.sum()), int(neg.sum())
        self.classifier_ = None
        if self.n_positive_ > 0 and (neg.any() or unl.any()):
            target = pos.astype(int)
            weight = np.where(pos, w, np.where(neg, w, self.unlabeled_weight))
            # balance the classes so that a handful of violations are not drowned by the city
            wpos, wneg = weight[pos].sum(), weight[~pos].sum()
            weight = np.where(pos, weight * (wneg / wpos), weight)
            self.classifier_ = LGBMClassifier(
                n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                max_depth=self.max_depth, min_child_samples=self.min_child_samples,
                subsample=self.subsample, subsample_freq=1 if self.subsample < 1 else 0,
                colsample_bytree=self.colsample_bytree, reg_lambda=self.reg_lambda, reg_alpha=self.reg_alpha,
                min_child_weight=1e-3, random_state=seed, deterministic=True, force_row_wise=True,
                monotone_constraints=[0] * arr.shape[1] + [int(bool(self.monotone_detectors))] * ranks.shape[1],
                n_jobs=self.n_jobs, verbose=-1,
            ).fit(np.column_stack([arr, ranks]), target, sample_weight=weight)
            # proximity to known violations in per-feature rank space: the few-label learner
            self.proximity_ = NearestNeighbors(n_neighbors=1).fit(self._feature_ranks(arr[pos]))
            self.proximity_ref_ = np.sort(self._proximity(arr))
            self.supervised_ref_ = np.sort(self._supervised_margin(arr, ranks))
        # violations that documented breaches already put on top teach the blend nothing new
        self.n_unexplained_ = int((pos & (self._severity(raw) <= 0)).sum())
        self.blend_ = self._blend_weight()
        # trees cannot generalise from a handful of violations: proximity leads until min_labels, then
        # yields to LightGBM as min_labels / n_pos
        if self.proximity_share is not None:
            self.proximity_share_ = float(self.proximity_share)
        elif self.classifier_ is None:
            self.proximity_share_ = 0.0
        else:
            evidence = self._proximity_evidence(arr, pos, unl | neg, unsup, seed)
            self.proximity_share_ = float(evidence * min(1.0, self.min_labels / max(self.n_positive_, 1)))

        # 3. documented breaches ahead of merely unusual rows, then calibration of the final rank
        self.final_ref_ = None
        total = self._final(self._blend_rank(arr, ranks), raw)
        self.final_ref_ = np.sort(total)
        score = _ecdf(self.final_ref_, total)
        labelled = y >= 0
        self.calibrator_ = None
        self.prior_ = self._prior(y)
        if self.n_positive_ >= self.min_labels and self.n_negative_ >= self.min_labels:
            lr = LogisticRegression(C=1.0)
            lr.fit(self._logit(score[labelled]).reshape(-1, 1), y[labelled].astype(int), sample_weight=w[labelled])
            if lr.coef_[0, 0] > 0:  # a calibration must keep the ranking
                self.calibrator_ = lr
        self.power_ = 1.0 / self.prior_ - 1.0  # mean of u**k over uniform u is 1 / (k + 1) = prior
        return self

    def _proximity_evidence(self, arr, pos, rest, unsup, seed, max_rows: int = 3000, max_pos: int = 50) -> float:
        """How far proximity should be trusted over the detectors, from the known violations themselves.

        Leave-one-out: each known violation is ranked among other rows by its closeness to the
        *other* known violations (AUC_p), and by the detectors (AUC_u). Violations of one kind sit
        near each other (AUC_p high); heterogeneous ones do not, and then the detectors, which
        LightGBM also reads, deserve the weight. Share = excess AUC_p / (excess AUC_p + excess
        AUC_u). A single violation gives no such evidence; then proximity, the only learner that can
        use one example, takes the supervised part (trees cannot split on one row)."""
        rng = np.random.default_rng(seed)
        p_idx, r_idx = np.flatnonzero(pos), np.flatnonzero(rest)
        if len(p_idx) < 2 or len(r_idx) == 0:
            return 1.0
        p_idx = np.sort(rng.choice(p_idx, min(len(p_idx), max_pos), replace=False))
        r_idx = np.sort(rng.choice(r_idx, min(len(r_idx), max_rows), replace=False))
        zp, zr = self._feature_ranks(arr[p_idx]), self._feature_ranks(arr[r_idx])
        d_pp = np.sqrt(((zp[:, None, :] - zp[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(d_pp, np.inf)
        d_rp = np.sqrt(np.clip((zr**2).sum(1)[:, None] + (zp**2).sum(1)[None, :] - 2 * zr @ zp.T, 0, None))
        order = np.argsort(d_rp, axis=1)[:, :2]
        first = np.take_along_axis(d_rp, order[:, :1], axis=1)[:, 0]
        second = np.take_along_axis(d_rp, order[:, 1:2], axis=1)[:, 0]
        auc_p = []
        for k in range(len(p_idx)):  # loop over at most max_pos violations, vectorised over rows
            others = np.where(order[:, 0] == k, second, first)
            mine = d_pp[k].min()
            auc_p.append(np.mean(others > mine) + 0.5 * np.mean(others == mine))
        ref = np.sort(unsup[r_idx])
        auc_u = float(np.mean(_ecdf(ref, unsup[p_idx])))
        ep, eu = max(float(np.mean(auc_p)) - 0.5, 0.0), max(auc_u - 0.5, 0.0)
        return ep / (ep + eu) if ep + eu > 0 else 0.5

    def _prior(self, y: np.ndarray) -> float:
        if self.prior is not None:
            return float(np.clip(self.prior, 1e-4, 0.5))
        inspected = (y == 1).sum() + (y == 0).sum()
        if inspected >= self.min_labels and (y == 1).any():
            # inspections target risky entities, so their hit rate bounds the city's rate from above
            return float(np.clip((y == 1).sum() / inspected / 2.0, 0.01, 0.5))
        return 0.05

    def _blend_weight(self) -> float:
        if self.classifier_ is None:
            return 0.0
        if self.blend is not None:
            return float(np.clip(self.blend, 0.0, 1.0))
        n = getattr(self, "n_unexplained_", self.n_positive_)
        return n / (n + self.blend_half)

    def _supervised_margin(self, arr: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        return self.classifier_.predict(np.column_stack([arr, ranks]), raw_score=True, num_threads=PREDICT_THREADS)

    def _feature_ranks(self, arr: np.ndarray) -> np.ndarray:
        """Each feature as its ECDF on the training rows (scale-free; NaN -> the median)."""
        ref, valid = self.ecod_.sorted_, self.ecod_.n_valid_
        z = np.column_stack([_ecdf(ref[: valid[j], j], arr[:, j]) for j in range(arr.shape[1])])
        return np.where(np.isnan(arr), 0.5, z)

    def _proximity(self, arr: np.ndarray) -> np.ndarray:
        return -self.proximity_.kneighbors(self._feature_ranks(arr))[0][:, 0]

    def _blend_rank(self, arr: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        unsup = _ecdf(self.unsupervised_ref_, self._unsupervised(ranks))
        if self.classifier_ is None or self.blend_ == 0.0:
            return unsup
        sup = _ecdf(self.supervised_ref_, self._supervised_margin(arr, ranks))
        share = self.proximity_share_
        if share > 0:
            near = _ecdf(self.proximity_ref_, self._proximity(arr))
            sup = (1.0 - share) * sup + share * near
        return self.blend_ * sup + (1.0 - self.blend_) * unsup

    def _severity(self, raw: np.ndarray) -> np.ndarray:
        """Summed severity of the evidence detectors (0 without any)."""
        ev = np.flatnonzero(np.r_[np.zeros(len(UNSUPERVISED), bool), getattr(self, "evidence_", np.zeros(0, bool))])
        return np.clip(raw[:, ev], 0.0, None).sum(axis=1) if len(ev) else np.zeros(len(raw))

    def _final(self, blend: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Blended rank plus ``evidence_weight`` x severity, as a rank among the training rows."""
        total = blend + float(self.evidence_weight) * self._severity(raw)
        if getattr(self, "final_ref_", None) is None:
            return total
        return _ecdf(self.final_ref_, total)

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- predict -------------------------------------------------------------------

    def score_samples(self, X) -> np.ndarray:
        """The uncalibrated blended rank in (0, 1): the ranking officers see."""
        check_is_fitted(self, "detector_ref_")
        frame = self._frame(X)
        arr = self._matrix(frame)
        raw = self._raw_detector_scores(frame, arr)
        ranks = np.column_stack([_ecdf(ref, raw[:, j]) for j, ref in enumerate(self.detector_ref_)])
        return self._final(self._blend_rank(arr, ranks), raw)

    def predict_proba(self, X) -> np.ndarray:
        score = self.score_samples(X)
        if self.calibrator_ is not None:
            p = self.calibrator_.predict_proba(self._logit(score).reshape(-1, 1))[:, 1]
        else:
            p = np.power(score, self.power_)
        p = np.clip(p, 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X) -> np.ndarray:
        return self.predict_proba(X)[:, 1]

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= self.threshold).astype(int)

    # -- explanation ---------------------------------------------------------------

    def feature_percentiles(self, X) -> pd.DataFrame:
        """Each input feature as the share of training rows at or below it (NaN stays NaN)."""
        check_is_fitted(self, "detector_ref_")
        frame = self._frame(X)
        arr = self._matrix(frame)
        pct = np.where(np.isnan(arr), np.nan, self._feature_ranks(arr))
        index = frame.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(pct, columns=list(self.feature_names_in_), index=index)

    def detector_percentiles(self, X) -> pd.DataFrame:
        """Each detector's score as the share of training rows it exceeds (columns ``detector:<name>``)."""
        check_is_fitted(self, "detector_ref_")
        frame = self._frame(X)
        ranks = self._detector_ranks(frame, self._matrix(frame))
        index = frame.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(ranks, columns=[f"detector:{n}" for n in self.detector_names_], index=index)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Gain importance of the input features (detector inputs folded in by their ECOD share)."""
        check_is_fitted(self, "detector_ref_")
        d = self.n_features_in_
        if self.classifier_ is None:
            imp = np.zeros(d)
        else:
            gain = self.classifier_.booster_.feature_importance(importance_type="gain")
            imp = gain[:d].astype(float)
        total = imp.sum()
        return imp / total if total > 0 else np.full(d, 1.0 / max(d, 1))

    def contributions(self, X) -> pd.DataFrame:
        """Per-row contributions to the risk: LightGBM's SHAP values (``pred_contrib``) of the input
        features, plus one column per detector (its rank above the median), weighted by the blend.
        Evidence detectors add ``evidence_weight`` x the severity of each breach to the feature it
        rests on (so reasons quote the breach itself). ECOD's share is spread over the features by
        their tail scores, so a feature that is far in its tail is named even before any label
        exists. Columns: features then ``detector:<name>``."""
        check_is_fitted(self, "detector_ref_")
        frame = self._frame(X)
        arr = self._matrix(frame)
        ranks = self._detector_ranks(frame, arr)
        d, k = self.n_features_in_, ranks.shape[1]
        feat = np.zeros((len(arr), d))
        det = np.zeros((len(arr), k))
        tails = self.ecod_.tail_contributions(arr)
        share = tails / np.where(tails.sum(axis=1, keepdims=True) > 0, tails.sum(axis=1, keepdims=True), 1.0)
        if self.classifier_ is not None and self.blend_ > 0:
            shap = self.classifier_.predict(np.column_stack([arr, ranks]), pred_contrib=True, num_threads=PREDICT_THREADS)
            feat += self.blend_ * shap[:, :d]
            det += self.blend_ * shap[:, d : d + k]
        excess = (1.0 - self.blend_) * self.detector_weights_ * np.clip(ranks - 0.5, 0, None) * 2.0
        det += excess
        # ECOD is a sum over features: its part is handed to the features in proportion to their tails
        feat += share * det[:, [0]]
        det[:, 0] = 0.0
        # a documented breach is named by the evidence it rests on (the feature's own sentence)
        names = {n: i for i, n in enumerate(self.feature_names_in_)}
        for detector in self.domain_:
            if not getattr(detector, "evidence", False) or not hasattr(detector, "parts"):
                continue
            parts = detector.parts(frame)
            for col in parts.columns:
                if col in names:
                    feat[:, names[col]] += float(self.evidence_weight) * parts[col].to_numpy(dtype="float64")
        columns = list(self.feature_names_in_) + [f"detector:{n}" for n in self.detector_names_]
        index = frame.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(np.column_stack([feat, det]), columns=columns, index=index)
