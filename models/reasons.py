"""Officer-facing reasons: the features and detectors that push a row's risk up, in Chinese, with numbers.

The reasons come from ``RiskModel.contributions`` (LightGBM SHAP values plus the detectors'
shares); wording comes from ``features.dictionary.DATA_DICTIONARY`` (``reason_zh`` with a
``{value}`` placeholder) when it knows the feature, else a generic sentence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GENERIC_ZH = "{meaning_zh}为{value}{unit}，明显高于同行业"
FALLBACK_ZH = "综合风险评分为{value:.1%}，各单项指标均无突出异常"

# detector columns of RiskModel.contributions: sentence and the snapshot column whose value it quotes
DETECTOR_TEMPLATES: dict[str, tuple[str, str | None]] = {
    "detector:water_balance_excess": ("排水量明显超出供水与取水量按同行业排水系数可解释的水平（平衡比{value:.1f}倍）", "balance_ratio_12m"),
    "detector:level_shift": ("用水或排水出现持续的水平突变（平衡比变化{value:+.2f}）", "balance_shift"),
    "detector:peer_z": ("多项用水指标显著偏离同行业（平衡比稳健Z值{value:+.1f}）", "balance_ratio_peer_z"),
    "detector:compliance_evidence": ("许可、计量与纳税记录中存在违规取用水线索（证据强度高于{value:.0%}的企业）", None),
    "detector:isolation_forest": ("综合用水特征与绝大多数企业差异明显（异常程度高于{value:.0%}的企业）", None),
    "detector:ecod": ("多项指标处于全市分布的极端位置（异常程度高于{value:.0%}的企业）", None),
}


def _dictionary() -> dict:
    try:  # the features layer may not be importable in a stripped deployment: fall back to generic wording
        from features.dictionary import DATA_DICTIONARY
    except ImportError:  # pragma: no cover
        return {}
    return DATA_DICTIONARY


def _format(template: str, value, entry: dict) -> str:
    try:
        return template.format(value=value, meaning_zh=entry.get("meaning_zh", ""), unit=entry.get("unit", ""))
    except (ValueError, TypeError, KeyError, IndexError):
        shown = f"{value:.3g}" if isinstance(value, (float, np.floating)) and np.isfinite(value) else str(value)
        return GENERIC_ZH.format(meaning_zh=entry.get("meaning_zh", ""), value=shown, unit="")


UNITS_ZH = {"m³": "立方米", "m³/year": "立方米/年", "m³/person": "立方米/人", "persons": "人", "months": "个月",
            "days": "天", "years": "年", "10k yuan": "万元", "count": "个"}


def _generic(name: str, value: float, entry: dict) -> str:
    unit = UNITS_ZH.get(entry.get("unit", ""), "")  # ratios, shares, scores and flags read without a unit
    shown = f"{value:,.3g}" if np.isfinite(value) else "缺失"
    return GENERIC_ZH.format(meaning_zh=entry.get("meaning_zh") or name, value=shown, unit=unit)


def explain(
    model, X: pd.DataFrame, top: int = 3, templates: dict | None = None, min_deviation: float = 0.25
) -> list[list[str]]:
    """For every row of X, up to ``top`` reasons (largest positive contributions first).

    ``templates``: name -> entry with ``reason_zh``/``meaning_zh``/``unit``, overriding the data
    dictionary's. A feature is skipped when missing for the row, or unless its value is above the
    training median by ``min_deviation`` in percentile terms (or below it, for sentences about a
    signed change or an "only" share).
    """
    contrib = model.contributions(X)
    names = list(contrib.columns)
    values = contrib.to_numpy(dtype="float64")
    n = len(values)
    if n == 0:
        return []
    entries = {**_dictionary(), **(templates or {})}
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=list(model.feature_names_in_))
    # the value each column quotes: its own for features, a snapshot column or the detector rank for detectors
    quoted = np.full(values.shape, np.nan)
    for j, name in enumerate(names):
        if name in frame.columns:
            quoted[:, j] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        elif name in DETECTOR_TEMPLATES:
            src = DETECTOR_TEMPLATES[name][1]
            if src is not None and src in frame.columns:
                quoted[:, j] = pd.to_numeric(frame[src], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    detector_rank = model.detector_percentiles(X) if hasattr(model, "detector_percentiles") else None
    if detector_rank is not None:
        for j, name in enumerate(names):
            if name in DETECTOR_TEMPLATES and DETECTOR_TEMPLATES[name][1] is None and name in detector_rank.columns:
                quoted[:, j] = detector_rank[name].to_numpy()
    usable = (values > 0) & np.isfinite(quoted)
    if hasattr(model, "feature_percentiles"):
        # a feature is a reason only when the row's value is unusual (outside the middle of the city's
        # distribution): a median value that happens to push the trees up explains nothing to an officer
        pct = model.feature_percentiles(X)
        for j, name in enumerate(names):
            if name in pct.columns:
                q = pct[name].to_numpy()
                high = q >= 0.5 + min_deviation
                # sentences say "high" unless they read a signed change or "only" (仅): then low counts too
                sentence = (entries.get(name) or {}).get("reason_zh") or ""
                low = (q <= 0.5 - min_deviation) if ("{value:+" in sentence or "仅" in sentence) else False
                usable[:, j] &= high | low
    ranked = np.where(usable, values, -np.inf)
    k = min(top, ranked.shape[1])
    order = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(ranked, order, axis=1) > -np.inf

    out: list[list[str]] = [[] for _ in range(n)]
    rows, slots = np.nonzero(chosen)  # only the chosen (row, reason) pairs are formatted
    for i, s in zip(rows.tolist(), slots.tolist()):
        j = order[i, s]
        name, value = names[j], float(quoted[i, j])
        entry = entries.get(name) or {}
        if name in DETECTOR_TEMPLATES:
            out[i].append(_format(DETECTOR_TEMPLATES[name][0], value, entry))
        elif entry.get("reason_zh"):
            out[i].append(_format(entry["reason_zh"], value, entry))
        else:
            out[i].append(_generic(name, value, entry))
    empty = [i for i in range(n) if not out[i]]
    if empty:  # every listed entity gets a sentence an officer can read, with its number
        risk = model.predict_proba(frame.iloc[empty])[:, 1]
        for i, p in zip(empty, risk.tolist()):
            out[i].append(FALLBACK_ZH.format(value=p))
    return out
