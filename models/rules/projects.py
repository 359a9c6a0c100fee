"""Module 6: source prevention (源头管控) -- new approvals and construction starts without water procedures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.compliance import dewatering_permitted, holders_in_force, known_permits
from models.rules.alerts import empty_alerts, finish_alerts, with_entity
from models.settings import RuleSettings


def source_prevention(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Projects approved or starting construction recently whose owner holds no valid permit
    (or, for works that dewater a foundation pit, no dewatering permit in force since their start)."""
    as_of = pd.Timestamp(as_of)
    since = as_of - pd.Timedelta(days=rules.source_prevention_days)
    projects = tables["projects"]
    started = projects["construction_start_on"].where(projects["construction_start_on"] < as_of)
    approved = projects["approved_on"].where(projects["approved_on"] < as_of)
    event = started.where(started >= since).fillna(approved.where(approved >= since))
    recent = projects[event.notna()].assign(event_on=event[event.notna()])
    if recent.empty:
        return empty_alerts()
    permits = known_permits(tables["permits"], as_of)
    holds_any = recent["uscc"].isin(holders_in_force(permits, as_of))
    holds_dewatering = dewatering_permitted(recent, permits, as_of)  # one that ended with the pit counts
    dewatering = recent["dewatering"].fillna(False).astype(bool) & ~holds_dewatering  # works still to cover
    need = ~holds_any | dewatering
    hit = recent[need].copy()
    if hit.empty:
        return empty_alerts()
    hit["uscc"] = hit["uscc"].fillna("")
    hit = with_entity(hit, tables)
    hit["name"] = hit["name"].where(hit["name"] != "", "建设单位")
    hit["dewatering"] = dewatering[hit.index]
    is_start = started[hit.index] == hit["event_on"]
    stage = pd.Series(np.where(is_start, "已开工", "已立项"), index=hit.index)
    steps = pd.Series(
        np.where(
            hit["dewatering"] & holds_any[hit.index],
            "基坑降水须办理疏干排水取水许可",
            np.where(hit["dewatering"], "请办理取水许可申请（基坑降水须办理疏干排水取水许可）", "需取用水的请办理取水许可申请"),
        ),
        index=hit.index,
    )
    hit["kind"] = "source_prevention"
    hit["level"] = "notice"
    hit["basis"] = "project"
    hit["permit_id"] = ""
    hit["period"] = hit["event_on"].dt.strftime("%Y-%m-%d")
    hit["value"] = (as_of - hit["event_on"]).dt.days.astype("float64")
    hit["threshold"] = float(rules.source_prevention_days)
    hit["unit"] = "天"
    hit["volume_at_stake_m3"] = hit["expected_annual_water_m3"]
    hit["message"] = (
        f"【{rules.bureau_name}】" + hit["name"] + "：您单位" + hit["project_name"].fillna("建设项目") + stage + "。" + steps
        + "，申报计划用水，并落实节水设施与主体工程同时设计、同时施工、同时投入使用（节水“三同时”）。"
    )
    hit["audience"] = np.where(hit["uscc"] != "", "user", "bureau")
    return finish_alerts(hit)
