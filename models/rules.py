"""The deterministic supervision checks of the bureau's six modules, as pure functions.

Each check takes the typed contract tables and an ``as_of`` (first day of a
month) and returns alerts in one shape (``ALERT_COLUMNS``). Only data known at
as_of is used: monthly rows with ``month < as_of``, tax quarters that ended
before as_of, permits with ``valid_from < as_of``, projects approved before
as_of. Permit ``status`` is the register's current snapshot (it has no date).

Alert ids hash (kind, level, uscc, permit_id, period[, project_id]) so that the
same finding on a re-run keeps its id and an escalation (yellow -> orange) is a
new alert: that is what lets the outbox send each reminder exactly once.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from waterwatch.settings import RuleSettings

ALERT_COLUMNS = [
    "alert_id",
    "kind",
    "level",
    "basis",
    "uscc",
    "name",
    "permit_id",
    "project_id",
    "source",
    "district",
    "period",
    "value",
    "threshold",
    "unit",
    "volume_at_stake_m3",
    "tax_at_stake_yuan",
    "message",
    "audience",
]
LEVEL_ORDER = {"notice": 0, "reminder_90": 1, "reminder_60": 2, "warning": 3, "yellow": 4, "orange": 5, "red": 6}
LEVEL_CN = {"yellow": "黄色", "orange": "橙色", "red": "红色"}
SOURCE_CN = {"groundwater": "地下水", "surface": "地表水"}
RENEWAL_APPLICATION_DAYS = 45  # 取水许可和水资源费征收管理条例 第二十五条: apply 45 days before expiry


# -- small shared pieces --------------------------------------------------------


def alert_ids(frame: pd.DataFrame) -> pd.Series:
    """Stable id of an alert: the same finding in a later run hashes the same.

    The key is (kind, level, uscc, permit_id, period); findings not tied to a
    permit add what tells them apart: the source (a declaration per source) or
    the project.
    """
    parts = frame[["kind", "level", "uscc", "permit_id", "period"]].fillna("").astype("str")
    keys = parts["kind"] + "|" + parts["level"] + "|" + parts["uscc"] + "|" + parts["permit_id"] + "|" + parts["period"]
    no_permit = parts["permit_id"] == ""
    for extra in ("source", "project_id"):
        if extra in frame.columns:
            value = frame[extra].fillna("").astype("str")
            keys = keys.where(~no_permit | (value == ""), keys + "|" + extra + "=" + value)
    return keys.map(lambda k: hashlib.sha1(k.encode("utf-8")).hexdigest()[:16])


def empty_alerts() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="str") for c in ALERT_COLUMNS})
    for c in ("value", "threshold", "volume_at_stake_m3", "tax_at_stake_yuan"):
        frame[c] = pd.Series(dtype="float64")
    return frame


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill the common columns, compute ids, order columns and rows."""
    if frame.empty:
        return empty_alerts()
    out = frame.copy()
    for c in ALERT_COLUMNS:
        if c not in out.columns:
            out[c] = np.nan if c in ("value", "threshold", "volume_at_stake_m3", "tax_at_stake_yuan") else ""
    for c in ("kind", "level", "basis", "uscc", "name", "permit_id", "project_id", "source", "district", "period", "unit", "message", "audience"):
        out[c] = out[c].fillna("").astype("str")
    for c in ("value", "threshold", "volume_at_stake_m3", "tax_at_stake_yuan"):
        out[c] = out[c].astype("float64")
    out["alert_id"] = alert_ids(out)
    return out[ALERT_COLUMNS].sort_values(["kind", "uscc", "permit_id", "period", "source", "project_id"], kind="stable").reset_index(drop=True)


def fmt_m3(values: pd.Series) -> pd.Series:
    """Volumes as a bureau writes them: 万m³ with one decimal from 10,000 m³, else whole m³."""
    v = values.astype("float64").fillna(0.0)
    return pd.Series(
        np.where(v >= 10_000, (v / 10_000).round(1).map("{:.1f}万m³".format), v.round(0).map("{:.0f}m³".format)),
        index=values.index,
        dtype="str",
    )


def fmt_pct(values: pd.Series) -> pd.Series:
    return values.astype("float64").round(0).map("{:.0f}%".format).astype("str")


def year_window(as_of: pd.Timestamp) -> tuple[int, pd.Timestamp, int]:
    """The calendar year being supervised (that of the last known day) and months elapsed in it."""
    as_of = pd.Timestamp(as_of)
    year = (as_of - pd.Timedelta(days=1)).year
    start = pd.Timestamp(year=year, month=1, day=1)
    months = (as_of.year - year) * 12 + as_of.month - 1
    return year, start, months


def _entity_lookup(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    ent = tables["entities"][["uscc", "name", "district"]].dropna(subset=["uscc"])
    return ent.drop_duplicates("uscc").set_index("uscc")


def _with_entity(frame: pd.DataFrame, tables, name_fallback: str | None = None) -> pd.DataFrame:
    """Attach the registered name and district (falling back to the permit's holder name)."""
    ent = _entity_lookup(tables)
    out = frame.copy()
    out["name"] = out["uscc"].map(ent["name"])
    if name_fallback and name_fallback in out.columns:
        out["name"] = out["name"].fillna(out[name_fallback])
    out["name"] = out["name"].fillna("")
    district = out["uscc"].map(ent["district"])
    if "district" in out.columns:
        district = district.fillna(out["district"])
    out["district"] = district.fillna("")
    return out


def known_permits(tables, as_of) -> pd.DataFrame:
    permits = tables["permits"]
    return permits[permits["valid_from"] < as_of]


def known_abstraction(tables, as_of) -> pd.DataFrame:
    """Metered monthly abstraction known at as_of, with the permit's holder and source."""
    abstraction = tables["abstraction"]
    abstraction = abstraction[abstraction["month"] < as_of]
    permits = tables["permits"][["permit_id", "uscc", "source", "holder_name"]]
    return abstraction.merge(permits, on="permit_id", how="left")


def own_uscc_links(tables) -> pd.DataFrame:
    """Fallback links until ``features.linkage`` runs: supply accounts carrying a valid uscc of their own."""
    supply = tables["supply"]
    own = supply[supply["uscc"].notna() & (supply["uscc_valid"] == True)]  # noqa: E712 (NA-aware)
    own = own.sort_values("month").drop_duplicates("account_id", keep="last")
    return pd.DataFrame(
        {
            "source": "supply",
            "account_id": own["account_id"].astype("str").to_numpy(),
            "uscc": own["uscc"].astype("str").to_numpy(),
            "method": "uscc",
            "confidence": 1.0,
            "status": "linked",
        }
    )


def linked_supply(tables, links: pd.DataFrame | None, as_of) -> pd.DataFrame:
    """Supply months (< as_of) attributed to entities through linked accounts only."""
    links = own_uscc_links(tables) if links is None else links
    linked = links[(links["source"] == "supply") & (links["status"] == "linked") & links["uscc"].notna() & (links["uscc"] != "")]
    supply = tables["supply"]
    supply = supply[supply["month"] < as_of][["account_id", "month", "volume_m3"]]
    return supply.merge(linked[["account_id", "uscc"]].drop_duplicates("account_id"), on="account_id", how="inner")


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


# -- module 1/2: quota and plan supervision ---------------------------------------


def quota_usage(tables, links, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Year-to-date use against the annual permit quota (per permit) and the annual plan (per uscc).

    One row per (basis, uscc, permit_id) with ytd_m3, limit_m3, share, projected_m3, months.
    """
    year, start, months = year_window(as_of)
    year_end = pd.Timestamp(year=year, month=12, day=31)
    metered = known_abstraction(tables, as_of)
    metered = metered[metered["month"] >= start]

    permits = known_permits(tables, as_of)
    permits = permits[
        (permits["status"] == "valid") & (permits["valid_from"] <= year_end) & (permits["valid_to"] >= start) & (permits["annual_quota_m3"] > 0)
    ]
    by_permit = metered.groupby("permit_id")["volume_m3"].sum()
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
    p["ytd_m3"] = p["permit_id"].map(by_permit).fillna(0.0)
    p["supply_m3"] = 0.0
    p["abstraction_m3"] = p["ytd_m3"]

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

    usage = pd.concat([p, q], ignore_index=True)
    usage["share"] = usage["ytd_m3"] / usage["limit_m3"]
    usage["months"] = months
    # the run rate; a seasonal projection (last year's full-year / same-months ratio) was
    # measured on the sample drop and flagged more permits with fewer true overruns
    usage["projected_m3"] = usage["ytd_m3"] / max(months, 1) * 12
    usage["year"] = year
    return usage


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
    hit = _with_entity(hit, tables, "holder_name")
    threshold = hit["level"].map({"yellow": rules.quota_yellow, "orange": rules.quota_orange, "red": rules.quota_red})
    pct = fmt_pct(hit["share"] * 100)
    span = f"{year}年1-{months}月" if months > 1 else f"{year}年1月"
    level_cn = hit["level"].map(LEVEL_CN)
    is_permit = hit["basis"] == "permit"
    permit_msg = (
        f"【{rules.bureau_name}】" + hit["name"] + "：您单位取水许可证" + hit["permit_id"] + f"，{span}累计取水"
        + fmt_m3(hit["ytd_m3"]) + "，已达年度许可水量" + fmt_m3(hit["limit_m3"]) + "的" + pct + "（" + level_cn
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
    return _finish(hit)


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
    hit = _with_entity(hit, tables, "holder_name")
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
    return _finish(hit)


# -- module 4: permit renewal and expired permits ------------------------------------


def renewal_reminder(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Valid permits expiring in 61-90 days (reminder_90) or 0-60 days (reminder_60)."""
    permits = known_permits(tables, as_of)
    permits = permits[permits["status"] == "valid"]
    days = (permits["valid_to"] - pd.Timestamp(as_of)).dt.days
    due = permits[(days >= 0) & (days <= rules.renewal_first_days)].copy()
    if due.empty:
        return empty_alerts()
    due["days"] = days[due.index]
    second = due["days"] <= rules.renewal_second_days
    due["level"] = np.where(second, "reminder_60", "reminder_90")
    due = _with_entity(due, tables, "holder_name")
    due["kind"] = "renewal"
    due["basis"] = "permit"
    due["period"] = due["valid_to"].dt.strftime("%Y-%m-%d")
    due["value"] = due["days"].astype("float64")
    due["threshold"] = np.where(second, rules.renewal_second_days, rules.renewal_first_days).astype("float64")
    due["unit"] = "天"
    due["message"] = (
        f"【{rules.bureau_name}】" + due["name"] + "：您单位取水许可证" + due["permit_id"] + "将于"
        + due["valid_to"].dt.strftime("%Y年%m月%d日") + "到期（剩余" + due["days"].astype("int64").astype("str")
        + f"天）。需继续取水的，请于有效期届满{RENEWAL_APPLICATION_DAYS}日前提出延续申请，逾期未延续将不得继续取水。"
    )
    due["audience"] = "user"
    return _finish(due)


def expired_permit_use(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Metered abstraction after the permit's valid_to, or now on a revoked/cancelled permit."""
    as_of = pd.Timestamp(as_of)
    metered = known_abstraction(tables, as_of)
    metered = metered[(metered["month"] >= as_of - pd.DateOffset(months=rules.enforcement_lookback_months)) & (metered["volume_m3"] > 0)]
    permits = known_permits(tables, as_of)[["permit_id", "valid_to", "status"]]
    rows = metered.merge(permits, on="permit_id", how="inner")
    after_expiry = rows["month"] > rows["valid_to"]
    recent = rows["month"] >= as_of - pd.DateOffset(months=rules.cancelled_recent_months)
    withdrawn = rows["status"].isin(["revoked", "cancelled"]) & recent & ~after_expiry
    rows = rows[after_expiry | withdrawn].copy()
    if rows.empty:
        return empty_alerts()
    rows["year"] = rows["month"].dt.year.astype("str")
    rows["after_expiry"] = after_expiry[rows.index]
    g = (
        rows.groupby(["permit_id", "year"], as_index=False)
        .agg(
            uscc=("uscc", "first"),
            holder_name=("holder_name", "first"),
            source=("source", "first"),
            status=("status", "first"),
            valid_to=("valid_to", "first"),
            volume=("volume_m3", "sum"),
            first_month=("month", "min"),
            last_month=("month", "max"),
            after_expiry=("after_expiry", "any"),
        )
    )
    g["uscc"] = g["uscc"].fillna("")
    g = _with_entity(g, tables, "holder_name")
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
    return _finish(g)


# -- module 1/3: unpermitted abstraction and the tax cross-check ----------------------


def _known_tax(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Tax quarters that ended before as_of, within the enforcement lookback."""
    as_of = pd.Timestamp(as_of)
    tax = tables["tax"].dropna(subset=["uscc", "period_start"])
    ended = tax["period_start"] + pd.DateOffset(months=3) <= as_of
    lookback = tax["period_start"] >= as_of - pd.DateOffset(months=rules.enforcement_lookback_months)
    return tax[ended & lookback]


def unpermitted_abstraction(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Abstraction with no permit behind it: tax declared for a source the entity held no permit for
    in that quarter, or meters booked to a permit number absent from the register."""
    as_of = pd.Timestamp(as_of)
    tax = _known_tax(tables, as_of, rules)
    tax = tax[tax["declared_m3"] > 0][["uscc", "period", "period_start", "source", "declared_m3"]]
    permits = known_permits(tables, as_of)[["uscc", "source", "valid_from", "valid_to"]]
    cover = tax.reset_index(names="tax_row").merge(permits, on=["uscc", "source"], how="inner")
    q_end = cover["period_start"] + pd.DateOffset(months=3) - pd.Timedelta(days=1)
    covered_rows = cover.loc[(cover["valid_from"] <= q_end) & (cover["valid_to"] >= cover["period_start"]), "tax_row"]
    taxed = tax[~tax.index.isin(covered_rows)].copy()
    taxed["permit_id"] = ""
    taxed["volume"] = taxed["declared_m3"]
    taxed["evidence"] = "申报" + taxed["source"].map(SOURCE_CN) + "取水" + fmt_m3(taxed["declared_m3"])
    taxed["holder_name"] = np.nan

    metered = tables["abstraction"]
    window_start = as_of - pd.DateOffset(months=rules.enforcement_lookback_months)
    metered = metered[(metered["month"] < as_of) & (metered["month"] >= window_start) & (metered["volume_m3"] > 0)]
    unknown = metered[~metered["permit_id"].isin(tables["permits"]["permit_id"])]
    unknown = unknown.assign(period=unknown["month"].dt.year.astype("str"))
    orphan = unknown.groupby(["permit_id", "period"], as_index=False).agg(volume=("volume_m3", "sum"))
    orphan["uscc"] = ""
    orphan["source"] = ""
    orphan["holder_name"] = np.nan
    orphan["evidence"] = "计量设施登记在不存在的许可证号" + orphan["permit_id"] + "下，计量取水" + fmt_m3(orphan["volume"])

    hit = pd.concat([taxed, orphan], ignore_index=True)
    if hit.empty:
        return empty_alerts()
    hit = _with_entity(hit, tables, "holder_name")
    who = pd.Series(np.where(hit["uscc"] != "", hit["name"] + "（" + hit["uscc"] + "）", "未知取水户"), index=hit.index)
    no_permit = pd.Series(
        np.where(hit["source"] != "", "但该期间无有效" + hit["source"].map(SOURCE_CN).fillna("") + "取水许可", "无对应取水许可"),
        index=hit.index,
    )
    hit["kind"] = "unpermitted"
    hit["level"] = "red"
    hit["basis"] = np.where(hit["uscc"] != "", "tax", "meter")
    hit["value"] = hit["volume"].round(1)
    hit["threshold"] = 0.0
    hit["unit"] = "m³"
    hit["volume_at_stake_m3"] = hit["volume"]
    hit["message"] = who + hit["period"] + hit["evidence"] + "，" + no_permit + "，涉嫌无证取水，建议现场核查。"
    hit["audience"] = "bureau"
    return _finish(hit)


def _month_number(values: pd.Series) -> pd.Series:
    return values.dt.year.astype("int64") * 12 + values.dt.month.astype("int64") - 1


def quarterly_metered(metered: pd.DataFrame) -> pd.DataFrame:
    """Metered volume per (uscc, source, quarter), a meter's missing months filled with its quarter mean.

    Meters skip monthly readings; a missing month is not zero abstraction, and
    counting it as zero would make every honest declaration look inflated. Only
    months inside the meter's own reporting span are filled (a meter that started
    or stopped mid-quarter is not extended).
    """
    month_no = _month_number(metered["month"])
    frame = metered.assign(month_no=month_no, quarter_no=(month_no // 3))
    span = frame.groupby("meter_id")["month_no"].agg(["min", "max"])
    per = frame.groupby(["meter_id", "uscc", "source", "quarter_no"], as_index=False).agg(
        volume=("volume_m3", "sum"), reported=("month_no", "nunique")
    )
    lo = np.maximum(per["quarter_no"] * 3, per["meter_id"].map(span["min"]))
    hi = np.minimum(per["quarter_no"] * 3 + 2, per["meter_id"].map(span["max"]))
    expected = np.maximum(hi - lo + 1, per["reported"])
    per["gap_filled"] = expected > per["reported"]
    per["metered"] = per["volume"] * expected / per["reported"]
    per["period"] = (per["quarter_no"] // 4).astype("str") + "-Q" + (per["quarter_no"] % 4 + 1).astype("str")
    return per.groupby(["uscc", "source", "period"], as_index=False).agg(metered=("metered", "sum"), gap_filled=("gap_filled", "any"))


def tax_mismatch(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Quarterly declared volume vs metered abstraction (by uscc and source) beyond the tolerance.

    Only (uscc, source) pairs holding a taxable (non-agricultural) permit of that
    source are compared, on the meters of those permits: irrigation within quota
    is exempt, and declarations with no permit at all are ``unpermitted``. Only
    quarters the meter and tax data both cover are compared.
    """
    as_of = pd.Timestamp(as_of)
    tax = _known_tax(tables, as_of, rules)
    taxable = known_permits(tables, as_of)
    taxable = taxable[taxable["purpose"] != "agriculture"]
    metered = known_abstraction(tables, as_of).dropna(subset=["uscc"])
    metered = metered[metered["permit_id"].isin(taxable["permit_id"])]
    if tax.empty or metered.empty:
        return empty_alerts()
    first_metered = tables["abstraction"]["month"].min()
    m = quarterly_metered(metered)
    d = tax.groupby(["uscc", "source", "period"], as_index=False).agg(declared=("declared_m3", "sum"), tax_yuan=("tax_yuan", "sum"))
    d["filed"] = True
    both = d.merge(m, on=["uscc", "source", "period"], how="outer")
    both["filed"] = both["filed"].fillna(False).astype(bool)
    both["gap_filled"] = both["gap_filled"].fillna(False).astype(bool)
    periods = pd.PeriodIndex(both["period"], freq="Q")
    both["period_start"] = periods.start_time
    both = both[
        both["period"].isin(set(tax["period"]))
        & (both["period_start"] >= first_metered)
        & (both["period_start"] + pd.DateOffset(months=3) <= as_of)
    ]
    holders = taxable[["uscc", "source"]].drop_duplicates()
    both = both.merge(holders, on=["uscc", "source"], how="inner")
    both["declared"] = both["declared"].fillna(0.0)
    both["metered"] = both["metered"].fillna(0.0)
    both = both[(both["declared"] > 0) | (both["metered"] > 0)].copy()
    gap = both["declared"] - both["metered"]
    rel = gap.abs() / both["metered"].where(both["metered"] > 0)
    eps = 1e-9
    no_meter = both["metered"] <= 0
    both["rel"] = rel
    both["level"] = np.select(
        [no_meter | (rel > rules.tax_red_share + eps), rel > rules.tax_tolerance + eps], ["red", "orange"], default=""
    )
    hit = both[both["level"] != ""].copy()
    if hit.empty:
        return empty_alerts()

    # the rate: this declaration's own, else the entity's usual one for the source, else the statutory default
    rates_all = tax["tax_yuan"] / tax["declared_m3"].where(tax["declared_m3"] > 0)
    usual = rates_all.groupby([tax["uscc"], tax["source"]]).median()
    own_rate = hit["tax_yuan"] / hit["declared"].where(hit["declared"] > 0)
    usual_rate = pd.Series(usual.reindex(pd.MultiIndex.from_frame(hit[["uscc", "source"]])).to_numpy(), index=hit.index)
    default = hit["source"].map({"groundwater": rules.tax_rate_groundwater_yuan, "surface": rules.tax_rate_surface_yuan})
    rate = own_rate.where(own_rate > 0).fillna(usual_rate).fillna(default).astype("float64")

    hit_gap = hit["declared"] - hit["metered"]
    hit = _with_entity(hit, tables)
    under = hit_gap < 0
    hit["kind"] = "tax_mismatch"
    hit["basis"] = "tax"
    hit["permit_id"] = ""
    hit["value"] = (hit["rel"].fillna(1.0) * 100).round(1)
    hit["threshold"] = np.where(hit["level"] == "red", rules.tax_red_share, rules.tax_tolerance) * 100
    hit["unit"] = "%"
    hit["volume_at_stake_m3"] = hit_gap.abs()
    hit["tax_at_stake_yuan"] = ((-hit_gap).clip(lower=0) * rate).round(0)
    metered_text = fmt_m3(hit["metered"]) + pd.Series(np.where(hit["gap_filled"], "（含缺报月份按均值估算）", ""), index=hit.index)
    declared_text = pd.Series(np.where(hit["filed"], "申报取水" + fmt_m3(hit["declared"]), "未申报"), index=hit.index)
    diff = pd.Series(
        np.where(
            no_meter[hit.index],
            "无计量取水记录",
            np.where(under, "少申报", "多申报") + fmt_m3(hit_gap.abs()) + "（差异" + fmt_pct(hit["rel"].fillna(1.0) * 100) + "）",
        ),
        index=hit.index,
    )
    tax_part = pd.Series(
        np.where(hit["tax_at_stake_yuan"] > 0, "，涉及税款约" + hit["tax_at_stake_yuan"].map("{:,.0f}".format) + "元", "，疑有未计量取水"),
        index=hit.index,
    )
    hit["message"] = (
        hit["name"] + "（" + hit["uscc"] + "）" + hit["period"] + hit["source"].map(SOURCE_CN) + declared_text
        + "，计量取水" + metered_text + "，" + diff + tax_part + "，建议与税务部门核对。"
    )
    hit["audience"] = "bureau"
    return _finish(hit)


# -- module 6: source prevention (源头管控) -------------------------------------------


def source_prevention(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Projects approved or starting construction recently whose owner holds no valid permit
    (or, for works that dewater a foundation pit, no valid dewatering permit)."""
    as_of = pd.Timestamp(as_of)
    since = as_of - pd.Timedelta(days=rules.source_prevention_days)
    projects = tables["projects"]
    started = projects["construction_start_on"].where(projects["construction_start_on"] < as_of)
    approved = projects["approved_on"].where(projects["approved_on"] < as_of)
    event = started.where(started >= since).fillna(approved.where(approved >= since))
    recent = projects[event.notna()].assign(event_on=event[event.notna()])
    if recent.empty:
        return empty_alerts()
    permits = known_permits(tables, as_of)
    valid = permits[(permits["status"] == "valid") & (permits["valid_to"] >= as_of)]
    holds_any = recent["uscc"].isin(valid["uscc"])
    holds_dewatering = recent["uscc"].isin(valid.loc[valid["purpose"] == "dewatering", "uscc"])
    dewatering = recent["dewatering"].fillna(False).astype(bool)
    need = ~holds_any | (dewatering & ~holds_dewatering)
    hit = recent[need].copy()
    if hit.empty:
        return empty_alerts()
    hit["uscc"] = hit["uscc"].fillna("")
    hit = _with_entity(hit, tables)
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
    return _finish(hit)


# -- all of them ---------------------------------------------------------------------


def run_checks(tables: dict[str, pd.DataFrame], links: pd.DataFrame | None, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Every deterministic check as of ``as_of``; ``links`` None falls back to accounts' own uscc."""
    as_of = pd.Timestamp(as_of)
    parts = [
        quota_warning(tables, links, as_of, rules),
        quota_projection(tables, links, as_of, rules),
        renewal_reminder(tables, as_of, rules),
        expired_permit_use(tables, as_of, rules),
        unpermitted_abstraction(tables, as_of, rules),
        tax_mismatch(tables, as_of, rules),
        source_prevention(tables, as_of, rules),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_alerts()
    return pd.concat(parts, ignore_index=True)


from models.rules_rights import water_rights_candidates  # noqa: E402  (re-export: one import site for callers)

__all__ = [
    "ALERT_COLUMNS",
    "run_checks",
    "quota_warning",
    "quota_projection",
    "renewal_reminder",
    "expired_permit_use",
    "unpermitted_abstraction",
    "tax_mismatch",
    "source_prevention",
    "water_rights_candidates",
    "quota_usage",
    "own_uscc_links",
]
