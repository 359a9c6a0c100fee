"""Modules 1 and 2: quota and plan supervision -- year-to-date use against the permit's annual
quota and the annual water-use plan, in yellow / orange / red, and the run-rate early warning."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.compliance import known_permits, quota_covered, renewal_successors
from models.rules.alerts import LEVEL_CN, empty_alerts, finish_alerts, fmt_m3, fmt_pct, with_entity
from models.rules.records import known_abstraction, linked_supply, year_window
from models.rules.memo import shared
from models.settings import RuleSettings


def _level(share: pd.Series, rules: RuleSettings) -> pd.Series:
    eps = 1e-9  # 0.8 computed as 80/100 must count as 80 %
    return pd.Series(
        np.select(
            [share >= rules.quota_red - eps, share >= rules.quota_orange - eps, share >= rules.quota_yellow - eps],
            ["red", "orange", "yellow"],
            default="",
        ),
        index=share.index,
    )


@shared
def quota_usage(tables, links, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Year-to-date use against the annual permit quota (per permit) and the annual plan (per uscc).

    One row per (basis, uscc, permit_id) with ytd_m3, limit_m3, share, projected_m3, months.
    """
    year, start, months = year_window(as_of)
    metered = known_abstraction(tables, as_of)
    metered = metered[metered["month"] >= start]
    usage = pd.concat([_permit_usage(tables, metered, as_of, year, rules.quota_year_across_renewal), _plan_usage(tables, links, metered, as_of, year)],
                      ignore_index=True)
    usage["share"] = usage["ytd_m3"] / usage["limit_m3"]
    usage["months"] = months
    # the run rate; a seasonal projection (last year's full-year / same-months ratio) was
    # measured on the sample drop and flagged more permits with fewer true overruns
    usage["projected_m3"] = usage["ytd_m3"] / max(months, 1) * 12
    usage["year"] = year
    return usage


def _permit_usage(tables, metered: pd.DataFrame, as_of, year: int, across_renewal: bool = False) -> pd.DataFrame:
    """Metered use this year of every valid permit dated into the year, against its annual quota; with
    ``across_renewal``, a renewal's row also carries the permit it replaced (``_with_replaced_permits``)."""
    start, year_end = pd.Timestamp(year=year, month=1, day=1), pd.Timestamp(year=year, month=12, day=31)
    permits = known_permits(tables["permits"], as_of)
    permits = permits[
        (permits["status"] == "valid") & (permits["valid_from"] <= year_end) & (permits["valid_to"] >= start)
        & (permits["annual_quota_m3"] > 0)
    ]
    p = pd.DataFrame(
        {
            "basis": "permit",
            "uscc": permits["uscc"].astype("str").to_numpy(),
            "permit_id": permits["permit_id"].to_numpy(),
            "source": permits["source"].to_numpy(),
            "holder_name": permits["holder_name"].to_numpy(),
            "limit_m3": permits["annual_quota_m3"].to_numpy(),
        }
    )
    used = metered.groupby("permit_id")["volume_m3"].sum()
    p["ytd_m3"] = p["permit_id"].map(used).fillna(0.0)
    p["renewed_from"] = ""
    if across_renewal:
        p = _with_replaced_permits(p, known_permits(tables["permits"], as_of), used, start)
    p["supply_m3"] = 0.0
    p["abstraction_m3"] = p["ytd_m3"]
    return p


def _with_replaced_permits(p: pd.DataFrame, register: pd.DataFrame, used: pd.Series, start: pd.Timestamp) -> pd.DataFrame:
    """A renewal (延续) continues the right of the permit it replaced (``features.compliance.renewal_successors``):
    where that permit ran into the year, the renewal's row carries its months of use too, against what the two
    allowed over the year (each annual quota for the days it ran, ``quota_covered``; the old one up to the day
    before its renewal), and the old permit has no row of its own. A first permit keeps its year's quota."""
    months = pd.date_range(start, periods=12, freq="MS")
    old = renewal_successors(register)
    old = old.assign(valid_to=old["valid_to"].where(old["valid_to"] < old["next_from"],
                                                    old["next_from"] - pd.Timedelta(days=1)))
    old = old[(old["valid_to"] >= start) & old["next_id"].isin(p["permit_id"])]
    if old.empty:
        return p
    renewal = old["next_id"].to_numpy()
    allowed_old = quota_covered(old, months).groupby(renewal).sum()
    used_old = old["permit_id"].map(used).fillna(0.0).groupby(renewal).sum()
    succ = register[register["permit_id"].isin(allowed_old.index)].drop_duplicates("permit_id")
    allowed = quota_covered(succ, months).set_axis(succ["permit_id"]) + allowed_old
    folded = p["permit_id"].isin(allowed.index)
    ids = p.loc[folded, "permit_id"]
    p.loc[folded, "limit_m3"] = ids.map(allowed).to_numpy(dtype="float64")
    p.loc[folded, "ytd_m3"] = p.loc[folded, "ytd_m3"] + ids.map(used_old).to_numpy(dtype="float64")
    p.loc[folded, "renewed_from"] = ids.map(old.groupby("next_id")["permit_id"].agg("、".join))
    return p[~p["permit_id"].isin(old["permit_id"])].reset_index(drop=True)


def _plan_usage(tables, links, metered: pd.DataFrame, as_of, year: int) -> pd.DataFrame:
    """Linked public supply plus metered abstraction this year of every planned user, against the plan."""
    start = pd.Timestamp(year=year, month=1, day=1)
    plans = tables["plans"]
    plans = plans[(plans["year"] == year) & (plans["planned_m3"] > 0) & plans["uscc"].notna()].drop_duplicates("uscc")
    supply = linked_supply(tables, links, as_of)
    supply_ytd = supply[supply["month"] >= start].groupby("uscc")["volume_m3"].sum()
    abstraction_ytd = metered.dropna(subset=["uscc"]).groupby("uscc")["volume_m3"].sum()
    q = pd.DataFrame(
        {
            "basis": "plan",
            "uscc": plans["uscc"].astype("str").to_numpy(),
            "permit_id": "",
            "source": "",
            "holder_name": np.nan,
            "limit_m3": plans["planned_m3"].astype("float64").to_numpy(),
        }
    )
    q["supply_m3"] = q["uscc"].map(supply_ytd).fillna(0.0)
    q["abstraction_m3"] = q["uscc"].map(abstraction_ytd).fillna(0.0)
    q["ytd_m3"] = q["supply_m3"] + q["abstraction_m3"]
    return q


def quota_warning(tables, links, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Yellow/orange/red when year-to-date use reaches 80/90/100 % of the permit quota or the plan
    (once the year is complete, only red: a warning to plan the rest of the year has no rest left)."""
    usage = quota_usage(tables, links, as_of, rules)
    usage["level"] = _level(usage["share"], rules)
    if year_window(as_of)[2] == 12:  # the year is over: "plan your use" is moot, only the overrun stands
        usage["level"] = usage["level"].where(usage["level"] == "red", "")
    hit = usage[usage["level"] != ""].copy()
    if hit.empty:
        return empty_alerts()
    year, _, months = year_window(as_of)
    hit = with_entity(hit, tables, "holder_name")
    threshold = hit["level"].map({"yellow": rules.quota_yellow, "orange": rules.quota_orange, "red": rules.quota_red})
    pct = fmt_pct(hit["share"] * 100)
    span = f"{year}年1-{months}月" if months > 1 else f"{year}年1月"
    level_cn = hit["level"].map(LEVEL_CN)
    is_permit = hit["basis"] == "permit"
    renewed_from = hit["renewed_from"].fillna("")
    replaced = pd.Series(np.where(renewed_from != "", "（含延续前许可证" + renewed_from + "）", ""), index=hit.index)
    permit_msg = (
        f"【{rules.bureau_name}】" + hit["name"] + "：您单位取水许可证" + hit["permit_id"] + f"，{span}累计取水"
        + fmt_m3(hit["ytd_m3"]) + replaced + "，已达年度许可水量" + fmt_m3(hit["limit_m3"]) + "的" + pct + "（" + level_cn
        + "预警），请合理安排用水，超许可取水将依法查处。"
    )
    plan_msg = (
        f"【{rules.bureau_name}】" + hit["name"] + f"：您单位{span}累计用水" + fmt_m3(hit["ytd_m3"]) + "（自来水"
        + fmt_m3(hit["supply_m3"]) + "、自备水" + fmt_m3(hit["abstraction_m3"]) + "），已达年度计划用水量"
        + fmt_m3(hit["limit_m3"]) + "的" + pct + "（" + level_cn + "预警），请加强节水管理，超计划用水将累进加价。"
    )
    hit["kind"] = "quota"
    hit["period"] = str(year)
    hit["value"] = (hit["share"] * 100).round(1)
    hit["threshold"] = threshold * 100
    hit["unit"] = "%"
    hit["volume_at_stake_m3"] = (hit["ytd_m3"] - hit["limit_m3"]).clip(lower=0)
    hit["message"] = permit_msg.where(is_permit, plan_msg)
    hit["audience"] = "user"
    return finish_alerts(hit)


def quota_projection(tables, links, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Early warning: still below yellow, but the run rate (YTD / months x 12) overruns the year."""
    year, _, months = year_window(as_of)
    if months < rules.projection_min_months:
        return empty_alerts()
    usage = quota_usage(tables, links, as_of, rules)
    projected_share = usage["projected_m3"] / usage["limit_m3"]
    hit = usage[(usage["share"] < rules.quota_yellow - 1e-9) & (projected_share >= rules.quota_red - 1e-9)].copy()
    if hit.empty:
        return empty_alerts()
    hit = with_entity(hit, tables, "holder_name")
    proj_pct = fmt_pct(hit["projected_m3"] / hit["limit_m3"] * 100)
    what = pd.Series(np.where(hit["basis"] == "permit", "取水", "用水"), index=hit.index)
    limit = pd.Series(np.where(hit["basis"] == "permit", "年度许可水量", "年度计划用水量"), index=hit.index)
    subject = pd.Series(np.where(hit["basis"] == "permit", "取水许可证" + hit["permit_id"] + "，", ""), index=hit.index)
    hit["kind"] = "quota_projection"
    hit["level"] = "warning"
    hit["period"] = str(year)
    hit["value"] = (hit["projected_m3"] / hit["limit_m3"] * 100).round(1)
    hit["threshold"] = rules.quota_red * 100
    hit["unit"] = "%"
    hit["volume_at_stake_m3"] = hit["projected_m3"] - hit["limit_m3"]
    hit["message"] = (
        f"【{rules.bureau_name}】" + hit["name"] + "：您单位" + subject + f"按{year}年1-{months}月" + what + "进度（"
        + fmt_m3(hit["ytd_m3"]) + "）测算，全年将" + what + "约" + fmt_m3(hit["projected_m3"]) + "，达" + limit
        + fmt_m3(hit["limit_m3"]) + "的" + proj_pct + "，请提前调整用水安排。"
    )
    hit["audience"] = "user"
    return finish_alerts(hit)
