"""Which reasons a lead shows (issue #9 item 7): every reason's words agree with its number, every indicator that
adds materially to a lead's risk can be worded, and a caveat (rain in the sewer) never stands alone.

Hand-built rows with known answers: the indicator sentences on single rows, and the choice among them through a
stand-in for the risk model whose contributions are set by hand (the choice reads ``contributions``,
``feature_names_in_``, ``feature_percentiles`` and the fitted ``HiddenWater`` in ``domain_``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.detectors import HiddenWater
from models.reasons import CAVEAT_CODES, INDICATOR_REASONS, _feature_reason, explain_reasons
from features.dictionary import DATA_DICTIONARY

FALLS = ("降至", "fell")


# -- single sentences ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [14.5394, 21.7549, 1.2596, 1.0, 1.0 - 1e-4, 0.99, 0.96])
def test_a_supply_rise_or_a_ratio_near_one_is_never_a_supply_drop(ratio):
    """The start of billing after registration is a rise of 1454 %: no "drop", and no "fell to >99%"."""
    row = pd.Series({"inflow_step": np.log(ratio), "months_since_inflow_step": 25.0, "inflow_step_score": 30.0})
    assert INDICATOR_REASONS["supply_drop"](row, 0.0) is None


@pytest.mark.parametrize("ratio, shown", [(0.5, "50%"), (0.3, "30%"), (0.9, "90%"), (0.004, "<1%")])
def test_a_real_supply_fall_is_worded_with_its_percentage(ratio, shown):
    row = pd.Series({"inflow_step": np.log(ratio), "months_since_inflow_step": 14.0})
    reason = INDICATOR_REASONS["supply_drop"](row, 0.0)
    assert reason is not None and reason.value == pytest.approx(ratio) and reason.value < 1
    assert f"降至此前的{shown}" in reason.text_zh and f"fell to {shown}" in reason.text_en


@pytest.mark.parametrize("ratio", [0.999, 0.97, 1.0, 1.3])
def test_a_meter_near_its_level_or_up_is_not_worded_as_a_fall(ratio):
    row = pd.Series({"meter_step": np.log(ratio), "months_since_meter_step": 9.0, "meter_unexplained_drop_share": 0.01})
    reason = INDICATOR_REASONS["meter_drop"](row, 0.0)
    assert reason is None or not any(word in reason.text_zh + reason.text_en for word in FALLS)
    assert reason is None or ">99%" not in reason.text_zh


@pytest.mark.parametrize("ratio", [1.0, 1.02, 0.98])
def test_a_balance_ratio_near_one_is_neither_a_rise_nor_a_fall(ratio):
    row = pd.Series({"balance_dry_step": np.log(ratio), "months_since_balance_dry_step": 12.0})
    reason = INDICATOR_REASONS["balance_step"](row, 0.0)
    assert reason is None or not any(w in reason.text_zh + reason.text_en for w in ("升至", "降至", "rose", "fell"))


def test_a_balance_step_up_still_reads_as_a_rise():
    row = pd.Series({"balance_dry_step": np.log(2.4367), "months_since_balance_dry_step": 29.0})
    reason = INDICATOR_REASONS["balance_step"](row, 0.0)
    assert "升至此前的2.4倍" in reason.text_zh and "rose to 2.4x" in reason.text_en


def test_a_feature_sentence_that_says_fell_is_not_shown_for_a_rise():
    entry = DATA_DICTIONARY["inflow_after_share"]
    for value in (14.5, 1.0, 0.999):
        reason = _feature_reason("inflow_after_share", value, entry)
        assert reason is None or "降至" not in reason.text_zh, (value, reason)
    assert "降至此前的40%" in _feature_reason("inflow_after_share", 0.4, entry).text_zh


def test_use_per_employee_has_a_sentence_with_its_numbers():
    row = pd.Series({"inflow_m3_12m": 49.0, "employees": 11.0, "use_per_employee_12m": 49.0 / 11.0})
    reason = INDICATOR_REASONS["use_per_employee"](row, -np.log(120.0))  # peers: median 120 m³ per person
    assert reason is not None and reason.code == "use_per_employee"
    assert reason.value == pytest.approx(49.0 / 11.0) and reason.unit == "m3/person"
    for part in ("49立方米", "从业人数11人", "人均4.5立方米", "中位数为120立方米"):
        assert part in reason.text_zh, (part, reason.text_zh)
    assert "4.5 m³" in reason.text_en and "120 m³" in reason.text_en and "折合全年" not in reason.text_zh


def test_use_per_employee_of_a_young_firm_quotes_the_years_rate_the_indicator_judged():
    """Eight months' 800 m³ with 10 staff is 120 m³ a person a year, the number the indicator compared."""
    row = pd.Series({"inflow_m3_12m": 800.0, "employees": 10.0, "use_per_employee_12m": 120.0})
    reason = INDICATOR_REASONS["use_per_employee"](row, -np.log(120.0))
    assert reason.value == pytest.approx(120.0)
    assert "800立方米" in reason.text_zh and "折合全年人均120立方米" in reason.text_zh, reason.text_zh
    assert "at a year's rate" in reason.text_en


# -- the choice among them ------------------------------------------------------------------------------------

UPE = "indicator:hidden_water:use_per_employee"
SUPPLY = "indicator:hidden_water:supply_drop"
WET = "wet_dry_ratio_excess_12m"


def _city(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Firms with supply only (no metered discharge, so a supply step is read), staff on record, one industry.
    Row 0 uses 49 m³ a year with 11 staff, and its supply rose 14.5-fold when billing began; row 1 is ordinary;
    row 2's supply fell to 30 %."""
    rng = np.random.default_rng(seed)
    staff = rng.integers(5, 200, n).astype(float)
    use = staff * rng.lognormal(np.log(120.0), 0.3, n)
    step = rng.normal(0.0, 0.03, n)
    frame = pd.DataFrame({
        "industry_code": "C1713", "inflow_m3_12m": use, "employees": staff, "use_per_employee_12m": use / staff,
        "inflow_step": step,
        "inflow_step_score": rng.uniform(0.5, 3.0, n), "months_since_inflow_step": rng.integers(3, 30, n).astype(float),
        "inflow_after_share": np.exp(step), "water_recent_share_3m": 1.0, WET: rng.uniform(0.0, 0.2, n),
    })
    frame.loc[0, ["inflow_m3_12m", "employees", "use_per_employee_12m", "inflow_step", "inflow_step_score",
                  "inflow_after_share", WET]] = [49.0, 11.0, 49.0 / 11.0, np.log(14.5394), 40.0, 14.5394, 0.4358]
    frame.loc[2, ["inflow_step", "inflow_step_score", "inflow_after_share"]] = [np.log(0.3), 40.0, 0.3]
    return frame


class _StandIn:
    """What ``explain_reasons`` reads of a RiskModel, with contributions set by hand."""

    def __init__(self, frame: pd.DataFrame, contrib: dict[int, dict[str, float]]):
        self.domain_ = [HiddenWater().fit(frame)]
        self.feature_names_in_ = [WET]
        self.contrib = contrib

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        columns = [WET] + [f"indicator:hidden_water:{c}" for c in self.domain_[0].codes_]
        out = pd.DataFrame(0.0, index=X.index, columns=columns)
        for i, shares in self.contrib.items():
            for column, share in shares.items():
                out.iloc[i, out.columns.get_loc(column)] = share
        return out

    def feature_percentiles(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[[WET]].rank(pct=True)


def test_use_per_employee_driving_a_lead_is_its_first_reason_and_a_rain_caveat_follows_it():
    frame = _city()
    model = _StandIn(frame, {0: {UPE: 0.93, WET: 0.001}})
    reasons = explain_reasons(model, frame.iloc[[0]])[0]
    assert reasons[0].code == "use_per_employee" and reasons[0].value == pytest.approx(49.0 / 11.0)
    assert "从业人数11人" in reasons[0].text_zh
    assert [r.code for r in reasons if r.code in CAVEAT_CODES] == [WET] and reasons[-1].code == WET
    assert reasons[-1].as_dict()["role"] == "caveat" and reasons[0].as_dict()["role"] == "evidence"


def test_a_caveat_never_stands_alone():
    frame = _city()
    # only the caveat adds to row 0's risk: its reasons lead with something that supports the rank
    model = _StandIn(frame, {0: {WET: 0.05}})
    reasons = explain_reasons(model, frame.iloc[[0]])[0]
    assert reasons and reasons[0].code not in CAVEAT_CODES
    assert any(r.code not in CAVEAT_CODES for r in reasons)
    json.dumps([r.as_dict() for r in reasons], ensure_ascii=False)


def test_no_row_of_a_city_shows_a_supply_drop_for_a_rise_or_only_a_caveat():
    frame = _city()
    contrib = {i: {WET: 0.01} for i in range(0, len(frame), 3)}
    contrib[2] = {SUPPLY: 0.8}
    model = _StandIn(frame, contrib)
    found = explain_reasons(model, frame)
    for rs in found:
        assert rs and any(r.code not in CAVEAT_CODES for r in rs)
        for r in rs:
            if r.code == "supply_drop":
                assert r.value < 1 and "降至" in r.text_zh
            if "降至此前的" in r.text_zh:
                assert ">99%" not in r.text_zh and "100%" not in r.text_zh
    assert found[2][0].code == "supply_drop" and "降至此前的30%" in found[2][0].text_zh
    assert not any(r.code == "supply_drop" for r in found[0])  # row 0's supply rose 14.5-fold
    assert found[0][0].code == "use_per_employee"  # its strongest indicator: far less water per person than peers
