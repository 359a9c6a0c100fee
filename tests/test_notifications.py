"""SMS outbox: only user alerts, never the same message twice across runs, segments within the limit."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from models.notifications import OUTBOX_COLUMNS, build_outbox, message_id, split_segments
from models.rules import ALERT_COLUMNS, alert_ids
from models.settings import RuleSettings

RULES = RuleSettings()
MARKER = re.compile(r"\(\d+/\d+\)$")


def alerts_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for c in ALERT_COLUMNS:
        if c not in frame.columns:
            frame[c] = ""
    frame["alert_id"] = alert_ids(frame)
    return frame[ALERT_COLUMNS]


def quota_alert(uscc, level, pid, message):
    return {"kind": "quota", "level": level, "uscc": uscc, "name": "旧名称", "permit_id": pid, "period": "2026",
            "audience": "user", "message": message}


ENTITIES = pd.DataFrame({"uscc": ["U1", "U2"], "name": ["德州市甲公司", "德州市乙公司"], "district": ["德城区", "陵城区"]})
LONG = "【德州市水利局】德州市甲公司：您单位取水许可证D371402G2015-0028，2026年1-10月累计取水45.2万m³，已达年度许可水量49.1万m³的92%（橙色预警），请合理安排用水，超许可取水将依法查处。"


def test_only_user_alerts_are_queued_with_the_registered_name():
    alerts = alerts_frame([
        quota_alert("U1", "orange", "P1", LONG),
        {"kind": "tax_mismatch", "level": "red", "uscc": "U2", "period": "2026-Q1", "audience": "bureau", "message": "核查"},
    ])
    outbox = build_outbox(alerts, ENTITIES, set(), RULES)
    assert list(outbox.columns) == OUTBOX_COLUMNS
    assert len(outbox) == 1
    row = outbox.iloc[0]
    assert row["uscc"] == "U1" and row["recipient"] == "德州市甲公司" and row["status"] == "queued"
    assert row["message_id"] == message_id(alerts["alert_id"].iloc[0]) and row["text"] == LONG


def test_the_same_reminder_is_never_queued_twice_across_runs():
    run1 = alerts_frame([quota_alert("U1", "yellow", "P1", "短信一"), quota_alert("U2", "yellow", "P2", "短信二")])
    out1 = build_outbox(run1, ENTITIES, set(), RULES)
    assert len(out1) == 2
    queued = set(out1["message_id"])
    # next month: U1 unchanged (same alert, new wording of the numbers), U2 escalates to orange
    run2 = alerts_frame([quota_alert("U1", "yellow", "P1", "短信一（更新）"), quota_alert("U2", "orange", "P2", "短信三")])
    out2 = build_outbox(run2, ENTITIES, queued, RULES)
    assert list(out2["uscc"]) == ["U2"] and list(out2["level"]) == ["orange"]
    assert not queued & set(out2["message_id"])
    # a third run over both: nothing new
    assert build_outbox(pd.concat([run1, run2]), ENTITIES, queued | set(out2["message_id"]), RULES).empty
    # ids do not depend on row order or on the run
    again = build_outbox(run1.iloc[::-1], ENTITIES, set(), RULES)
    assert set(again["message_id"]) == queued


@pytest.mark.parametrize("limit", [70, 40])
def test_segments_stay_within_the_limit_and_reassemble(limit):
    parts = split_segments(LONG, limit)
    assert len(parts) > 1
    assert all(len(p) <= limit for p in parts)
    assert [MARKER.search(p).group(0) for p in parts] == [f"({i}/{len(parts)})" for i in range(1, len(parts) + 1)]
    assert "".join(MARKER.sub("", p) for p in parts) == LONG
    assert "45.2万m³" in "".join(parts)  # decimals are not break points


def test_short_text_is_one_segment_and_exact_limit_is_not_split():
    assert split_segments("请及时办理。", 70) == ["请及时办理。"]
    exactly = "水" * 70
    assert split_segments(exactly, 70) == [exactly]
    over = "水" * 71  # no punctuation at all: hard cuts
    parts = split_segments(over, 70)
    assert len(parts) == 2 and all(len(p) <= 70 for p in parts)
    assert "".join(MARKER.sub("", p) for p in parts) == over


def test_outbox_uses_the_segment_setting():
    alerts = alerts_frame([quota_alert("U1", "red", "P1", LONG)])
    wide = build_outbox(alerts, ENTITIES, set(), RULES)
    narrow = build_outbox(alerts, ENTITIES, set(), RuleSettings(sms_segment_chars=30))
    assert narrow["segment_count"].iloc[0] > wide["segment_count"].iloc[0]
    assert all(len(s) <= 30 for s in narrow["segments"].iloc[0])
    assert wide["segment_count"].iloc[0] == len(wide["segments"].iloc[0])
