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
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
    column_or_1d,
    validate_data,
)

from models.detectors import ECOD, IsolationForestDetector, column_counts

UNSUPERVISED = ("ecod", "isolation_forest")
LABEL_HELP = ("RiskModel takes the labels 1 (violation), 0 (verified clean) and -1 (never inspected; the "
              "unlabeled parameter), or any two class labels")
ECDF_TOLERANCE = 1e-9  # relative: scores this close to a reference value tie with it


def _ecdf(sorted_ref: np.ndarray, x: np.ndarray) -> np.ndarray:
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


def _weighted_sum(columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise sum of ``columns * weights`` in column order: the same operations for every row whatever the
    batch, where a matrix product would pick a BLAS kernel by batch size and CPU."""
    out = np.zeros(len(columns))
    for j, w in enumerate(weights):
        out += columns[:, j] * w
    return out


def _nearest_distance(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest point, summed feature by feature in a fixed order
    (no BLAS: the result of one row does not depend on the others or on the CPU)."""
    best = np.full(len(queries), np.inf)
    for start in range(0, len(points), 64):
        block = points[start : start + 64]
        acc = np.zeros((len(queries), len(block)))
        for j in range(queries.shape[1]):
            acc += (queries[:, [j]] - block[None, :, j]) ** 2
        best = np.minimum(best, acc.min(axis=1))
    return np.sqrt(best)


def _pairwise_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Euclidean distances between the rows of a and b, in the same fixed order."""
    acc = np.zeros((len(a), len(b)))
    for j in range(a.shape[1]):
        acc += (a[:, [j]] - b[None, :, j]) ** 2
    return np.sqrt(acc)


def _float_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
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


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def platt_fit(score: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float = 1.0, steps: int = 100):
    """Platt scaling p = sigmoid(a * logit(score) + b): damped Newton steps on the weighted log-loss with an L2
    penalty ``l2 / 2 * a**2`` (as LogisticRegression(C=1) on one feature), in plain elementwise arithmetic
    and 1-D sums (no BLAS: the same coefficients on every CPU). Returns (a, b)."""
    x = _logit(score)
    y = np.asarray(y, dtype="float64")

    def loss(a: float, b: float) -> float:
        z = a * x + b
        return float(np.sum(weight * (np.logaddexp(0.0, z) - y * z))) + 0.5 * l2 * a * a

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(steps):
        p = _sigmoid(a * x + b)
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


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


# Prediction is deterministic whatever the thread count (unlike training), so scoring uses every core
# (0 = LightGBM's OpenMP default). TreeSHAP contributions are the slow part of explaining a whole city.
PREDICT_THREADS = 0


def _threads(rows: int) -> int:
    """One thread for a few rows (starting a thread pool costs more than scoring them), else every core."""
    return 1 if rows < 512 else PREDICT_THREADS

class RiskModel(ClassifierMixin, BaseEstimator):
    """Calibrated violation risk on any numeric table (numpy or DataFrame, NaN allowed).

    ``fit(X, y, sample_weight=None)``: y = 1 known violation, 0 verified clean, -1 never inspected
    (``unlabeled``; None makes every value a class); NaN or a third class is an error. ``sample_weight``:
    e.g. inverse inspection propensity of the labelled rows; zero removes a row from the supervised part.
    ``random_state``: None, an int or a RandomState (``check_random_state``). ``decision_function`` is the
    log-odds of a violation against ``threshold`` (not a probability; ``predict_proba`` is).
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
        unlabeled=-1,
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
        self.unlabeled = unlabeled
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

    def _inputs(self, X, fitting: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
        """The table the named detectors read and the float matrix of the numeric features.

        A DataFrame keeps its names: its numeric columns are the features (text columns such as the industry
        only reach the named detectors), and at predict time the fitted feature names are picked by name, in
        the fitted order, whatever else the frame holds. Any other input is validated as a float array."""
        if isinstance(X, pd.DataFrame):
            if fitting:
                names = list(X.select_dtypes(include=["number", "bool", "boolean"]).columns)
                if not names:
                    raise ValueError("RiskModel needs at least one numeric feature column")
                self.feature_names_in_ = np.asarray(names, dtype=object)
                self.n_features_in_ = len(names)
                self.fitted_on_frame_ = True
            elif getattr(self, "fitted_on_frame_", False):
                missing = [c for c in self.feature_names_in_ if c not in X.columns]
                if missing:
                    raise ValueError(f"X lacks {len(missing)} feature column(s) RiskModel was fitted with: {missing[:5]}")
            else:
                return self._inputs(X.to_numpy(), fitting)
            arr = _float_matrix(X, list(self.feature_names_in_))
            if len(arr) == 0:
                raise ValueError("Found array with 0 sample(s) (shape=(0, %d)) while a minimum of 1 is required." % arr.shape[1])
            return X, np.where(np.isfinite(arr), arr, np.nan)
        arr = validate_data(self, X, reset=fitting, ensure_all_finite="allow-nan", dtype="float64")
        if fitting:
            self.fitted_on_frame_ = False
        frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        return frame, np.where(np.isfinite(arr), arr, np.nan)

    def _raw_detector_scores(self, frame: pd.DataFrame, arr: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher = more anomalous) of every detector, one column each."""
        cols = [self.ecod_.anomaly_score(arr), self.forest_.anomaly_score(arr)]
        cols += [d.anomaly_score(frame) for d in self.domain_]
        return np.column_stack(cols)

    def _detector_ranks(self, frame: pd.DataFrame, arr: np.ndarray) -> np.ndarray:
        raw = self._raw_detector_scores(frame, arr)
        return np.column_stack([_ecdf(ref, raw[:, j]) for j, ref in enumerate(self.detector_ref_)])

    def _unsupervised(self, ranks: np.ndarray) -> np.ndarray:
        return _weighted_sum(ranks, self.detector_weights_)

    # -- fit -----------------------------------------------------------------------

    def _labels(self, y, n: int) -> np.ndarray:
        """Sets ``classes_`` and returns y as floats: 1 positive class, 0 negative class, -1 unlabelled.

        Rows whose label equals ``unlabeled`` (default -1, scikit-learn's semi-supervised convention) were never
        inspected. The other labels are the classes, at most two: sorted, the second is the positive class (with
        the inspection labels 0 / 1, 1 = violation). With one class or none labelled, the classes are 0 and 1.
        NaN, a third class, or a lone class that is not 0 or 1 are errors naming the values."""
        if y is None:
            self.classes_ = np.array([0, 1])
            return np.full(n, -1.0)
        y = column_or_1d(y, warn=True)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} rows, X has {n}")
        if y.dtype.kind == "f":
            _assert_all_finite(y, input_name="y", estimator_name="RiskModel")
        if y.dtype.kind == "O" and any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
            raise ValueError("Input y contains NaN or None: mark never-inspected rows with "
                             f"{self.unlabeled!r} (the unlabeled parameter)")
        unl = (y == self.unlabeled) if self.unlabeled is not None else np.zeros(n, dtype=bool)
        labelled = y[~unl]
        if labelled.dtype.kind == "f" and len(labelled) and type_of_target(labelled) == "continuous":
            raise ValueError(f"Unknown label type: continuous target. {LABEL_HELP}")
        classes = np.unique(labelled)
        if len(classes) > 2:
            raise ValueError(f"Only binary classification is supported. Unknown label(s) in y: got classes {classes.tolist()[:5]}"
                             f"{' besides the unlabelled ' + repr(self.unlabeled) if unl.any() else ''}. {LABEL_HELP}")
        if len(classes) == 2:
            self.classes_ = classes
        elif len(classes) == 0 or classes[0] in (0, 1):
            self.classes_ = np.array([0, 1])
        else:
            raise ValueError(f"Unknown label {classes[0]!r} in y: with a single class labelled, it must be 0 or 1. "
                             f"{LABEL_HELP}")
        out = np.full(n, -1.0)
        out[~unl] = (labelled == self.classes_[1]).astype(float)
        return out

    def fit(self, X, y=None, sample_weight=None):
        """Fit on X with y in {1 violation, 0 verified clean, -1 never inspected} (None: all -1).

        ``sample_weight``: non-negative weights of the labelled rows' verdicts (e.g. inverse queue probability);
        a zero weight removes a verdict from the supervised part (the row still informs the detectors, which
        learn the city's distribution from every row). Unlabelled rows weigh ``unlabeled_weight`` whatever
        their sample weight, times it."""
        frame, arr = self._inputs(X, fitting=True)
        n = len(arr)
        y = self._labels(y, n)
        if sample_weight is None:
            w = np.ones(n)
        else:
            w = _check_sample_weight(sample_weight, arr, dtype=np.float64, ensure_non_negative=True)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))

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
        pos, neg, unl = (y == 1) & (w > 0), (y == 0) & (w > 0), (y == -1) & (w > 0)
        if pos.any() and not (neg.any() or unl.any()):
            raise ValueError("RiskModel cannot train on one class: it needs rows besides the positive class (the "
                             "violations) with a non-zero weight, verified clean (0) or never inspected (-1)")
        self.n_positive_, self.n_negative_ = int(pos.sum()), int(neg.sum())
        self.classifier_ = None
        if self.n_positive_ > 0:
            target = pos.astype(int)
            weight = np.where(unl, self.unlabeled_weight * w, w)  # zero weights stay zero
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
            self.proximity_points_ = self._feature_ranks(arr[pos])
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
        labelled = pos | neg
        self.calibrator_ = None
        self.prior_ = self._prior(np.where(w > 0, y, -1.0))
        if self.n_positive_ >= self.min_labels and self.n_negative_ >= self.min_labels:
            a, b = platt_fit(score[labelled], y[labelled], w[labelled])
            if a > 0:  # a calibration must keep the ranking
                self.calibrator_ = (a, b)
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
        d_pp = _pairwise_distance(zp, zp)
        np.fill_diagonal(d_pp, np.inf)
        d_rp = _pairwise_distance(zr, zp)
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
        return self.classifier_.predict(np.column_stack([arr, ranks]), raw_score=True, num_threads=_threads(len(arr)))

    def _feature_ranks(self, arr: np.ndarray) -> np.ndarray:
        """Each feature as its mid-ranked ECDF on the training rows (scale-free; NaN -> the median)."""
        below, upto = column_counts(self.ecod_.sorted_, self.ecod_.n_valid_, arr)
        m = self.ecod_.n_valid_[None, :].astype("float64")
        z = np.where(m > 0, (0.5 * (below + upto) + 0.5) / (m + 1.0), 0.5)
        return np.where(np.isnan(arr), 0.5, z)

    def _proximity(self, arr: np.ndarray) -> np.ndarray:
        return -_nearest_distance(self._feature_ranks(arr), self.proximity_points_)

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    # -- predict -------------------------------------------------------------------

    def score_samples(self, X) -> np.ndarray:
        """The uncalibrated blended rank in (0, 1): the ranking officers see (higher = riskier)."""
        check_is_fitted(self, "detector_ref_")
        frame, arr = self._inputs(X)
        raw = self._raw_detector_scores(frame, arr)
        ranks = np.column_stack([_ecdf(ref, raw[:, j]) for j, ref in enumerate(self.detector_ref_)])
        return self._final(self._blend_rank(arr, ranks), raw)

    def _probability(self, score: np.ndarray) -> np.ndarray:
        if self.calibrator_ is not None:
            a, b = self.calibrator_
            p = _sigmoid(a * _logit(score) + b)
        else:
            p = np.power(score, self.power_)
        return np.clip(p, 0.0, 1.0)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probability of a violation: columns (clean, violation)."""
        p = self._probability(self.score_samples(X))
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of a violation relative to ``threshold``: positive exactly where ``predict`` says 1.
        Not a probability (that is ``predict_proba``)."""
        p = self._probability(self.score_samples(X))
        with np.errstate(divide="ignore"):
            return np.log(p) - np.log1p(-p) - float(_logit(np.array([self.threshold]))[0])

    def predict(self, X) -> np.ndarray:
        """1 (violation) where the probability exceeds ``threshold``, else 0."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    # -- explanation ---------------------------------------------------------------

    def feature_percentiles(self, X) -> pd.DataFrame:
        """Each input feature as the share of training rows at or below it (NaN stays NaN)."""
        check_is_fitted(self, "detector_ref_")
        frame, arr = self._inputs(X)
        pct = np.where(np.isnan(arr), np.nan, self._feature_ranks(arr))
        index = frame.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(pct, columns=list(self.feature_names_in_), index=index)

    def detector_percentiles(self, X) -> pd.DataFrame:
        """Each detector's score as the share of training rows it exceeds (columns ``detector:<name>``)."""
        check_is_fitted(self, "detector_ref_")
        frame, arr = self._inputs(X)
        ranks = self._detector_ranks(frame, arr)
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
        frame, arr = self._inputs(X)
        ranks = self._detector_ranks(frame, arr)
        d, k = self.n_features_in_, ranks.shape[1]
        feat = np.zeros((len(arr), d))
        det = np.zeros((len(arr), k))
        tails = self.ecod_.tail_contributions(arr)
        share = tails / np.where(tails.sum(axis=1, keepdims=True) > 0, tails.sum(axis=1, keepdims=True), 1.0)
        if self.classifier_ is not None and self.blend_ > 0:
            shap = self.classifier_.predict(np.column_stack([arr, ranks]), pred_contrib=True, num_threads=_threads(len(arr)))
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
