"""Reasons say what their numbers say: no non-zero share printed as 0 %, no clipped "+1000%", no ratio of 0.0x."""

import re

import numpy as np
import pandas as pd
import pytest

from features.dictionary import DATA_DICTIONARY
from models.reasons import INDICATOR_REASONS, RELATIVE_CLIP, _feature_reason, _pct, _times


@pytest.mark.parametrize("value, shown", [(0.0003, "<1%"), (0.0, "0%"), (0.42, "42%"), (0.999, ">99%"), (1.0, "100%")])
def test_share_never_rounds_a_nonzero_value_to_zero(value, shown):
    assert _pct(value) == shown


@pytest.mark.parametrize("value, shown", [(0.0471, "0.05"), (0.002, "<0.01"), (3.1486, "3.1"), (0.0, "0.00")])
def test_ratio_keeps_small_ratios_readable(value, shown):
    assert _times(value) == shown


def test_clipped_relative_change_reads_as_at_least():
    entry = DATA_DICTIONARY["supply_shift"]
    clipped = _feature_reason("supply_shift", RELATIVE_CLIP, entry)
    assert "1000%" not in clipped.text_zh and "11倍以上" in clipped.text_zh
    assert "at least 11x" in clipped.text_en
    ordinary = _feature_reason("supply_shift", 0.45, entry)
    assert "+45%" in ordinary.text_zh


def test_small_nonzero_percentage_is_not_printed_as_zero():
    entry = {"unit": "share", "reason_zh": "综合风险评分为{value:.1%}", "meaning": "Risk score"}
    reason = _feature_reason("risk", 0.0004, entry)
    assert "0.0%" not in reason.text_zh and "<1%" in reason.text_zh and reason.value == pytest.approx(0.0004)
    assert "0.0%" in _feature_reason("risk", 0.0, entry).text_zh  # an exact zero stays zero


def test_every_dictionary_sentence_agrees_with_a_nonzero_value():
    for name, entry in DATA_DICTIONARY.items():
        if not entry.get("reason_zh") or "{value" not in entry["reason_zh"]:
            continue
        for value in (0.0004, 0.3, 12.0):
            found = _feature_reason(name, value, entry)
            if found is None:  # only a sentence saying the volume fell to the value, for a value that is no fall
                assert re.search(r"降至[^{}]*\{value", entry["reason_zh"]) and value > 0.95, (name, value)
                continue
            text = found.text_zh
            assert not re.search(r"(?<![\d.])[+-]?0(\.0+)?%", text), (name, value, text)


def test_indicator_reasons_quote_small_numbers_readably():
    row = pd.Series({"balance_dry_ratio_12m": 0.0471, "meter_step": np.log(0.0003), "months_since_meter_step": 17,
                     "meter_unexplained_drop_share": 0.9, "plan_used_12m": 0.0004})
    balance = INDICATOR_REASONS["balance_excess"](row, np.log(0.1))
    assert "0.05倍" in balance.text_zh and "0.0倍" not in balance.text_zh
    meter = INDICATOR_REASONS["meter_drop"](row, 0.0)
    assert "<1%" in meter.text_zh and "的0%" not in meter.text_zh
    plan = INDICATOR_REASONS["plan_shortfall"](row, 0.1)
    assert "<1%" in plan.text_zh


def test_no_indicator_reason_contains_the_separator_that_joins_reasons():
    """leads.csv joins an entity's reasons with "；"; a reason holding one would read as two to the API and console."""
    from serving.scoring import REASON_SEPARATOR
    row = pd.Series({"inflow_step": np.log(0.52), "months_since_inflow_step": 7, "balance_dry_ratio_12m": 2.5,
                     "meter_step": np.log(0.3), "months_since_meter_step": 5, "meter_unexplained_drop_share": 0.9,
                     "plan_used_12m": 0.4, "quota_used_12m": 0.4})
    shown = 0
    for name, reason in INDICATOR_REASONS.items():
        found = reason(row, np.log(0.91))  # a peer value that names the industry's own fall where a reason can
        if found is None:
            continue
        shown += 1
        assert REASON_SEPARATOR not in found.text_zh, (name, found.text_zh)
    assert shown >= 4
