"""Officer-facing reasons with their numbers: why the ranking puts an entity where it is, in Chinese and English,
each with a stable machine-readable code and role (docs/reason_codes.md). The sentences are those of
``models.reason_texts``; this module chooses among them.

Every reason is a factual statement with the entity's own number and, where there is one, its peers' typical
value, so that its words cannot disagree with its number: no "clearly exceeds" at a ratio of 0.8, no "fell" for a
rise or a ratio of about 1, no clipped percentages. Reasons come, in order of their share of the entity's risk
(``RiskModel.contributions``), from the hidden-water indicators (``models.detectors.HiddenWater``, every one of
which has a sentence) and from the features LightGBM leans on (worded from ``features.dictionary``). A caveat
(rain in a combined sewer: ``CAVEAT_CODES``) argues against hidden water: it comes after the reasons it
qualifies and never stands alone; a lead whose risk no worded reason carries gets its strongest indicator
above its peers' median, else its known water use. Every entity gets at least one reason in the same form, so a
lead drawn at random for exploration reads like any other. A documented breach (the case track's) is named
after the others, for information: it never lifts the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from models.detectors import HIDDEN_WATER_COLUMNS, HiddenWater, _lookup
from models.reason_texts import (  # noqa: F401  (re-exported: the names callers and tests import from here)
    CAVEAT, CAVEAT_CODES, EVIDENCE, FALL_SHOWN, INDICATOR_REASONS, PEER_SCOPED, RELATIVE_CLIP, RISE_SHOWN, SPOKEN_FOR,
    Reason, _num, _pct, _times, documented, feature_reason, known_use,
)

# the former private names of the sentences, kept for callers of this module
_feature_reason, _known_use, _documented = feature_reason, known_use, documented

# units of the features a reason may quote: volumes, ratios, shares and durations an officer can check;
# scores, z-values, capital, age and linkage confidences are model inputs, not reasons to visit
FEATURE_REASON_UNITS = ("m³", "m³/year", "m³/person", "ratio", "share", "relative", "months")
# the peer levels an indicator's median may come from, finest first (models.detectors.HiddenWater._keys)
SCOPE_LEVELS = {"industry": ("industry", "section", "city"), "section": ("section", "city"), "city": ("city",)}


class _Rows:
    """Row ``i`` of a frame as the reasons read it (``row.get(column, default)``), a column taken out of the
    frame once, as the objects ``frame.iloc[i]`` would hold, when first asked for."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.columns: dict[str, np.ndarray] = {}
        self.i = 0

    def row(self, i: int) -> "_Rows":
        self.i = i
        return self

    def get(self, name: str, default=None):
        if name not in self.columns:
            if name not in self.frame.columns:
                return default
            self.columns[name] = self.frame[name].astype(object).to_numpy()
        return self.columns[name][self.i]


@dataclass
class _Evidence:
    """What every row's reasons are read from, taken out of the model and the frame once: per indicator code
    its z, its weight, its peer median, the peer level that median came from and its contribution column; per
    worded feature its contribution and percentile."""
    codes: list[str]
    features: list[str]
    entries: dict
    z: dict[str, np.ndarray]
    weight: dict[str, float]
    peer: dict[str, np.ndarray]
    scope: dict[str, np.ndarray]
    contrib: dict[str, np.ndarray]
    indicator_columns: dict[str, str]
    percentiles: dict[str, np.ndarray] | None
    low_only: dict[str, bool]


def _peer_scopes(hidden: HiddenWater, frame: pd.DataFrame, codes) -> dict[str, np.ndarray]:
    """Per indicator whose sentence names its peers: the level each row's peer median came from ("industry",
    "section", "city"; None for a row with no industry code, whose peers are the others without one)."""
    keys, out = hidden._keys(frame), {}
    no_industry = hidden.industry not in frame.columns
    indicators = {ind.code: ind for ind in hidden._indicators()}
    for code in codes:
        ind, label = indicators[code], np.full(len(frame), None, dtype=object)
        todo = np.ones(len(frame), dtype=bool)
        for key, (medians, _), level in zip(keys[ind.peers], hidden.peers_[code], SCOPE_LEVELS[ind.peers]):
            here = todo & np.isfinite(_lookup(medians, key))
            if level == "city" or no_industry:
                label[here] = "city"
            else:
                label[here & (key != "")] = level
            todo &= ~here
        out[code] = label
    return out


def _evidence(model, frame: pd.DataFrame) -> _Evidence:
    """Contributions, indicator z-scores and peer medians, and the features worth a sentence: those the
    indicators do not already speak for, with a unit the sentences can word."""
    contrib = model.contributions(frame)
    hidden = [d for d in getattr(model, "domain_", []) if isinstance(d, HiddenWater)]
    z = hidden[0].indicator_z(frame) if hidden else pd.DataFrame(index=frame.index)
    peer = hidden[0].peer_medians(frame) if hidden else pd.DataFrame(index=frame.index)
    codes = [c for c in z.columns if c in INDICATOR_REASONS]
    ind_cols = {c: f"indicator:{hidden[0].name}:{c}" for c in codes} if hidden else {}
    weight = {ind.code: float(ind.weight) for ind in hidden[0]._indicators()} if hidden else {}
    entries = _dictionary()
    features = [c for c in getattr(model, "feature_names_in_", []) if c in contrib.columns and c in frame.columns
                and not (hidden and c in HIDDEN_WATER_COLUMNS)
                and (c not in entries or entries[c].get("unit") in FEATURE_REASON_UNITS)]
    pct = model.feature_percentiles(frame) if features and hasattr(model, "feature_percentiles") else None
    return _Evidence(
        codes=codes, features=features, entries=entries,
        z={c: z[c].to_numpy(dtype="float64") for c in codes}, weight=weight,
        peer={c: peer[c].to_numpy(dtype="float64") for c in codes},
        scope=_peer_scopes(hidden[0], frame, [c for c in PEER_SCOPED if c in codes]) if hidden else {},
        contrib={c: contrib[c].to_numpy(dtype="float64") for c in [*ind_cols.values(), *features] if c in contrib.columns},
        indicator_columns=ind_cols,
        percentiles={name: pct[name].to_numpy(dtype="float64") for name in features} if pct is not None else None,
        # a sentence about how little ("仅") is worded only for a value low in the city, never for a high one
        low_only={name: "仅" in ((entries.get(name) or {}).get("reason_zh") or "") for name in features},
    )


def _dictionary() -> dict:
    try:  # the features layer may not be importable in a stripped deployment: fall back to generic wording
        from features.dictionary import DATA_DICTIONARY
    except ImportError:  # pragma: no cover
        return {}
    return DATA_DICTIONARY


def _ranked_candidates(ev: _Evidence, n: int, min_deviation: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the candidate reasons that add to its risk in order of their share (ties: indicators first, in
    order, then features), as column positions into [*ev.codes, *ev.features], and how many there are. An
    indicator is a candidate when its z is above the peers' median and it adds to the risk; a feature when
    LightGBM leans on it and its value stands out in the city in the direction its sentence speaks of (high;
    low for a sentence about how little, "仅"). Worked out for all rows at once."""
    shares, eligible = [], []
    for code in ev.codes:
        column = ev.indicator_columns.get(code)
        share = ev.contrib[column] if column in ev.contrib else np.zeros(n)
        zi = ev.z[code]
        shares.append(share)
        eligible.append(np.isfinite(zi) & (zi > 0) & (share > 0))
    for name in ev.features:
        share = ev.contrib[name]
        q = ev.percentiles[name] if ev.percentiles is not None else np.full(n, np.nan)
        stands_out = (0.5 - q >= min_deviation) if ev.low_only[name] else (q - 0.5 >= min_deviation)
        shares.append(share)
        eligible.append((share > 0) & np.isfinite(q) & stands_out)
    if not shares:
        return np.zeros((n, 0), dtype=np.int16), np.zeros(n, dtype=np.int64)
    ok = np.column_stack(eligible)
    keyed = np.where(ok, -np.column_stack(shares).astype("float64"), np.inf)
    return np.argsort(keyed, axis=1, kind="stable").astype(np.int16), ok.sum(axis=1)


def _indicator_reason(ev: _Evidence, row, i: int, code: str) -> Reason | None:
    scope = ev.scope[code][i] if code in ev.scope else None
    return INDICATOR_REASONS[code](row, float(ev.peer[code][i]), scope)


def _candidate(ev: _Evidence, row, i: int, j: int) -> Reason | None:
    """Candidate ``j`` of row ``i`` as a sentence (None where its sentence does not hold for the row). A feature an
    indicator's sentence already quotes (use per employee) is worded by that sentence, with its peers."""
    if j < len(ev.codes):
        return _indicator_reason(ev, row, i, ev.codes[j])
    name = ev.features[j - len(ev.codes)]
    if SPOKEN_FOR.get(name) in ev.codes:
        found = _indicator_reason(ev, row, i, SPOKEN_FOR[name])
        if found is not None:
            return found
    return feature_reason(name, _num(row, name), ev.entries.get(name) or {})


def _risk_reasons(ev: _Evidence, row, i: int, top: int, ranked: tuple[np.ndarray, np.ndarray]) -> list[Reason]:
    """The reasons that add most to row ``i``'s risk (``_ranked_candidates``), in order of their share: ``top``
    of them, read on past the ``top`` while all are caveats until one is not; a candidate whose sentence does not
    apply to the row, or says what an earlier one said, is passed over."""
    order, count = ranked
    chosen: list[Reason] = []
    for j in order[i, : count[i]]:
        reason = _candidate(ev, row, i, int(j))
        if reason is None or any(r.code == reason.code for r in chosen):
            continue
        chosen.append(reason)
        if len(chosen) >= top and any(r.role != CAVEAT for r in chosen):
            break
    return chosen


def _ordinary_reasons(ev: _Evidence, row, i: int, top: int) -> list[Reason]:
    """Nothing worded carries the row's risk: its indicators above their peers' median, the one that adds most to
    the risk first (its share, then its evidence w (z - w / 2)), else its known water use."""
    def strength(code: str) -> tuple[float, float]:
        column = ev.indicator_columns.get(code)
        share = float(ev.contrib[column][i]) if column in ev.contrib else 0.0
        w, z = ev.weight.get(code, 1.0), float(ev.z[code][i])
        return -share, -w * (z - w / 2.0)

    chosen: list[Reason] = []
    for code in sorted((c for c in ev.codes if np.isfinite(ev.z[c][i]) and ev.z[c][i] > 0), key=strength):
        reason = _indicator_reason(ev, row, i, code)
        if reason is not None and len(chosen) < top:
            chosen.append(reason)
    return chosen or [known_use(row)]


def _with_caveats_last(chosen: list[Reason], fallback, top: int) -> list[Reason]:
    """The supporting reasons first, in their order, then the caveats that qualify them, ``top`` in all; with no
    supporting reason, ``fallback()``'s go first: a caveat never stands alone."""
    support = [r for r in chosen if r.role != CAVEAT]
    caveats = [r for r in chosen if r.role == CAVEAT]
    return ((support or fallback()) + caveats)[:top]


def explain_reasons(model, X: pd.DataFrame, top: int = 3, min_deviation: float = 0.25) -> list[list[Reason]]:
    """For every row of X (the snapshot's model columns, and any other snapshot columns the sentences quote),
    up to ``top`` reasons in order of their share of the risk, caveats after the reasons they qualify, then the
    documented breach if any.

    A hidden-water indicator is a reason when it adds to the risk (its z above the peers' median); a feature
    is one when LightGBM leans on it and its value stands out in the city (``min_deviation`` in percentile terms
    above the median; below it, instead, for a sentence about how little, "仅"). A row with no such reason that
    supports its rank gets its indicators above their peers' median, strongest first, else its known water use."""
    if len(X) == 0:
        return []
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=list(model.feature_names_in_))
    ev = _evidence(model, frame)
    rows = _Rows(frame.reset_index(drop=True))
    ranked = _ranked_candidates(ev, len(frame), min_deviation)
    out: list[list[Reason]] = []
    for i in range(len(X)):
        row = rows.row(i)
        chosen = _with_caveats_last(_risk_reasons(ev, row, i, top, ranked),
                                    partial(_ordinary_reasons, ev, row, i, top), top)
        breach = documented(row)
        if breach is not None:
            chosen.append(breach)
        out.append(chosen)
    return out


def explain(model, X: pd.DataFrame, top: int = 3, min_deviation: float = 0.25) -> list[list[str]]:
    """The Chinese sentences of ``explain_reasons``."""
    return [[r.text_zh for r in reasons] for reasons in explain_reasons(model, X, top, min_deviation)]
