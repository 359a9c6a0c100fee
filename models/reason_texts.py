"""The sentences of the officer-facing reasons (``models.reasons`` chooses among them): one per hidden-water
indicator, the data dictionary's for a feature, the known use and the documented breach, each with its code,
the number it quotes and that number's unit (docs/reason_codes.md).

Each sentence is a statement of the entity's own records beside its peers' typical value, and is only made where
its words hold for its number: a step is said to have "fallen" only when it fell to FALL_SHOWN of its earlier
level or less (so "fell to >99%" or "fell to 1454%" is never printed), and to have "risen" only from RISE_SHOWN;
a sentence that would have to say otherwise is not made (None), and the choice passes over it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

GENERIC_ZH = "{meaning_zh}为{value}{unit}"
GENERIC_EN = "{meaning}: {value}{unit}"
RELATIVE_CLIP = 10.0  # features.profile_series clips relative shifts to [-1, 10]
UNITS_ZH = {"m³": "立方米", "m³/year": "立方米/年", "m³/person": "立方米/人", "persons": "人", "months": "个月",
            "days": "天", "years": "年", "10k yuan": "万元", "count": "个"}
UNITS_EN = {"m³": " m³", "m³/year": " m³/year", "m³/person": " m³/person", "persons": " persons", "months": " months",
            "days": " days", "years": " years", "10k yuan": " x 10,000 yuan", "count": ""}

# a step is worded as a fall at 95 % of its earlier level or less (it then reads "降至此前的95%" or lower), as a
# rise at 105 % or more (it then reads "1.1倍" or higher); between the two it is no change worth a sentence
FALL_SHOWN = 0.95
RISE_SHOWN = 1.05
TRADE_FALL_SHOWN = 0.95  # the industry's own fall at the same month is named once it took 5 % or more

# features whose sentence argues against hidden water (rain in a combined sewer, a drop that came back): they
# may qualify the reasons of a lead, never stand as its only reason, and come after the reasons they qualify
CAVEAT_CODES = frozenset({"wet_dry_ratio_excess_12m", "wet_season_discharge_share_12m", "inflow_recovered_share"})

# the role of a reason in the machine-readable codes: it supports the rank, qualifies it, states the records of
# an entity none of whose records is unusual, or names a documented breach for information
EVIDENCE, CAVEAT, CONTEXT, INFORMATION = "evidence", "caveat", "context", "information"

# how the sentences name the peers whose median they quote (models.reasons reads which level a row's peers were)
PEERS_ZH = {"industry": "同行业", "section": "同门类行业", "city": "全市同类单位", None: "同类单位"}
PEERS_EN = {"industry": "industry peers", "section": "peers of its industry section", "city": "peers city-wide",
            None: "peers"}


@dataclass(frozen=True)
class Reason:
    """One reason: ``code`` (docs/reason_codes.md), the number the sentences quote, its unit, the sentences, and
    its ``role`` (EVIDENCE, CAVEAT, CONTEXT or INFORMATION)."""

    code: str
    value: float
    unit: str
    text_zh: str
    text_en: str
    role: str = EVIDENCE

    def as_dict(self) -> dict:
        value = None if not np.isfinite(self.value) else round(float(self.value), 4)
        return {"code": self.code, "value": value, "unit": self.unit, "text_zh": self.text_zh, "text_en": self.text_en,
                "role": self.role}


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


def _volume(v: float) -> str:
    """A volume in m³: whole cubic metres from 10 up, one decimal below (a non-zero one never reads as 0)."""
    if v != 0 and abs(v) < 0.05:
        return "<0.1"
    return f"{v:,.0f}" if abs(v) >= 9.95 else f"{v:.1f}"


def _fell(ratio: float) -> bool:
    return bool(np.isfinite(ratio) and ratio <= FALL_SHOWN)


def _rose(ratio: float) -> bool:
    return bool(np.isfinite(ratio) and ratio >= RISE_SHOWN)


# -- the hidden-water indicators: one sentence each, made only where its words hold for its number -------------


def _balance_excess(row, peer, scope=None):
    ratio = _num(row, "balance_dry_ratio_12m")
    if not np.isfinite(ratio):  # metered discharge with no known water in at all
        volume = _num(row, "discharge_m3_12m")
        return Reason("discharge_without_inflow", volume, "m3",
                      f"近12个月实测排水{volume:,.0f}立方米，但旱季同期没有任何供水或计量取水记录",
                      f"{volume:,.0f} m³ metered discharge in the last 12 months, with no supply or metered "
                      "abstraction on record in the dry-season months")
    typical = float(np.exp(peer)) if np.isfinite(peer) else float("nan")
    peers_zh = f"，{PEERS_ZH[scope]}一般为{_times(typical)}倍" if np.isfinite(typical) else ""
    peers_en = f"; {PEERS_EN[scope]}: {_times(typical)}x" if np.isfinite(typical) else ""
    return Reason("balance_excess", ratio, "ratio",
                  f"近12个月旱季实测排水量是同期供水与计量取水量之和的{_times(ratio)}倍{peers_zh}",
                  f"Dry-season metered discharge in the last 12 months was {_times(ratio)}x the supply plus metered "
                  f"abstraction of those months{peers_en}")


def _balance_step(row, peer, scope=None):
    step = _num(row, "balance_dry_step")
    ratio = float(np.exp(step)) if np.isfinite(step) else float("nan")
    if not (_rose(ratio) or _fell(ratio)):  # no step, or one too small to read as a rise or a fall
        return None
    months = _months(row, "months_since_balance_dry_step")
    verb_zh, verb_en = ("升至", "rose to") if _rose(ratio) else ("降至", "fell to")
    return Reason("balance_step", ratio, "ratio",
                  f"约{months}个月前起，旱季实测排水量与已知进水量之比{verb_zh}此前的{_times(ratio)}倍",
                  f"About {months} months ago the dry-season ratio of metered discharge to known water in "
                  f"{verb_en} {_times(ratio)}x its earlier level")


def _shortfall(column, code, zh, en):
    def reason(row, peer, scope=None):
        used = _num(row, column)
        if not np.isfinite(used):
            return None
        typical = float(np.exp(-peer)) if np.isfinite(peer) else float("nan")
        peers_zh = f"，同类单位一般为{_pct(typical)}" if np.isfinite(typical) else ""
        peers_en = f"; peers: {_pct(typical)}" if np.isfinite(typical) else ""
        return Reason(code, used, "share", zh.format(used=_pct(used)) + peers_zh, en.format(used=_pct(used)) + peers_en)

    return reason


def _meter_drop(row, peer, scope=None):
    step = _num(row, "meter_step")
    ratio = float(np.exp(step)) if np.isfinite(step) else float("nan")
    if not _fell(ratio):  # the indicator is the meter's unexplained fall: a meter that did not fall says nothing
        return None
    months = _months(row, "months_since_meter_step")
    if _num(row, "meter_unexplained_drop_share") > 0:
        tail_zh, tail_en = "，供水量未相应增加", " without the supply rising to make up for it"
    else:
        tail_zh, tail_en = "", ""
    return Reason("meter_drop", ratio, "ratio",
                  f"约{months}个月前起计量取水量降至此前的{_pct(ratio)}{tail_zh}",
                  f"About {months} months ago metered abstraction fell to {_pct(ratio)} of its earlier level{tail_en}")


def _supply_drop(row, peer, scope=None):
    step = _num(row, "inflow_step")
    ratio = float(np.exp(step)) if np.isfinite(step) else float("nan")
    if not _fell(ratio):  # a rise (billing that began after registration) or no real change is no drop
        return None
    months = _months(row, "months_since_inflow_step")
    # peer: the typical change (log) of its industry at the same month (HiddenWater.trade_fall), < 0 if it fell
    trade = float(np.exp(peer)) if np.isfinite(peer) and np.exp(peer) < TRADE_FALL_SHOWN else float("nan")
    trade_zh = f"，同期同行业一般降至此前的{_pct(trade)}" if np.isfinite(trade) else ""
    trade_en = f", while its industry at the same time typically fell to {_pct(trade)}" if np.isfinite(trade) else ""
    return Reason("supply_drop", ratio, "ratio",
                  f"约{months}个月前起供水与计量取水量降至此前的{_pct(ratio)}，且没有实测排水可供核对{trade_zh}",
                  f"About {months} months ago supply plus metered abstraction fell to {_pct(ratio)} of its earlier "
                  f"level; there is no metered discharge to check it against{trade_en}")


def _dewatering(row, peer, scope=None):
    works = _num(row, "dewatering_projects")
    works = 1.0 if not np.isfinite(works) else works
    return Reason("dewatering_unpermitted", works, "count",
                  f"有{works:.0f}个需基坑疏干排水的已开工项目，但未持有有效的疏干排水取水许可",
                  f"{works:.0f} construction project(s) with foundation-pit dewatering under way and no valid "
                  "dewatering permit")


def _former_permit(row, peer, scope=None):
    metered = _num(row, "abstraction_m3_12m")
    metered = 0.0 if not np.isfinite(metered) else metered
    return Reason("former_permit", metered, "m3",
                  f"取水许可已到期或被吊销且无新证，近12个月计量取水量为{metered:,.0f}立方米",
                  f"The abstraction permit expired or was revoked with no new one; {metered:,.0f} m³ metered in the "
                  "last 12 months")


def _meter_flat(row, peer, scope=None):
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


def _use_per_employee(row, peer, scope=None):
    """Known water in per registered employee beside its peers' median (``peer``: their median of -log of it)."""
    use, staff = _num(row, "inflow_m3_12m"), _num(row, "employees")
    if not (np.isfinite(use) and np.isfinite(staff) and use > 0 and staff > 0):
        return None
    each = _num(row, "use_per_employee_12m")  # the year's rate the indicator judged (a young firm's is scaled up)
    each = use / staff if not np.isfinite(each) else each
    young = not np.isclose(each, use / staff, rtol=1e-6)
    typical = float(np.exp(-peer)) if np.isfinite(peer) else float("nan")
    peers_zh = f"，{PEERS_ZH[scope]}中位数为{_volume(typical)}立方米" if np.isfinite(typical) else ""
    peers_en = f"; {PEERS_EN[scope]}' median: {_volume(typical)} m³" if np.isfinite(typical) else ""
    rate_zh, rate_en = ("成立不足一年，按存续月份折合全年人均", "; registered under a year ago, at a year's rate ") if young \
        else ("人均", ", ")
    return Reason("use_per_employee", each, "m3/person",
                  f"近12个月已知用水量（供水+计量取水）为{use:,.0f}立方米，从业人数{staff:,.0f}人，"
                  f"{rate_zh}{_volume(each)}立方米{peers_zh}",
                  f"Known water use (supply + metered abstraction) in the last 12 months: {use:,.0f} m³ for "
                  f"{staff:,.0f} employees{rate_en}{_volume(each)} m³ per employee{peers_en}")


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
    "use_per_employee": _use_per_employee,
}
# indicators whose sentence names its peers by the level their median came from (models.reasons finds it)
PEER_SCOPED = ("balance_excess", "use_per_employee")
# features an indicator's sentence already quotes: not said twice in one lead
SPOKEN_FOR = {"use_per_employee_12m": "use_per_employee"}


def known_use(row) -> Reason:
    """The fallback every entity has: its known water in, and its staff where registered."""
    use = _num(row, "inflow_m3_12m")
    use = 0.0 if not np.isfinite(use) else use
    staff = _num(row, "employees")
    if np.isfinite(staff) and staff > 0:
        return Reason("known_use", use, "m3", f"近12个月已知用水量（供水+计量取水）为{use:,.0f}立方米，从业人数{staff:,.0f}人",
                      f"Known water use (supply + metered abstraction) in the last 12 months: {use:,.0f} m³, "
                      f"{staff:,.0f} employees", CONTEXT)
    return Reason("known_use", use, "m3", f"近12个月已知用水量（供水+计量取水）为{use:,.0f}立方米",
                  f"Known water use (supply + metered abstraction) in the last 12 months: {use:,.0f} m³", CONTEXT)


def documented(row) -> Reason | None:
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
                          "Documented breach, handled as a case: " + en.format(v=v), INFORMATION)
    return None


def _relative_words(entry: dict, value: float) -> tuple[str, str] | None:
    """A relative change is after / before - 1 clipped to [-1, RELATIVE_CLIP]: at the clip the words say "at
    least", and a change that rounds to nothing is not printed as +0 %; None: the dictionary's words stand."""
    head = entry["reason_zh"].split("变化{value:")[0]
    if value >= RELATIVE_CLIP - 1e-9:
        return head + f"增至{RELATIVE_CLIP + 1:.0f}倍以上", f"at least {RELATIVE_CLIP + 1:.0f}x"
    if value <= -1 + 1e-9:
        return head + "降至零", "down to zero"
    if value != 0 and abs(value) < 0.005:
        return head + "变化不足1%", "under 1 %"
    return None


def feature_reason(name: str, value: float, entry: dict) -> Reason | None:
    """The dictionary's sentence for a feature; the English one shows the value formatted as the Chinese does.
    None where the sentence says a volume fell to the value ("降至…{value}") and the value is no such fall."""
    template = entry.get("reason_zh") or ""
    if re.search(r"降至[^{}]*\{value", template) and not _fell(value):
        return None
    zh, spec = None, ",.3g"
    if template and np.isfinite(value):
        try:
            zh = template.format(value=value)
            found = re.search(r"\{value:([^}]*)\}", template)
            spec = found.group(1) if found else ""
        except (ValueError, TypeError, KeyError, IndexError):
            zh = None
    shown = format(value, spec) if np.isfinite(value) else "n/a"
    if zh is not None and entry.get("unit") == "relative" and "变化{value:" in template:
        zh, shown = _relative_words(entry, value) or (zh, shown)
    elif zh is not None and spec.endswith("%") and value != 0 and float(format(value, spec.lstrip("+,")).rstrip("%")) == 0:
        # a non-zero share that rounds to 0 % is printed as under 1 % (never "为0.0%")
        zh, shown = re.sub(r"\{value:[^}]*\}", "<1%", template), "<1%"
    if zh is None:
        zh = GENERIC_ZH.format(meaning_zh=entry.get("meaning_zh") or name, value=shown if np.isfinite(value) else "缺失",
                               unit=UNITS_ZH.get(entry.get("unit", ""), ""))
    unit = "" if spec.endswith("%") else UNITS_EN.get(entry.get("unit", ""), "")
    en = GENERIC_EN.format(meaning=(entry.get("meaning") or name).split(";")[0], value=shown, unit=unit)
    return Reason(name, value, entry.get("unit") or "", zh, en, CAVEAT if name in CAVEAT_CODES else EVIDENCE)
