"""Module 4: permit renewal and use outside a permit -- reminders before expiry, metered water after
expiry or on a revoked or cancelled permit, and abstraction with no permit at all (declared in tax,
metered on a permit number the register does not hold, or metered before the permit was granted). A meter
on a permit number whose register row ingest quarantined is a data problem to fix, not unpermitted use."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.compliance import (
    declarations_without_permit,
    known_permits,
    metered_before_permit,
    meters_without_permit,
    quarantined_keys,
    renewed,
    use_outside_permit,
)
from models.rules.alerts import SOURCE_CN, empty_alerts, finish_alerts, fmt_m3, with_entity
from models.rules.records import known_abstraction, known_tax
from models.settings import RuleSettings

RENEWAL_APPLICATION_DAYS = 45  # 取水许可和水资源费征收管理条例 第二十五条: apply 45 days before expiry


def renewal_reminder(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Valid permits expiring in 61-90 days (reminder_90) or 0-60 days (reminder_60), unless the holder already
    holds the renewal (an SMS asking to renew a renewed permit is noise)."""
    permits = known_permits(tables["permits"], as_of)
    permits = permits[permits["status"] == "valid"]
    days = (permits["valid_to"] - pd.Timestamp(as_of)).dt.days
    due = permits[(days >= 0) & (days <= rules.renewal_first_days)]
    due = due[~renewed(due, tables["permits"], rules.renewal_first_days)].copy()
    if due.empty:
        return empty_alerts()
    due["days"] = days[due.index]
    second = due["days"] <= rules.renewal_second_days
    due["level"] = np.where(second, "reminder_60", "reminder_90")
    due = with_entity(due, tables, "holder_name")
    due["kind"] = "renewal"
    due["basis"] = "permit"
    due["period"] = due["valid_to"].dt.strftime("%Y-%m-%d")
    due["value"] = due["days"].astype("float64")
    due["threshold"] = np.where(second, rules.renewal_second_days, rules.renewal_first_days).astype("float64")
    due["unit"] = "天"
    # the application is due RENEWAL_APPLICATION_DAYS before expiry: name that day, or say it has passed
    apply_by = (due["valid_to"] - pd.Timedelta(days=RENEWAL_APPLICATION_DAYS)).dt.strftime("%Y年%m月%d日")
    rule = f"（有效期届满{RENEWAL_APPLICATION_DAYS}日前）"
    ask = pd.Series(
        np.where(due["days"] >= RENEWAL_APPLICATION_DAYS, "需继续取水的，请于" + apply_by + "前" + rule + "提出延续申请",
                 f"延续申请期限{rule}已过，需继续取水的，请尽快提出延续申请"),
        index=due.index,
    )
    due["message"] = (
        f"【{rules.bureau_name}】" + due["name"] + "：您单位取水许可证" + due["permit_id"] + "将于"
        + due["valid_to"].dt.strftime("%Y年%m月%d日") + "到期（剩余" + due["days"].astype("int64").astype("str")
        + "天）。" + ask + "，逾期未延续将不得继续取水。"
    )
    due["audience"] = "user"
    return finish_alerts(due)


def use_after_permit(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Metered use outside a permit, per (permit, calendar year): after the permit's valid_to (within
    the enforcement lookback) or on a revoked / cancelled permit (in the last few months).

    Columns permit_id, year, uscc, holder_name, source, status, valid_to, volume, first_month,
    last_month, months (metered months), after_expiry.
    """
    as_of = pd.Timestamp(as_of)
    metered = known_abstraction(tables, as_of)
    metered = metered[(metered["month"] >= as_of - pd.DateOffset(months=rules.enforcement_lookback_months)) & (metered["volume_m3"] > 0)]
    register = known_permits(tables["permits"], as_of)
    rows = metered.merge(register[["permit_id", "valid_to", "status"]], on="permit_id", how="inner")
    outside = use_outside_permit(rows, register)
    withdrawn = outside["withdrawn"] & (rows["month"] >= as_of - pd.DateOffset(months=rules.cancelled_recent_months))
    rows = rows[outside["after_expiry"] | withdrawn].assign(
        year=lambda r: r["month"].dt.year.astype("str"), after_expiry=outside["after_expiry"]
    )
    g = rows.groupby(["permit_id", "year"], as_index=False).agg(
        uscc=("uscc", "first"),
        holder_name=("holder_name", "first"),
        source=("source", "first"),
        status=("status", "first"),
        valid_to=("valid_to", "first"),
        volume=("volume_m3", "sum"),
        first_month=("month", "min"),
        last_month=("month", "max"),
        months=("month", "nunique"),
        after_expiry=("after_expiry", "any"),
    )
    g["uscc"] = g["uscc"].fillna("")
    return g


def expired_permit_use(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Red alert per permit and year of metered use after the permit's valid_to, or now on a
    revoked/cancelled permit (``use_after_permit``)."""
    g = use_after_permit(tables, as_of, rules)
    if g.empty:
        return empty_alerts()
    g = with_entity(g, tables, "holder_name")
    status_cn = g["status"].map({"revoked": "已吊销", "cancelled": "已注销", "valid": "有效"}).fillna("")
    first = g["first_month"].dt.strftime("%Y年%m月")
    span = first.where(g["first_month"] == g["last_month"], first + "至" + g["last_month"].dt.strftime("%m月"))
    reason = pd.Series(
        np.where(g["after_expiry"], "已于" + g["valid_to"].dt.strftime("%Y年%m月%d日") + "到期", "状态为" + status_cn),
        index=g.index,
    )
    g["kind"] = "expired_permit"
    g["level"] = "red"
    g["basis"] = "permit"
    g["period"] = g["year"]
    g["value"] = g["volume"].round(1)
    g["threshold"] = 0.0
    g["unit"] = "m³"
    g["volume_at_stake_m3"] = g["volume"]
    g["message"] = (
        g["name"] + "（" + g["uscc"] + "）取水许可证" + g["permit_id"] + reason + "，" + span + "仍计量取水"
        + fmt_m3(g["volume"]) + "，涉嫌无有效许可取水，建议立即核查并责令停止取水或办理延续。"
    )
    g["audience"] = "bureau"
    return finish_alerts(g)


def unpermitted_abstraction(tables, as_of, rules: RuleSettings, quarantine: pd.DataFrame | None = None) -> pd.DataFrame:
    """Abstraction with no permit behind it: tax declared for a source the entity held no permit for
    in that quarter, meters booked to a permit number absent from the register, and months metered on a
    permit before it was granted (未批先取). ``quarantine``: ingest's quarantine rows (with ``key``); a
    meter on a permit whose register row it holds is a ``warning`` to fix the register, not unpermitted use."""
    as_of = pd.Timestamp(as_of)
    tax = known_tax(tables, as_of, rules)
    bare = declarations_without_permit(tax, known_permits(tables["permits"], as_of))
    taxed = bare[["uscc", "period", "period_start", "source", "declared_m3"]].copy()
    taxed["permit_id"] = ""
    taxed["volume"] = taxed["declared_m3"]
    taxed["evidence"] = "申报" + taxed["source"].map(SOURCE_CN) + "取水" + fmt_m3(taxed["declared_m3"])
    taxed["holder_name"] = np.nan
    taxed["basis"] = "tax"

    metered = tables["abstraction"]
    window_start = as_of - pd.DateOffset(months=rules.enforcement_lookback_months)
    metered = metered[(metered["month"] < as_of) & (metered["month"] >= window_start) & (metered["volume_m3"] > 0)]
    unknown = meters_without_permit(metered, tables["permits"])
    unknown = unknown.assign(period=unknown["month"].dt.year.astype("str"))
    orphan = unknown.groupby(["permit_id", "period"], as_index=False).agg(volume=("volume_m3", "sum"))
    orphan["uscc"] = ""
    orphan["source"] = ""
    orphan["holder_name"] = np.nan
    orphan["evidence"] = "计量设施登记在不存在的许可证号" + orphan["permit_id"] + "下，计量取水" + fmt_m3(orphan["volume"])
    orphan["basis"] = "meter"
    rejected = quarantined_keys(quarantine, "permits")
    held = orphan["permit_id"].isin(rejected["key"])
    early = _before_permit(metered, known_permits(tables["permits"], as_of))

    hit = pd.concat([taxed, orphan[~held], early], ignore_index=True)
    parts = [_unpermitted_alerts(with_entity(hit, tables, "holder_name"))] if len(hit) else []
    if held.any():
        parts.append(_quarantined_permit_alerts(orphan[held], rejected))
    parts = [p for p in parts if not p.empty]
    return finish_alerts(pd.concat(parts, ignore_index=True)) if parts else empty_alerts()


def _before_permit(metered: pd.DataFrame, register: pd.DataFrame) -> pd.DataFrame:
    """Per permit and year: the months metered before the permit was granted (未批先取), of permits known at
    as_of (``metered`` holds the months before it only)."""
    rows = metered.merge(register[["permit_id", "uscc", "holder_name", "source", "valid_from"]], on="permit_id")
    rows = rows[metered_before_permit(rows, register)]
    g = rows.assign(period=rows["month"].dt.year.astype("str")).groupby(["permit_id", "period"], as_index=False).agg(
        uscc=("uscc", "first"), holder_name=("holder_name", "first"), source=("source", "first"),
        valid_from=("valid_from", "first"), volume=("volume_m3", "sum"), first_month=("month", "min"),
        last_month=("month", "max"))
    first = g["first_month"].dt.strftime("%Y年%m月")
    span = first.where(g["first_month"] == g["last_month"], first + "至" + g["last_month"].dt.strftime("%m月"))
    g["evidence"] = ("取水许可证" + g["permit_id"] + "于" + g["valid_from"].dt.strftime("%Y年%m月%d日") + "方获批准，"
                     + "批准前" + span + "已计量取水" + fmt_m3(g["volume"]) + "，属未批先取")
    g["uscc"] = g["uscc"].fillna("")
    g["basis"] = "before_permit"
    return g.drop(columns=["valid_from", "first_month", "last_month"])


def _unpermitted_alerts(hit: pd.DataFrame) -> pd.DataFrame:
    """Red alerts of abstraction with no permit (``unpermitted_abstraction``)."""
    who = pd.Series(np.where(hit["uscc"] != "", hit["name"] + "（" + hit["uscc"] + "）", "未知取水户"), index=hit.index)
    no_permit = pd.Series(
        np.where(hit["source"] != "", "但该期间无有效" + hit["source"].map(SOURCE_CN).fillna("") + "取水许可", "无对应取水许可"),
        index=hit.index,
    )
    early = hit["basis"] == "before_permit"  # its evidence names the year's months and the grant itself
    hit["kind"] = "unpermitted"
    hit["level"] = "red"
    hit["value"] = hit["volume"].round(1)
    hit["threshold"] = 0.0
    hit["unit"] = "m³"
    hit["volume_at_stake_m3"] = hit["volume"]
    said = (hit["period"] + hit["evidence"] + "，" + no_permit).where(~early, hit["evidence"])
    hit["message"] = who + said + "，涉嫌无证取水，建议现场核查。"
    hit["audience"] = "bureau"
    return hit


def _quarantined_permit_alerts(held: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """Warnings for meters on a permit number whose register row ingest quarantined: the register row is to be
    fixed and the drop ingested again; nothing shows the holder abstracts without a permit."""
    row = held.merge(rejected.rename(columns={"value": "written"}), left_on="permit_id", right_on="key", how="left")
    row["kind"] = "unpermitted"
    row["level"] = "warning"
    row["basis"] = "quarantined_permit"
    row["name"] = ""
    row["district"] = ""
    row["value"] = row["volume"].round(1)
    row["threshold"] = 0.0
    row["unit"] = "m³"
    row["volume_at_stake_m3"] = row["volume"]
    where = (row["file"].astype("str") + "第" + row["row_number"].astype("int64").astype("str") + "行，"
             + row["column"].astype("str") + "：" + row["reason"].astype("str") + "，原值“" + row["written"].astype("str") + "”")
    row["message"] = (
        row["period"] + "年计量设施登记在许可证号" + row["permit_id"] + "下，计量取水" + fmt_m3(row["volume"])
        + "。该许可证在取水许可登记中有记录，但其登记行在数据接入时被隔离（" + where + "），无法核对许可。"
        "请先更正取水许可登记数据并重新接入后复核，不应据此认定无证取水。"
    )
    row["audience"] = "bureau"
    return row
