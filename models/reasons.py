"""Officer-facing reasons with their numbers: why the ranking puts an entity where it is, in Chinese and English,
each with a stable machine-readable code (docs/reason_codes.md).

Every reason is a factual statement with the entity's own number and, where there is one, its peers' typical
value, so that its words cannot disagree with its number: no "clearly exceeds" at a ratio of 0.8, no shift
quoted in one unit beside a chart in another, no clipped percentages. Reasons come, in order of their share of
the entity's risk (``RiskModel.contributions``), from the hidden-water indicators (``models.detectors.HiddenWater``)
and from the features LightGBM leans on (worded from ``features.dictionary``). Every entity gets at least one
reason in the same form, so a lead drawn at random for exploration reads like any other. A documented breach
(the case track's) is named after the others, for information: it never lifts the ranking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.detectors import HIDDEN_WATER_COLUMNS, HiddenWater

GENERIC_ZH = "{meaning_zh}为{value}{unit}"
GENERIC_EN = "{meaning}: {value}{unit}"
RELATIVE_CLIP = 10.0  # features.profile_series clips relative shifts to [-1, 10]
# units of the features a reason may quote: volumes, ratios, shares and durations an officer can check;
# scores, z-values, capital, age and linkage confidences are model inputs, not reasons to visit
FEATURE_REASON_UNITS = ("m³", "m³/year", "m³/person", "ratio", "share", "relative", "months")
UNITS_ZH = {"m³": "立方米", "m³/year": "立方米/年", "m³/person": "立方米/人", "persons": "人", "months": "个月",
            "days": "天", "years": "年", "10k yuan": "万元", "count": "个"}
UNITS_EN = {"m³": " m³", "m³/year": " m³/year", "m³/person": " m³/person", "persons": " persons", "months": " months",
            "days": " days", "years": " years", "10k yuan": " x 10,000 yuan", "count": ""}


@dataclass(frozen=True)
class Reason:
    """One reason: ``code`` (docs/reason_codes.md), the number the sentences quote, its unit, the sentences."""

    code: str
    value: float
    unit: str
    text_zh: str
    text_en: str

    def as_dict(self) -> dict:
        value = None if not np.isfinite(self.value) else round(float(self.value), 4)
        return {"code": self.code, "value": value, "unit": self.unit, "text_zh": self.text_zh, "text_en": self.text_en}


def _num(row: pd.Series, name: str) -> float:
    value = row.get(name, np.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _months(row: pd.Series, name: str) -> str:
    m = _num(row, name)
    return f"{m:.0f}" if np.isfinite(m) else "?"


def _pct(v: float) -> str:
    """A share as a percentage; a non-zero share never reads as 0 % (nor a share short of 1 as 100 %)."""
    if v != 0 and abs(v) < 0.005:
        return "<1%"
    if v < 1 and f"{v:.0%}" == "100%":
        return ">99%"
    return f"{v:.0%}"


def _times(v: float) -> str:
    """A ratio as a multiple; small ratios keep two decimals so that a non-zero one never reads as 0.0."""
    if v != 0 and abs(v) < 0.005:
        return "<0.01"
    return f"{v:.2f}" if abs(v) < 0.095 else f"{v:.1f}"


# -- the hidden-water indicators: one sentence each, true whatever the number ---------------------------------


def _balance_excess(row, peer):
    ratio = _num(row, "balance_dry_ratio_12m")
    if not np.isfinite(ratio):  # metered discharge with no known water in at all
        volume = _num(row, "discharge_m3_12m")
        return Reason("discharge_without_inflow", volume, "m3",
                      f"近12个月实测排水{volume:,.0f}立方米，但旱季同期没有任何供水或计量取水记录",
                      f"{volume:,.0f} m³ metered discharge in the last 12 months, with no supply or metered "
                      "abstraction on record in the dry-season months")
    typical = float(np.exp(peer)) if np.isfinite(peer) else float("nan")
    peers_zh = f"，同行业一般为{_times(typical)}倍" if np.isfinite(typical) else ""
    peers_en = f"; industry peers: {_times(typical)}x" if np.isfinite(typical) else ""
    return Reason("balance_excess", ratio, "ratio",
                  f"近12个月旱季实测排水量是同期供水与计量取水量之和的{_times(ratio)}倍{peers_zh}",
                  f"Dry-season metered discharge in the last 12 months was {_times(ratio)}x the supply plus metered "
                  f"abstraction of those months{peers_en}")


def _balance_step(row, peer):
    step = _num(row, "balance_dry_step")
    if not np.isfinite(step):
        return None
    ratio, months = float(np.exp(step)), _months(row, "months_since_balance_dry_step")
    verb_zh, verb_en = ("升至", "rose to") if step >= 0 else ("降至", "fell to")
    return Reason("balance_step", ratio, "ratio",
                  f"约{months}个月前起，旱季实测排水量与已知进水量之比{verb_zh}此前的{_times(ratio)}倍",
                  f"About {months} months ago the dry-season ratio of metered discharge to known water in "
                  f"{verb_en} {_times(ratio)}x its earlier level")


def _shortfall(column, code, zh, en):
    def reason(row, peer):
        used = _num(row, column)
        if not np.isfinite(used):
            return None
        typical = float(np.exp(-peer)) if np.isfinite(peer) else float("nan")
        peers_zh = f"，同类单位一般为{_pct(typical)}" if np.isfinite(typical) else ""
        peers_en = f"; peers: {_pct(typical)}" if np.isfinite(typical) else ""
        return Reason(code, used, "share", zh.format(used=_pct(used)) + peers_zh, en.format(used=_pct(used)) + peers_en)

    return reason


def _meter_drop(row, peer):
    step = _num(row, "meter_step")
    if not np.isfinite(step):
        return None
    ratio, months = float(np.exp(step)), _months(row, "months_since_meter_step")
    unexplained = _num(row, "meter_unexplained_drop_share")
    if step < 0 and unexplained > 0:
        tail_zh, tail_en = "，供水量未相应增加", " without the supply rising to make up for it"
    else:
        tail_zh, tail_en = "", ""
    verb_zh, verb_en = ("降至", "fell to") if step < 0 else ("变为", "changed to")
    return Reason("meter_drop", ratio, "ratio",
                  f"约{months}个月前起计量取水量{verb_zh}此前的{_pct(ratio)}{tail_zh}",
                  f"About {months} months ago metered abstraction {verb_en} {_pct(ratio)} of its earlier level{tail_en}")


TRADE_FALL_SHOWN = 0.95  # the industry's own fall at the same month is named once it took 5 % or more


def _supply_drop(row, peer):
    step = _num(row, "inflow_step")
    if not np.isfinite(step):
        return None
    ratio, months = float(np.exp(step)), _months(row, "months_since_inflow_step")
    verb_zh, verb_en = ("降至", "fell to") if step < 0 else ("变为", "changed to")
    # peer: the typical change (log) of its industry at the same month (HiddenWater.trade_fall), < 0 if it fell
    trade = float(np.exp(peer)) if np.isfinite(peer) and np.exp(peer) < TRADE_FALL_SHOWN else float("nan")
    trade_zh = f"，同期同行业一般降至此前的{_pct(trade)}" if np.isfinite(trade) else ""
    trade_en = f", while its industry at the same time typically fell to {_pct(trade)}" if np.isfinite(trade) else ""
    return Reason("supply_drop", ratio, "ratio",
                  f"约{months}个月前起供水与计量取水量{verb_zh}此前的{_pct(ratio)}，且没有实测排水可供核对{trade_zh}",
                  f"About {months} months ago supply plus metered abstraction {verb_en} {_pct(ratio)} of its earlier "
                  f"level; there is no metered discharge to check it against{trade_en}")


def _dewatering(row, peer):
    works = _num(row, "dewatering_projects")
    works = 1.0 if not np.isfinite(works) else works
    return Reason("dewatering_unpermitted", works, "count",
                  f"有{works:.0f}个需基坑疏干排水的已开工项目，但未持有有效的疏干排水取水许可",
                  f"{works:.0f} construction project(s) with foundation-pit dewatering under way and no valid "
                  "dewatering permit")


def _former_permit(row, peer):
    metered = _num(row, "abstraction_m3_12m")
    metered = 0.0 if not np.isfinite(metered) else metered
    return Reason("former_permit", metered, "m3",
                  f"取水许可已到期或被吊销且无新证，近12个月计量取水量为{metered:,.0f}立方米",
                  f"The abstraction permit expired or was revoked with no new one; {metered:,.0f} m³ metered in the "
                  "last 12 months")


def _meter_flat(row, peer):
    run = _num(row, "flat_run_months")
    months = _num(row, "flat_reading_months_12m")
    if np.isfinite(run) and run >= 3:  # the repetition is still going on
        return Reason("meter_flat", run, "months", f"取水计量月读数已连续{run:.0f}个月完全相同",
                      f"The meter has reported exactly the same monthly volume for {run:.0f} months in a row")
    if not (np.isfinite(months) and months > 0):  # the meter varies: nothing to say
        return None
    return Reason("meter_flat", months, "months", f"近12个月有{months:.0f}个月取水计量月读数与前两个月完全相同",
                  f"In {months:.0f} of the last 12 months the meter repeated the same monthly volume as the two "
                  "months before")


INDICATOR_REASONS = {
    "balance_excess": _balance_excess,
    "balance_step": _balance_step,
    "plan_shortfall": _shortfall("plan_used_12m", "plan_shortfall", "近12个月已知用水量为同期计划用水量的{used}",
                                 "Known water use in the last 12 months was {used} of the water-use plan for those months"),
    "quota_shortfall": _shortfall("quota_used_12m", "quota_shortfall", "近12个月计量取水量为同期许可水量的{used}",
                                  "Metered abstraction in the last 12 months was {used} of what its permits "
                                  "allowed over those months"),
    "meter_drop": _meter_drop,
    "supply_drop": _supply_drop,
    "meter_flat": _meter_flat,
    "dewatering_unpermitted": _dewatering,
    "former_permit": _former_permit,
}


def _known_use(row) -> Reason:
    """The fallback every entity has: its known water in, and its staff where registered."""
    use = _num(row, "inflow_m3_12m")
    use = 0.0 if not np.isfinite(use) else use
    staff = _num(row, "employees")
    if np.isfinite(staff) and staff > 0:
        return Reason("known_use", use, "m3", f"近12个月已知用水量（供水+计量取水）为{use:,.0f}立方米，从业人数{staff:,.0f}人",
                      f"Known water use (supply + metered abstraction) in the last 12 months: {use:,.0f} m³, "
                      f"{staff:,.0f} employees")
    return Reason("known_use", use, "m3", f"近12个月已知用水量（供水+计量取水）为{use:,.0f}立方米",
                  f"Known water use (supply + metered abstraction) in the last 12 months: {use:,.0f} m³")


def _documented(row) -> Reason | None:
    """The documented breach the case track holds, named with its number (information, not a rank)."""
    checks = [
        ("abstraction_after_expiry_m3_12m", lambda v: v > 0, "m3", "许可证到期后仍计量取水{v:,.0f}立方米",
         "{v:,.0f} m³ metered after the permit expired"),
        ("abstraction_withdrawn_permit_m3_12m", lambda v: v > 0, "m3", "许可证吊销或注销后仍计量取水{v:,.0f}立方米",
         "{v:,.0f} m³ metered on a revoked or cancelled permit"),
        ("tax_declared_without_permit_m3_4q", lambda v: v > 0, "m3", "申报取水{v:,.0f}立方米但无对应取水许可",
         "{v:,.0f} m³ declared for tax with no permit for that source"),
        ("permit_quota_used_max_12m", lambda v: v > 1.0, "share", "近12个月取水量达许可水量的{v:.0%}",
         "{v:.0%} of the permitted quota used in the last 12 months"),
        ("tax_undeclared_share_4q", lambda v: v > 0.1, "share", "纳税申报水量比计量少{v:.0%}",
         "Declared {v:.0%} short of the meter"),
    ]
    for column, breached, unit, zh, en in checks:
        v = _num(row, column)
        if np.isfinite(v) and breached(v):
            return Reason("documented_breach", v, unit, "另有记录在案的违规，由案件办理：" + zh.format(v=v),
                          "Documented breach, handled as a case: " + en.format(v=v))
    return None


def _dictionary() -> dict:
    try:  # the features layer may not be importable in a stripped deployment: fall back to generic wording
        from features.dictionary import DATA_DICTIONARY
    except ImportError:  # pragma: no cover
        return {}
    return DATA_DICTIONARY


def _feature_reason(name: str, value: float, entry: dict) -> Reason:
    """The dictionary's sentence for a feature; the English one shows the value formatted as the Chinese does."""
    zh, spec = None, ",.3g"
    if entry.get("reason_zh") and np.isfinite(value):
        try:
            zh = entry["reason_zh"].format(value=value)
            found = re.search(r"\{value:([^}]*)\}", entry["reason_zh"])
            spec = found.group(1) if found else ""
        except (ValueError, TypeError, KeyError, IndexError):
            zh = None
    shown = format(value, spec) if np.isfinite(value) else "n/a"
    if zh is not None and entry.get("unit") == "relative" and "变化{value:" in entry["reason_zh"]:
        # a relative change is after / before - 1 clipped to [-1, RELATIVE_CLIP]: at the clip the words say
        # "at least", and a change that rounds to nothing is not printed as +0 %
        head = entry["reason_zh"].split("变化{value:")[0]
        if value >= RELATIVE_CLIP - 1e-9:
            zh, shown = head + f"增至{RELATIVE_CLIP + 1:.0f}倍以上", f"at least {RELATIVE_CLIP + 1:.0f}x"
        elif value <= -1 + 1e-9:
            zh, shown = head + "降至零", "down to zero"
        elif value != 0 and abs(value) < 0.005:
            zh, shown = head + "变化不足1%", "under 1 %"
    elif zh is not None and spec.endswith("%") and value != 0 and float(format(value, spec.lstrip("+,")).rstrip("%")) == 0:
        # a non-zero share that rounds to 0 % is printed as under 1 % (never "为0.0%")
        zh, shown = re.sub(r"\{value:[^}]*\}", "<1%", entry["reason_zh"]), "<1%"
    if zh is None:
        zh = GENERIC_ZH.format(meaning_zh=entry.get("meaning_zh") or name, value=shown if np.isfinite(value) else "缺失",
                               unit=UNITS_ZH.get(entry.get("unit", ""), ""))
    unit = "" if spec.endswith("%") else UNITS_EN.get(entry.get("unit", ""), "")
    en = GENERIC_EN.format(meaning=(entry.get("meaning") or name).split(";")[0], value=shown, unit=unit)
    return Reason(name, value, entry.get("unit") or "", zh, en)


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
    its z, its peer median and its contribution column; per worded feature its contribution and percentile."""
    codes: list[str]
    features: list[str]
    entries: dict
    z: dict[str, np.ndarray]
    peer: dict[str, np.ndarray]
    contrib: dict[str, np.ndarray]
    indicator_columns: dict[str, str]
    percentiles: dict[str, np.ndarray] | None
    low_ok: dict[str, bool]


def _evidence(model, frame: pd.DataFrame) -> _Evidence:
    """Contributions, indicator z-scores and peer medians, and the features worth a sentence: those the
    indicators do not already speak for, with a unit the sentences can word."""
    contrib = model.contributions(frame)
    hidden = [d for d in getattr(model, "domain_", []) if isinstance(d, HiddenWater)]
    z = hidden[0].indicator_z(frame) if hidden else pd.DataFrame(index=frame.index)
    peer = hidden[0].peer_medians(frame) if hidden else pd.DataFrame(index=frame.index)
    codes = [c for c in z.columns if c in INDICATOR_REASONS]
    ind_cols = {c: f"indicator:{hidden[0].name}:{c}" for c in codes} if hidden else {}
    entries = _dictionary()
    features = [c for c in getattr(model, "feature_names_in_", []) if c in contrib.columns and c in frame.columns
                and not (hidden and c in HIDDEN_WATER_COLUMNS)
                and (c not in entries or entries[c].get("unit") in FEATURE_REASON_UNITS)]
    pct = model.feature_percentiles(frame) if features and hasattr(model, "feature_percentiles") else None
    return _Evidence(
        codes=codes, features=features, entries=entries,
        z={c: z[c].to_numpy(dtype="float64") for c in codes},
        peer={c: peer[c].to_numpy(dtype="float64") for c in codes},
        contrib={c: contrib[c].to_numpy(dtype="float64") for c in [*ind_cols.values(), *features] if c in contrib.columns},
        indicator_columns=ind_cols,
        percentiles={name: pct[name].to_numpy(dtype="float64") for name in features} if pct is not None else None,
        low_ok={name: "仅" in ((entries.get(name) or {}).get("reason_zh") or "") for name in features},
    )


def _ranked_candidates(ev: _Evidence, n: int, min_deviation: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the candidate reasons that add to its risk in order of their share (ties: indicators first, in
    order, then features), as column positions into [*ev.codes, *ev.features], and how many there are. An
    indicator is a candidate when its z is above the peers' median and it adds to the risk; a feature when
    LightGBM leans on it and its value stands out in the city. Worked out for all rows at once."""
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
        stands_out = (q - 0.5 >= min_deviation) | (ev.low_ok[name] & (0.5 - q >= min_deviation))
        shares.append(share)
        eligible.append((share > 0) & np.isfinite(q) & stands_out)
    if not shares:
        return np.zeros((n, 0), dtype=np.int16), np.zeros(n, dtype=np.int64)
    ok = np.column_stack(eligible)
    keyed = np.where(ok, -np.column_stack(shares).astype("float64"), np.inf)
    return np.argsort(keyed, axis=1, kind="stable").astype(np.int16), ok.sum(axis=1)


def _risk_reasons(ev: _Evidence, row, i: int, top: int, ranked: tuple[np.ndarray, np.ndarray]) -> list[Reason]:
    """The ``top`` reasons that add most to row ``i``'s risk (``_ranked_candidates``); an indicator whose
    sentence does not apply to the row is passed over."""
    order, count = ranked
    chosen: list[Reason] = []
    for j in order[i, : count[i]]:
        if j < len(ev.codes):
            code = ev.codes[j]
            reason = INDICATOR_REASONS[code](row, float(ev.peer[code][i]))
        else:
            name = ev.features[j - len(ev.codes)]
            reason = _feature_reason(name, _num(row, name), ev.entries.get(name) or {})
        if reason is not None:
            chosen.append(reason)
            if len(chosen) == top:
                break
    return chosen


def _ordinary_reasons(ev: _Evidence, row, i: int, top: int) -> list[Reason]:
    """An ordinary entity: its records as they stand, strongest indicator first, else its known water use."""
    chosen: list[Reason] = []
    for code in sorted((c for c in ev.codes if np.isfinite(ev.z[c][i])), key=lambda c: -float(ev.z[c][i])):
        reason = INDICATOR_REASONS[code](row, float(ev.peer[code][i]))
        if reason is not None and len(chosen) < top:
            chosen.append(reason)
    return chosen or [_known_use(row)]


def explain_reasons(model, X: pd.DataFrame, top: int = 3, min_deviation: float = 0.25) -> list[list[Reason]]:
    """For every row of X (the snapshot's model columns, and any other snapshot columns the sentences quote),
    up to ``top`` reasons in order of their share of the risk, then the documented breach if any.

    A hidden-water indicator is a reason when it adds to the risk (its z above the peers' median); a feature
    is one when LightGBM leans on it and its value is high in the city (``min_deviation`` in percentile terms
    above the median; below it only for a sentence about how little, "仅"). A row with neither gets its
    indicators in order of their z, else its known water use."""
    if len(X) == 0:
        return []
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=list(model.feature_names_in_))
    ev = _evidence(model, frame)
    rows = _Rows(frame.reset_index(drop=True))
    ranked = _ranked_candidates(ev, len(frame), min_deviation)
    out: list[list[Reason]] = []
    for i in range(len(X)):
        row = rows.row(i)
        chosen = _risk_reasons(ev, row, i, top, ranked) or _ordinary_reasons(ev, row, i, top)
        documented = _documented(row)
        if documented is not None:
            chosen.append(documented)
        out.append(chosen)
    return out


def explain(model, X: pd.DataFrame, top: int = 3, min_deviation: float = 0.25) -> list[list[str]]:
    """The Chinese sentences of ``explain_reasons``."""
    return [[r.text_zh for r in reasons] for reasons in explain_reasons(model, X, top, min_deviation)]
