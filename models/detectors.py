"""Unsupervised detectors: scikit-learn outlier estimators (``fit(X)``, ``score_samples``, ``decision_function``,
``predict``) plus ``anomaly_score(X)``.

Sign conventions are scikit-learn's: ``score_samples`` is higher for more *normal* rows, ``decision_function``
is ``score_samples - offset_`` and negative for outliers, ``predict`` gives -1 for outliers and 1 for inliers.
``anomaly_score`` is ``-score_samples``: higher = more anomalous, the direction the risk model reads.

Two kinds live here. Generic ones (``ECOD``, ``IsolationForestDetector``) work on any numeric
table and carry the risk model when inspections have found few or no violations yet. Domain
ones (``WaterBalanceExcess``, ``LevelShift``, ``PeerZScore``, ``ComplianceEvidence``) read named columns of the entity
snapshot (``features.profiles.entity_snapshot``) and say why in the bureau's own terms; when a
column they need is absent they score 0 so that the same model still runs on any table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from models.indicators import (  # noqa: F401  (re-exported: fitted models pickle these names)
    EVENT_Z, HIDDEN_WATER_COLUMNS, HIDDEN_WATER_INDICATORS, STOPPED_SHARE, Indicator, _balance_level, _balance_step,
    _dewatering_unpermitted, _drawing_water, _former_holder, _inflow_drop, _meter_drop, _meter_flat,
    _no_known_inflow, _nz, _shortfall, _significant, _use_per_employee, corroborated, fit_shared_steps, shared_step,
)
from models.numerics import column_counts

# -- helpers --------------------------------------------------------------------


def as_float_frame(X) -> pd.DataFrame:
    """Numeric view of a table: DataFrame columns kept by name, numpy columns named x0..xn."""
    if isinstance(X, pd.DataFrame):
        num = X.select_dtypes(include=["number", "bool", "boolean"])
        return num.astype("float64")
    arr = np.asarray(X, dtype="float64")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


FEW_KEYS = 64  # up to this many, _lookup reads the dict key by key


class NamedColumns:
    """A few rows as a float block with column names plus text columns: what the named detectors read, without a
    DataFrame (scoring one row through pandas costs more than the model). ``values``: rows x ``names``."""

    def __init__(self, values: np.ndarray, names, text: dict[str, list] | None = None, index=None):
        self.values = np.asarray(values, dtype="float64")
        self.names = list(names)
        self.position = {n: j for j, n in enumerate(self.names)}
        self.text = dict(text or {})
        self.index = pd.RangeIndex(len(self.values)) if index is None else index
        self.columns = self.names + [c for c in self.text if c not in self.position]

    def __len__(self) -> int:
        return len(self.values)

    def floats(self, names) -> np.ndarray:
        """Rows x names, NaN for a name it does not have."""
        out = np.full((len(self.values), len(names)), np.nan)
        for k, name in enumerate(names):
            j = self.position.get(name)
            if j is not None:
                out[:, k] = self.values[:, j]
        return out

    def strings(self, name: str) -> list:
        return list(self.text.get(name, [None] * len(self.values)))


def _column(X, name: str | None, index) -> np.ndarray:
    if name is not None and isinstance(X, pd.DataFrame) and name in X.columns:
        try:
            return X[name].to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            return pd.to_numeric(X[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.full(len(index), np.nan)


def _groups(X, name: str | None, n: int) -> np.ndarray:
    """Group labels as strings; one global group when the column is absent."""
    if name is not None and isinstance(X, pd.DataFrame) and name in X.columns:
        return X[name].astype("str").fillna("").to_numpy()
    return np.full(n, "", dtype=object)


def _lookup(values: dict[str, float], keys: np.ndarray) -> np.ndarray:
    """``values.get(k, NaN)`` for every (string) key: a few keys (one-row scoring) straight from the dict,
    many by one hash join (building the index of all groups costs more than a handful of gets)."""
    if len(keys) <= FEW_KEYS:
        return np.array([values.get(k, np.nan) for k in keys.tolist()], dtype="float64")
    found = pd.Index(list(values), dtype=object).get_indexer(np.asarray(keys, dtype=object))
    return np.array([*values.values(), np.nan], dtype="float64")[found]  # -1 (no group): the NaN at the end


class _OutlierBase(OutlierMixin, BaseEstimator):
    """scikit-learn's outlier API on top of ``_anomaly(X)`` (higher = more anomalous) of validated arrays."""

    def score_samples(self, X) -> np.ndarray:
        """Higher = more normal (scikit-learn's sign)."""
        return -self.anomaly_score(X)

    def anomaly_score(self, X) -> np.ndarray:
        """Higher = more anomalous."""
        check_is_fitted(self, "offset_")
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64", reset=False)
        return self._anomaly(X)

    def _set_offset(self, X: np.ndarray) -> None:
        """``offset_``: the training rows' score_samples at the ``contamination`` quantile, so that about that
        share of them get a negative decision_function."""
        self.offset_ = float(np.quantile(-self._anomaly(X), self.contamination))

    def decision_function(self, X) -> np.ndarray:
        """Negative for outliers: ``score_samples(X) - offset_``."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """-1 for outliers, 1 for inliers."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# -- generic --------------------------------------------------------------------


class ECOD(_OutlierBase):
    """Empirical-CDF outlier detection (Li et al., TKDE 2022): a row is odd when it sits in the far
    tail of many features' marginal distributions. Parameter-free, deterministic, cheap, and among
    the strongest unsupervised detectors on ADBench; NaN contributes nothing."""

    def __init__(self, contamination: float = 0.1):
        self.contamination = contamination

    def fit(self, X, y=None):
        X = self._marginals(X)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no tail, no skew
            centred = X - np.nanmean(X, axis=0)
            m2 = np.nanmean(centred**2, axis=0)
            m3 = np.nanmean(centred**3, axis=0)
            skew = np.where(m2 > 0, m3 / np.power(m2, 1.5), 0.0)
        self.skewness_ = np.nan_to_num(skew)
        self._set_offset(X)
        return self

    def fit_marginals(self, X) -> ECOD:
        """Each feature's ECDF only, for ranks: no ``offset_`` (``fit`` scores every row for it): no outlier score."""
        self._marginals(X)
        return self

    def _marginals(self, X) -> np.ndarray:
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64")
        self.sorted_, self.n_valid_ = np.sort(X, axis=0), np.sum(~np.isnan(X), axis=0)  # NaN sort last
        return X

    def _tails(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        below, upto = column_counts(self.sorted_, self.n_valid_, X)
        m = self.n_valid_[None, :].astype("float64")
        ok = ~np.isnan(X) & (m > 0)
        left = np.where(ok, -np.log((upto + 1.0) / (m + 1.0)), 0.0)  # share <= x
        right = np.where(ok, -np.log((m - below + 1.0) / (m + 1.0)), 0.0)  # share >= x
        return left, right

    def _anomaly(self, X: np.ndarray) -> np.ndarray:
        left, right = self._tails(X)
        auto = np.where(self.skewness_ < 0, left, right)
        # PyOD's aggregation: per feature the skew-chosen tail or the mean of both tails, summed in column order
        per = np.maximum(auto, 0.5 * (left + right))
        total = np.zeros(len(X))
        for j in range(per.shape[1]):
            total += per[:, j]
        return total

    def tail_contributions(self, X) -> np.ndarray:
        """Per-feature share of the score: the larger tail of each feature (for reasons)."""
        check_is_fitted(self, "offset_")
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64", reset=False)
        left, right = self._tails(X)
        return np.maximum(left, right)


class FlatForest:
    """A fitted scikit-learn IsolationForest as flat node arrays, scored for all trees at once.

    scikit-learn calls each tree in turn (``tree.apply`` per tree, a Python-level dispatch per tree); here every
    row walks every tree in one vectorised step per depth level, so a single row costs a handful of numpy
    operations instead of hundreds of calls. The path length of a leaf (its depth plus the expected depth of the
    training samples left in it) is precomputed. Scores equal ``IsolationForest.score_samples`` (same float32
    comparisons; the per-tree path lengths are summed in tree order as there)."""

    def __init__(self, forest: IsolationForest):
        trees = forest.estimators_
        # scikit-learn indexes features per tree only when it subsampled them
        every = np.arange(forest.n_features_in_)
        subsampled = forest._max_features != forest.n_features_in_
        feats = forest.estimators_features_ if subsampled else [every] * len(trees)
        sizes = np.array([t.tree_.node_count for t in trees])
        offsets = np.r_[0, np.cumsum(sizes)[:-1]]
        left, right, feature, threshold, path = [], [], [], [], []
        for tree, cols, off in zip(trees, feats, offsets):
            t = tree.tree_
            leaf = t.children_left == -1
            left.append(np.where(leaf, -1, t.children_left + off))
            right.append(np.where(leaf, -1, t.children_right + off))
            feature.append(np.where(leaf, 0, np.asarray(cols)[np.maximum(t.feature, 0)]))
            threshold.append(t.threshold)
            path.append(t.compute_node_depths() + _average_path_length(t.n_node_samples) - 1.0)
        self.left = np.concatenate(left).astype(np.int64)
        self.right = np.concatenate(right).astype(np.int64)
        self.feature = np.concatenate(feature).astype(np.int64)
        self.threshold = np.concatenate(threshold)
        self.path = np.concatenate(path)
        self.roots = offsets.astype(np.int64)
        self.is_leaf = self.left < 0
        self.depth = int(max(t.tree_.max_depth for t in trees)) if trees else 0
        self.denominator = len(trees) * _average_path_length([forest._max_samples])[0]

    def score_samples(self, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """IsolationForest.score_samples (higher = more normal) of a float array without NaN."""
        X32 = np.asarray(X, dtype=np.float32).astype(np.float64)  # the trees compare float32 inputs
        out = np.empty(len(X32))
        for start in range(0, len(X32), chunk):
            out[start : start + chunk] = self._score(X32[start : start + chunk])
        return out

    def _score(self, X: np.ndarray) -> np.ndarray:
        n = len(X)
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            leaf = self.is_leaf[node]
            if leaf.all():
                break
            go_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
        lengths = self.path[node]
        depths = np.zeros(n)
        for t in range(lengths.shape[1]):  # tree order, as scikit-learn sums them
            depths += lengths[:, t]
        if self.denominator == 0:
            return -np.ones(n)
        return -(2.0 ** (-depths / self.denominator))


class IsolationForestDetector(_OutlierBase):
    """scikit-learn's IsolationForest, NaN imputed by the training median (isolation trees cannot split on
    NaN), scored by ``FlatForest`` in one vectorised pass over all trees."""

    def __init__(self, n_estimators: int = 100, max_samples="auto", max_features: float = 1.0,
                 contamination: float = 0.1, random_state=None, n_jobs=None):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.contamination = contamination
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are filled with 0
            med = np.nanmedian(X, axis=0) if np.isnan(X).any() else np.median(X, axis=0)
        self.fill_ = np.nan_to_num(med)
        forest = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, max_features=self.max_features,
            random_state=check_random_state(self.random_state), n_jobs=self.n_jobs,
        ).fit(self._impute(X))
        self.forest_ = FlatForest(forest)
        self._set_offset(X)
        return self

    def _impute(self, X: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(X), self.fill_, X)

    def _anomaly(self, X: np.ndarray) -> np.ndarray:
        return -self.forest_.score_samples(self._impute(X))


# -- domain ---------------------------------------------------------------------


class _NamedDetector(BaseEstimator):
    """Base of detectors that read named snapshot columns (a DataFrame, not an array); ``anomaly_score`` is the
    strength of what they look for, ``score_samples`` its negative (scikit-learn's sign)."""

    name = "detector"

    def fit(self, X, y=None):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} reads named columns: pass a DataFrame")
        self._fit(X)
        self.fitted_ = True
        return self

    def _fit(self, X: pd.DataFrame) -> None:
        pass

    def anomaly_score(self, X) -> np.ndarray:
        """How strongly the row shows what the detector looks for (>= 0; 0 = nothing)."""
        check_is_fitted(self, "fitted_")
        if not isinstance(X, (pd.DataFrame, NamedColumns)):
            raise TypeError(f"{type(self).__name__} reads named columns: pass a DataFrame")
        return np.nan_to_num(self._score(X), nan=0.0, posinf=0.0, neginf=0.0)

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's sign: higher = more normal (``-anomaly_score``)."""
        return -self.anomaly_score(X)


def _named_values(X, names) -> dict[str, np.ndarray]:
    """The named columns as float arrays (NaN where absent or not a number), read in one conversion."""
    names = list(names)
    if isinstance(X, NamedColumns):
        block = X.floats(names)
        return {n: block[:, j] for j, n in enumerate(names)}
    sub = X.reindex(columns=names)
    try:
        block = sub.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        block = np.column_stack([_column(X, n, X.index) for n in names]) if names else np.zeros((len(X), 0))
    return {n: block[:, j] for j, n in enumerate(names)}


class HiddenWater(_NamedDetector):
    """Water that no record explains: the trace of a private well, unpermitted abstraction or a tampered meter.

    Each indicator (``HIDDEN_WATER_INDICATORS``) says how far the entity's known water in (supply + metered
    abstraction) falls short of what another record says it uses or needs: its metered dry-season discharge
    (level over 12 months, and a step up on its own 36 months), its water-use plan, its permit quota, the
    meter's own fall that no supply replaced and no drop of everything alike explains, and, where no metered
    discharge can tell use from decline, the known water in stepping down. Each is judged against the
    entity's peers in this city as a robust z-score (median and 1.4826 x MAD of the peers, fitted on the
    training rows, capped at +-``cap``; a step counts from 0 up): how unusual the shortfall is among entities
    that are mostly honest. The score adds the log-likelihood ratio w (z - w / 2) of each indicator the entity
    has (the evidence of z if a violation shifts the indicator by w of its peers' spreads; ``_parts``), so
    independent records that agree add up, one that disagrees (a balanced metered discharge beside a plan
    shortfall) subtracts, a record the entity does not have adds nothing, and a documented breach adds only beside
    other evidence (``Indicator.corroborating``). No label is used: the peers' spread and each industry's typical
    fall at each month (``shared_steps_``, net of which a supply drop counts) are measured on the city itself."""

    name = "hidden_water"

    def __init__(self, indicators=None, industry: str = "industry_code", min_peers: int = 8, cap: float = 6.0):
        self.indicators = indicators
        self.industry = industry
        self.min_peers = min_peers
        self.cap = cap

    def _indicators(self) -> tuple[Indicator, ...]:
        """The indicators fitted (kept with the model, so a model scores as it was fitted), else those to fit."""
        fitted = getattr(self, "indicators_", None)
        if fitted is not None:
            return fitted
        return tuple(self.indicators) if self.indicators is not None else HIDDEN_WATER_INDICATORS

    def _keys(self, X: pd.DataFrame) -> dict[str, list[np.ndarray]]:
        """Peer-group keys per kind of peers, from the finest group to the city (one group)."""
        city = np.full(len(X), "", dtype=object)
        if self.industry in X.columns:
            values = X.strings(self.industry) if isinstance(X, NamedColumns) else X[self.industry].tolist()
            industry = np.array(["" if v is None or v != v else str(v) for v in values], dtype=object)
        else:
            industry = city
        section = np.array([c[:1] for c in industry.tolist()], dtype=object)
        return {"city": [city], "section": [section, city], "industry": [industry, section, city]}

    def _raw(self, X: pd.DataFrame, with_caps: bool = False):
        cols, trade = _named_values(X, HIDDEN_WATER_COLUMNS), self._keys(X)["industry"][:2]
        # the fall of the entity's trade at its own step's month (a model pickled before it reads 0)
        cols["inflow_peer_step"] = shared_step(getattr(self, "shared_steps_", None), cols, trade)
        raw = np.column_stack([ind.raw(cols) for ind in self._indicators()])
        if not with_caps:
            return raw
        caps = np.column_stack([ind.capped_where(cols) if ind.capped_where is not None else np.zeros(len(X), bool)
                                for ind in self._indicators()])
        return raw, caps

    def _fit(self, X: pd.DataFrame) -> None:
        self.indicators_ = None
        self.indicators_ = self._indicators()
        self.shared_steps_ = fit_shared_steps(_named_values(X, HIDDEN_WATER_COLUMNS), self._keys(X)["industry"][:2])
        raw, keys = self._raw(X), self._keys(X)
        self.peers_ = {}
        for j, ind in enumerate(self._indicators()):
            r = raw[:, j]
            ok = np.isfinite(r)
            levels = []
            for key in keys[ind.peers]:
                if not ok.any():
                    levels.append(({}, {}))
                    continue
                frame = pd.DataFrame({"k": key[ok], "r": r[ok]})
                g = frame.groupby("k")["r"]
                med, n = g.median(), g.size()
                dev = frame["r"].to_numpy() - frame["k"].map(med).to_numpy(dtype="float64")
                if ind.upper_spread:  # the spread on the side the indicator counts
                    above = dev > 0
                    mad = pd.Series(dev[above]).groupby(frame["k"].to_numpy()[above]).median() * 1.4826
                    mad = mad.reindex(med.index)
                else:
                    mad = pd.Series(np.abs(dev)).groupby(frame["k"].to_numpy()).median() * 1.4826
                keep = n[n >= self.min_peers].index
                levels.append(({k: float(v) for k, v in med[keep].items()},
                               {k: float(v) for k, v in mad[keep].items()}))
            self.peers_[ind.code] = levels
        self.codes_ = [ind.code for ind in self._indicators()]

    def _peer_stats(self, keys: list[np.ndarray], code: str, min_scale: float) -> tuple[np.ndarray, np.ndarray]:
        """The median and spread of each row's finest peer group with enough members."""
        n = len(keys[0])
        med, scale = np.full(n, np.nan), np.full(n, np.nan)
        for key, (medians, mads) in zip(keys, self.peers_[code]):
            todo = np.flatnonzero(np.isnan(med))
            if not len(todo):
                break
            med[todo] = _lookup(medians, key[todo])
            scale[todo] = _lookup(mads, key[todo])
        return med, np.maximum(_nz(scale, nan=min_scale), min_scale)

    def _z(self, X: pd.DataFrame) -> np.ndarray:
        """Rows x indicators: robust z against the peers, NaN where the row has no such record."""
        check_is_fitted(self, "peers_")
        (raw, caps), keys = self._raw(X, with_caps=True), self._keys(X)
        z = np.full(raw.shape, np.nan)
        for j, ind in enumerate(self._indicators()):
            med, scale = self._peer_stats(keys[ind.peers], ind.code, ind.min_scale)
            if ind.event:  # judged against "no", whatever the peers say
                med, scale = np.zeros(len(med)), np.full(len(med), ind.min_scale)
            with np.errstate(invalid="ignore"):
                zj = np.clip((raw[:, j] - med) / scale, 0.0 if ind.one_sided else -self.cap, self.cap)
                zj = np.where(caps[:, j], np.minimum(zj, ind.capped), zj)
            z[:, j] = np.where(np.isfinite(raw[:, j]) & np.isfinite(med), zj, np.nan)
        return z

    def _parts(self, z: np.ndarray) -> np.ndarray:
        """Each indicator's log-likelihood ratio: w (z - w / 2), the evidence of z if a violation shifts the
        indicator by w of its peers' spreads (0 where the row has no such record)."""
        w = np.array([ind.weight for ind in self._indicators()])
        return corroborated(np.where(np.isnan(z), 0.0, w[None, :] * (_nz(z) - w[None, :] / 2.0)), self._indicators())

    @staticmethod
    def _total(parts: np.ndarray) -> np.ndarray:
        total = np.zeros(len(parts))
        for j in range(parts.shape[1]):
            total += parts[:, j]
        return total

    def indicator_z(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each indicator's robust z against the entity's peers (NaN where the entity has no such record)."""
        return pd.DataFrame(self._z(X), columns=self.codes_, index=X.index)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each indicator's log-likelihood ratio w (z - w / 2) (0 where absent): they sum to the score."""
        return pd.DataFrame(self._parts(self._z(X)), columns=self.codes_, index=X.index)

    def peer_medians(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each indicator's raw value typical of the row's peers (their median), for reasons to compare with."""
        check_is_fitted(self, "peers_")
        keys = self._keys(X)
        out = pd.DataFrame({ind.code: self._peer_stats(keys[ind.peers], ind.code, ind.min_scale)[0]
                            for ind in self._indicators()}, index=X.index)
        if "supply_drop" in out:  # a step's peers are its trade at the same month: their typical change (log)
            out["supply_drop"] = self.trade_fall(X)
        return out

    def trade_fall(self, X: pd.DataFrame) -> np.ndarray:
        """The typical change in log (<= 0; 0 where its trade did not fall with it) of the row's industry when its
        own known water in stepped (``models.indicators.fit_shared_steps``): what a downturn of the trade explains."""
        fall = shared_step(getattr(self, "shared_steps_", None), _named_values(X, HIDDEN_WATER_COLUMNS),
                           self._keys(X)["industry"][:2])
        return np.minimum(fall, 0.0)

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        return self._total(self._parts(self._z(X)))

    def score_with_indicators(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``anomaly_score`` and the indicators' z (rows x indicators array) at once."""
        check_is_fitted(self, "fitted_")
        z = self._z(X)
        return np.nan_to_num(self._total(self._parts(z)), nan=0.0, posinf=0.0, neginf=0.0), z


DOMAIN_DETECTORS = (HiddenWater,)


def domain_detectors() -> list:
    """Fresh instances of the snapshot's domain detectors with their default columns."""
    return [HiddenWater()]
