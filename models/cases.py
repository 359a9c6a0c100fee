"""The case track: every documented breach becomes one case, with its evidence and the action it needs.

A breach the records already prove is desk work (a notice, an enforcement file, a tax-quantity
correction, procedure guidance), not a field lead. Cases group the alerts of ``models.rules``
(which stay as they are) per entity and per action, and carry the numbers that prove the breach:

| kind | alerts grouped | one case per | period | action |
|---|---|---|---|---|
| ``expired_permit_in_use`` | ``expired_permit`` | permit | the permit's expiry month (YYYY-MM) | ``enforcement_file`` |
| ``unpermitted_use`` | ``unpermitted`` | entity and year (tax filings), unknown permit number and year (meters), or permit and year (metered before its grant) | YYYY | ``enforcement_file`` |
| ``quota_red`` | ``quota`` red | permit and year (basis permit), or entity and year (basis plan) | YYYY | ``notice`` |
| ``tax_verification`` | ``tax_mismatch`` | taxpayer and quarter (all its taxable sources) | YYYY-Qn | ``tax_quantity_correction`` |
| ``source_prevention`` | ``source_prevention`` | project | approval month (YYYY-MM) | ``procedure_guidance`` |

``case_id`` hashes (kind, uscc, permit_id or project_id, period), so the same breach in a later run
keeps its id (a continuing use after expiry stays one case; a project stays one case from approval
to construction start).

Tax quantity verification (水量核定) follows the water-resource tax rules (水资源税改革试点实施办法:
the water authority verifies the quantity, the tax authority taxes it; where no meter measures
reliably, the quantity is set by the abstraction capacity): for each taxpayer, source and quarter
the verified quantity is
  1. ``meter_data_missing``: the declaration stands, for now, when a meter of the source sent no reading
     in the quarter though it read before and after it, and the meters that did read show no more than
     was declared: the quarter cannot be verified until its readings are in (alert ``meter_data_missing``);
  2. ``meter``: the metered volume when the source's meters reported water in the quarter (a
     skipped month inside a meter's reporting span counts at the meter's quarter mean; a meter silent the
     whole quarter counts for nothing, so the volume is a floor);
  3. ``permit``: else the permitted quantity, the annual quota of the taxable permits of that
     source prorated by the days of the quarter each permit was dated for;
  4. ``plan``: else the year's water-use plan prorated by days;
  5. ``declared``: else the declaration stands.
A meter that reports water but may be stuck or tampered with is not judged here: that is what the
risk ranking sends field officers to find.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from features.as_of import month_start
from features.compliance import dewatering_permitted, known_permits, meter_verifiable, taxed_rows
from models.rules.alerts import SOURCE_CN, fmt_m3, fmt_pct, m3_text, with_entity
from models.rules.permits import use_after_permit
from models.rules.quota import quota_usage
from models.rules.records import known_tax
from models.rules.tax import declared_and_metered, tax_rate
from models.settings import RuleSettings

CASE_COLUMNS = [
    "case_id", "kind", "uscc", "name", "district", "permit_id", "project_id", "period", "evidence",
    "evidence_text", "evidence_text_en", "action", "volume_at_stake_m3", "tax_at_stake_yuan", "verified_m3",
    "alert_ids", "status", "opened_as_of",
]
ACTIONS = {
    "expired_permit_in_use": "enforcement_file",
    "unpermitted_use": "enforcement_file",
    "quota_red": "notice",
    "tax_verification": "tax_quantity_correction",
    "source_prevention": "procedure_guidance",
}
KIND_CN = {
    "expired_permit_in_use": "许可失效仍取水",
    "unpermitted_use": "无证取水",
    "quota_red": "超许可或超计划",
    "tax_verification": "水量核定",
    "source_prevention": "源头管控",
}
KIND_EN = {
    "expired_permit_in_use": "Permit expired or withdrawn, still in use",
    "unpermitted_use": "Unpermitted use shown by records",
    "quota_red": "Quota or plan exceeded",
    "tax_verification": "Tax quantity verification",
    "source_prevention": "Source prevention: no water procedures",
}
ACTION_CN = {
    "notice": "下达通知书",
    "sms": "短信告知",
    "tax_quantity_correction": "水量核定，函告税务部门",
    "enforcement_file": "立案查处",
    "procedure_guidance": "指导办理取水手续",
}
ACTION_EN = {
    "notice": "Send a notice",
    "sms": "Send an SMS",
    "tax_quantity_correction": "Verify the quantity for the tax office",
    "enforcement_file": "Open an enforcement file",
    "procedure_guidance": "Guide through the procedures",
}
VERIFICATION_BASES = ("meter_data_missing", "meter", "permit", "plan", "declared")
_NUMBERS = ("volume_at_stake_m3", "tax_at_stake_yuan", "verified_m3")


def case_ids(frame: pd.DataFrame) -> pd.Series:
    """Stable id of a case: a hash of (kind, uscc, permit_id or project_id, period)."""
    parts = frame[["kind", "uscc", "permit_id", "project_id", "period"]].fillna("").astype("str")
    subject = parts["permit_id"].where(parts["permit_id"] != "", parts["project_id"])
    keys = parts["kind"] + "|" + parts["uscc"] + "|" + subject + "|" + parts["period"]
    return keys.map(lambda k: hashlib.sha1(f"case|{k}".encode("utf-8")).hexdigest()[:16])


def empty_cases() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="str") for c in CASE_COLUMNS})
    for c in _NUMBERS:
        frame[c] = pd.Series(dtype="float64")
    return frame


def build_cases(tables: dict[str, pd.DataFrame], links: pd.DataFrame | None, alerts: pd.DataFrame,
                as_of, rules: RuleSettings) -> pd.DataFrame:
    """Every documented breach among ``alerts`` (``models.rules.run_checks`` at the same as_of) as one
    case per entity and action, with evidence, status ``open`` and ``opened_as_of`` = as_of (its month's first day)."""
    as_of = month_start(as_of)
    parts = [
        expired_permit_cases(tables, alerts, as_of, rules),
        unpermitted_cases(alerts),
        quota_red_cases(tables, links, alerts, as_of, rules),
        tax_verification_cases(tables, alerts, as_of, rules),
        source_prevention_cases(tables, alerts, as_of),
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_cases()
    cases = pd.concat(parts, ignore_index=True)
    cases["action"] = cases["kind"].map(ACTIONS)
    cases["status"] = "open"
    cases["opened_as_of"] = as_of.date().isoformat()
    for c in CASE_COLUMNS:
        if c not in cases.columns:
            cases[c] = np.nan if c in _NUMBERS else ""
    for c in _NUMBERS:
        cases[c] = cases[c].astype("float64")
    for c in set(CASE_COLUMNS) - set(_NUMBERS):
        cases[c] = cases[c].fillna("").astype("str")
    cases["case_id"] = case_ids(cases)
    order = ["kind", "district", "uscc", "permit_id", "project_id", "period"]
    return cases[CASE_COLUMNS].sort_values(order, kind="stable").reset_index(drop=True)


def _plain(v):
    """A JSON-ready value: numbers rounded to 2 decimals (NaN -> null), dates as ISO text."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return round(float(v), 2) if np.isfinite(v) else None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.date().isoformat()
    return None if v is pd.NaT else v


def _evidence_json(records: list[dict]) -> list[str]:
    return [json.dumps(_plain(r), ensure_ascii=False) for r in records]


def _join_ids(ids: pd.Series) -> str:
    return ";".join(sorted(ids))


def _m3_en(values: pd.Series) -> pd.Series:
    """Volumes in the English sentences: whole m³ with thousands separators."""
    return values.astype("float64").round(0).map("{:,.0f} m³".format)


def _alert_ids(alerts: pd.DataFrame, keys: list[str]) -> pd.Series:
    """';'-joined alert ids per group of ``keys`` (ids sorted, so the text is stable)."""
    return alerts.groupby(keys)["alert_id"].agg(_join_ids)


# -- expired or withdrawn permit still in use -------------------------------------------------


def expired_permit_cases(tables, alerts: pd.DataFrame, as_of: pd.Timestamp, rules: RuleSettings) -> pd.DataFrame:
    """One case per permit metered after its expiry or while revoked / cancelled."""
    hits = alerts[alerts["kind"] == "expired_permit"]
    if hits.empty:
        return pd.DataFrame()
    use = use_after_permit(tables, as_of, rules)
    per = use.groupby("permit_id").agg(
        uscc=("uscc", "first"), status=("status", "first"), valid_to=("valid_to", "first"), source=("source", "first"),
        metered_m3=("volume", "sum"), months=("months", "sum"), first_month=("first_month", "min"),
        last_month=("last_month", "max"), after_expiry=("after_expiry", "any"),
    ).reset_index()
    per = per[per["permit_id"].isin(hits["permit_id"])]
    per = with_entity(per, tables)
    per["alert_ids"] = per["permit_id"].map(_alert_ids(hits, ["permit_id"]))
    first, last = per["first_month"].dt.strftime("%Y-%m"), per["last_month"].dt.strftime("%Y-%m")
    expiry = per["valid_to"].dt.strftime("%Y-%m-%d")
    status_cn = per["status"].map({"revoked": "已吊销", "cancelled": "已注销"}).fillna("")
    why_zh = np.where(per["after_expiry"], "已于" + expiry + "到期", "状态为" + status_cn)
    why_en = np.where(per["after_expiry"], "expired on " + expiry, "was " + per["status"])
    vol = fmt_m3(per["metered_m3"])
    months = per["months"].astype("int64").astype("str")
    per["evidence_text"] = (
        "取水许可证" + per["permit_id"] + why_zh + "，" + first + "至" + last + "仍计量取水" + vol + "（" + months
        + "个月）。需立案查处：责令停止取水，限期办理延续或重新申请取水许可。"
    )
    per["evidence_text_en"] = (
        "Permit " + per["permit_id"] + " " + why_en + ", yet " + _m3_en(per["metered_m3"])
        + " was metered in " + months + " months from " + first + " to " + last
        + ". Open an enforcement file: stop the abstraction; renew or reapply for a permit."
    )
    per["evidence"] = _evidence_json([
        {"permit_id": r.permit_id, "permit_status": r.status, "valid_to": r.valid_to, "source": r.source,
         "metered_m3": r.metered_m3, "months": r.months, "first_month": f, "last_month": la,
         "after_expiry": r.after_expiry}
        for r, f, la in zip(per.itertuples(), first, last)
    ])
    per["kind"] = "expired_permit_in_use"
    per["period"] = per["valid_to"].dt.strftime("%Y-%m")
    per["volume_at_stake_m3"] = per["metered_m3"]
    return per


# -- unpermitted use evidenced by records --------------------------------------------------------


def unpermitted_cases(alerts: pd.DataFrame) -> pd.DataFrame:
    """Tax declared for a source no permit covered (per entity and year), and meters on permit numbers
    the register does not hold (per number and year)."""
    hits = alerts[alerts["kind"] == "unpermitted"]
    if hits.empty:
        return pd.DataFrame()
    hits = hits.assign(year=hits["period"].str[:4])
    makers = (("tax", _tax_filing_cases), ("meter", _unknown_meter_cases), ("before_permit", _before_permit_cases))
    parts = [make(hits[hits["basis"] == basis]) for basis, make in makers if (hits["basis"] == basis).any()]
    if not parts:  # a meter on a permit whose register row was quarantined proves no breach: no case
        return pd.DataFrame()
    cases = pd.concat(parts, ignore_index=True)
    cases["kind"] = "unpermitted_use"
    cases["period"] = cases["year"]
    return cases


def _tax_filing_cases(taxed: pd.DataFrame) -> pd.DataFrame:
    """Per entity and year: the quarters and sources it declared abstraction for without a permit."""
    g = taxed.groupby(["uscc", "year"])
    case = g.agg(name=("name", "first"), district=("district", "first"), declared_m3=("volume_at_stake_m3", "sum"),
                 alert_ids=("alert_id", _join_ids)).reset_index()
    case["quarters"] = [sorted(set(part["period"])) for _, part in g]  # groups in the same (sorted) order
    by_source = taxed.groupby(["uscc", "year", "source"])["volume_at_stake_m3"].sum()
    case["evidence"] = _evidence_json([
        {"declared_m3": r.declared_m3, "quarters": r.quarters,
         "by_source_m3": {s: float(v) for s, v in by_source.loc[(r.uscc, r.year)].items()}}
        for r in case.itertuples()
    ])
    case["evidence_text"] = (
        case["quarters"].map("、".join) + "申报取水" + fmt_m3(case["declared_m3"])
        + "并缴纳水资源税，但该期间无对应水源的有效取水许可，属无证取水。需立案查处：责令停止取水，补办取水许可。"
    )
    case["evidence_text_en"] = (
        "Declared " + _m3_en(case["declared_m3"]) + " of abstraction for water-resource tax in "
        + case["quarters"].map(", ".join) + " without a permit for that source. Open an enforcement file: stop "
        "the abstraction; apply for a permit."
    )
    case["permit_id"] = ""
    case["volume_at_stake_m3"] = case["declared_m3"]
    return case


def _unknown_meter_cases(metered: pd.DataFrame) -> pd.DataFrame:
    """Per permit number the register does not hold, and year: what its meters measured."""
    case = metered.groupby(["permit_id", "year"], as_index=False).agg(
        uscc=("uscc", "first"), name=("name", "first"), district=("district", "first"),
        metered_m3=("volume_at_stake_m3", "sum"), alert_ids=("alert_id", _join_ids))
    case["evidence"] = _evidence_json([{"unknown_permit_id": r.permit_id, "metered_m3": r.metered_m3} for r in case.itertuples()])
    case["evidence_text"] = (
        case["year"] + "年计量设施登记在许可证号" + case["permit_id"] + "下计量取水" + fmt_m3(case["metered_m3"])
        + "，但取水许可登记中无此许可证。需立案查处：查明取水单位，责令停止取水。"
    )
    case["evidence_text_en"] = (
        "Meters booked to permit number " + case["permit_id"] + ", which the register does not hold, measured "
        + _m3_en(case["metered_m3"]) + " in " + case["year"]
        + ". Open an enforcement file: identify the abstractor and stop the abstraction."
    )
    case["volume_at_stake_m3"] = case["metered_m3"]
    return case


def _before_permit_cases(early: pd.DataFrame) -> pd.DataFrame:
    """Per permit and year: what its meters measured before the permit was granted (未批先取)."""
    case = early.groupby(["permit_id", "year"], as_index=False).agg(
        uscc=("uscc", "first"), name=("name", "first"), district=("district", "first"),
        metered_m3=("volume_at_stake_m3", "sum"), alert_ids=("alert_id", _join_ids), said=("message", "first"))
    case["evidence"] = _evidence_json([{"before_permit_id": r.permit_id, "metered_m3": r.metered_m3} for r in case.itertuples()])
    case["evidence_text"] = (  # the alert's own words: the grant day and the months before it
        pd.Series([m.split(f"（{u}）", 1)[-1].split("，涉嫌")[0] for m, u in zip(case["said"], case["uscc"])], index=case.index, dtype="str")
        + "。需立案查处：未经批准擅自取水，依法处罚并核定批准前取水量。"
    )
    case["evidence_text_en"] = (
        "Meters on permit " + case["permit_id"] + " measured " + _m3_en(case["metered_m3"]) + " in " + case["year"]
        + " before the permit was granted. Open an enforcement file: abstraction before approval."
    )
    case["volume_at_stake_m3"] = case["metered_m3"]
    return case.drop(columns="said")


# -- quota used up ---------------------------------------------------------------------------


def quota_red_cases(tables, links, alerts: pd.DataFrame, as_of: pd.Timestamp, rules: RuleSettings) -> pd.DataFrame:
    """One case per red quota alert: the permit's quota or the plan used up this year."""
    hits = alerts[(alerts["kind"] == "quota") & (alerts["level"] == "red")]
    if hits.empty:
        return pd.DataFrame()
    usage = quota_usage(tables, links, as_of, rules)
    usage["permit_id"] = usage["permit_id"].fillna("")
    case = hits[["alert_id", "uscc", "name", "district", "permit_id", "basis", "period"]].merge(
        usage[["basis", "uscc", "permit_id", "ytd_m3", "limit_m3", "share", "supply_m3", "abstraction_m3", "months",
               "renewed_from"]],
        on=["basis", "uscc", "permit_id"], how="left",
    )
    renewed_from = case["renewed_from"].fillna("")
    replaced = pd.Series(np.where(renewed_from != "", "（含延续前许可证" + renewed_from + "）", ""), index=case.index)
    case["excess_m3"] = (case["ytd_m3"] - case["limit_m3"]).clip(lower=0)
    span = case["period"] + "年1-" + case["months"].astype("int64").astype("str") + "月"
    pct = fmt_pct(case["share"] * 100)
    is_permit = case["basis"] == "permit"
    case["evidence_text"] = np.where(
        is_permit,
        "取水许可证" + case["permit_id"] + "：" + span + "累计取水" + fmt_m3(case["ytd_m3"]) + replaced + "，达年度许可水量" + fmt_m3(case["limit_m3"])
        + "的" + pct + "，超许可取水" + fmt_m3(case["excess_m3"]) + "。需下达整改通知书：责令按许可水量取水，超许可部分依法处理。",
        span + "累计用水" + fmt_m3(case["ytd_m3"]) + "（自来水" + fmt_m3(case["supply_m3"]) + "、自备水" + fmt_m3(case["abstraction_m3"])
        + "），达年度计划用水量" + fmt_m3(case["limit_m3"]) + "的" + pct + "，超计划" + fmt_m3(case["excess_m3"])
        + "。需下达超计划用水累进加价通知书。",
    )
    used = case["ytd_m3"].round(0).map("{:,.0f}".format)
    limit = case["limit_m3"].round(0).map("{:,.0f}".format)
    case["evidence_text_en"] = np.where(
        is_permit,
        "Permit " + case["permit_id"] + ": " + used + " m³ abstracted in " + case["period"] + " up to month "
        + case["months"].astype("int64").astype("str") + ", " + pct + " of the annual quota of " + limit
        + " m³. Send a notice to keep within the permit.",
        used + " m³ used in " + case["period"] + " up to month " + case["months"].astype("int64").astype("str") + ", " + pct
        + " of the annual water-use plan of " + limit + " m³. Send the notice of the progressive surcharge.",
    )
    case["evidence"] = _evidence_json([
        {"basis": r.basis, "used_m3": r.ytd_m3, "limit_m3": r.limit_m3, "ratio": r.share, "excess_m3": r.excess_m3,
         "months": r.months, **({"supply_m3": r.supply_m3, "abstraction_m3": r.abstraction_m3} if r.basis == "plan" else {})}
        for r in case.itertuples()
    ])
    case["alert_ids"] = case["alert_id"]
    case["kind"] = "quota_red"
    case["volume_at_stake_m3"] = case["excess_m3"]
    return case


# -- tax quantity verification ---------------------------------------------------------------


def verified_quantities(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Per (uscc, source, quarter) the tax check compares: declared, metered, permitted and planned m³,
    the verified quantity and its basis (meter, permit, plan or declared; see the module's doc)."""
    rows = declared_and_metered(tables, as_of, rules)
    if rows.empty:
        return rows.assign(permitted=pd.Series(dtype="float64"), planned=pd.Series(dtype="float64"),
                           verified=pd.Series(dtype="float64"), basis=pd.Series(dtype="str"))
    q_start = pd.to_datetime(rows["period_start"])
    q_end = q_start + pd.DateOffset(months=3)
    year = q_start.dt.year
    year_days = (pd.to_datetime(dict(year=year + 1, month=1, day=1)) - pd.to_datetime(dict(year=year, month=1, day=1))).dt.days
    permits = taxed_rows(known_permits(tables["permits"], pd.Timestamp(as_of)))
    cover = pd.DataFrame({"row": rows.index, "uscc": rows["uscc"], "source": rows["source"], "q_start": q_start,
                          "q_end": q_end, "year_days": year_days}).merge(
        permits[["uscc", "source", "annual_quota_m3", "valid_from", "valid_to"]], on=["uscc", "source"])
    start = cover[["q_start", "valid_from"]].max(axis=1)
    stop = pd.concat([cover["q_end"], cover["valid_to"] + pd.Timedelta(days=1)], axis=1).min(axis=1)
    days = (stop - start).dt.days.clip(lower=0)
    cover["permitted"] = cover["annual_quota_m3"].fillna(0.0) * days / cover["year_days"]
    permitted = cover.groupby("row")["permitted"].sum().reindex(rows.index).fillna(0.0)
    plans = tables["plans"].dropna(subset=["uscc", "year"]).groupby(["uscc", "year"])["planned_m3"].sum()
    planned = pd.Series(plans.reindex(pd.MultiIndex.from_arrays([rows["uscc"], year.astype("int64")])).to_numpy(),
                        index=rows.index).fillna(0.0) * (q_end - q_start).dt.days / year_days
    unread = ~meter_verifiable(rows["declared"], rows["metered"], rows["silent_meters"])
    basis = np.select([unread, rows["metered"] > 0, permitted > 0, planned > 0],
                      ["meter_data_missing", "meter", "permit", "plan"], default="declared")
    verified = np.select([basis == "meter", basis == "permit", basis == "plan"],
                         [rows["metered"], permitted, planned], default=rows["declared"])
    return rows.assign(permitted=permitted, planned=planned, verified=verified, basis=basis)


def tax_verification_cases(tables, alerts: pd.DataFrame, as_of: pd.Timestamp, rules: RuleSettings) -> pd.DataFrame:
    """One case per taxpayer and quarter with a tax mismatch: the verified quantity of each taxable source
    for the tax department, and the tax the declaration left unpaid."""
    hits = alerts[alerts["kind"] == "tax_mismatch"]
    if hits.empty:
        return pd.DataFrame()
    rows = verified_quantities(tables, as_of, rules)
    rows = rows.merge(hits[["uscc", "period"]].drop_duplicates(), on=["uscc", "period"])
    rows["rate"] = tax_rate(rows, known_tax(tables, as_of, rules), rules)
    rows["correction"] = rows["verified"] - rows["declared"]
    rows["unpaid"] = (rows["correction"].clip(lower=0) * rows["rate"]).round(0)
    g = rows.groupby(["uscc", "period"])
    case = g.agg(declared_m3=("declared", "sum"), metered_m3=("metered", "sum"), verified_m3=("verified", "sum"),
                 tax_at_stake_yuan=("unpaid", "sum")).reset_index()
    case["volume_at_stake_m3"] = g["correction"].agg(lambda c: c.abs().sum()).to_numpy()
    case["alert_ids"] = _alert_ids(hits, ["uscc", "period"]).reindex(pd.MultiIndex.from_frame(case[["uscc", "period"]])).to_numpy()
    case = with_entity(case, tables)
    per_source: dict[tuple[str, str], list[dict]] = {}
    for rec in rows.to_dict("records"):
        per_source.setdefault((rec["uscc"], rec["period"]), []).append(rec)
    texts_zh, texts_en, evidence = [], [], []
    for r in case.to_dict("records"):  # one sentence per case: a few hundred cases, not data rows
        part = per_source[(r["uscc"], r["period"])]
        evidence.append({"sources": [_source_evidence(s) for s in part], "declared_m3": r["declared_m3"],
                         "verified_m3": r["verified_m3"], "tax_at_stake_yuan": r["tax_at_stake_yuan"]})
        unpaid = r["tax_at_stake_yuan"]
        texts_zh.append(r["period"] + "水量核定：" + "；".join(_source_text_zh(s) for s in part)
                        + f"。核定水量合计{m3_text(r['verified_m3'])}，申报{m3_text(r['declared_m3'])}"
                        + (f"，少缴税款约{unpaid:,.0f}元" if unpaid > 0 else "") + "。需将核定水量函告税务部门，更正申报。")
        texts_en.append(f"Quantity verification {r['period']}: " + "; ".join(_source_text_en(s) for s in part)
                        + f". Verified {r['verified_m3']:,.0f} m³ against {r['declared_m3']:,.0f} m³ declared"
                        + (f", about {unpaid:,.0f} yuan of tax unpaid" if unpaid > 0 else "")
                        + ". Send the verified quantity to the tax office for a corrected declaration.")
    case["evidence"] = _evidence_json(evidence)
    case["evidence_text"], case["evidence_text_en"] = texts_zh, texts_en
    case["kind"] = "tax_verification"
    case["permit_id"] = ""
    return case


_BASIS_CN = {"meter_data_missing": "计量数据缺失（水表本季度无读数），暂按申报", "meter": "按计量",
             "permit": "无有效计量，按许可水量", "plan": "无计量无许可，按计划用水量", "declared": "无核定依据，按申报"}
_BASIS_EN = {"meter_data_missing": "a meter sent no reading this quarter: as declared until the readings are in",
             "meter": "metered", "permit": "no working meter, by the permitted quantity",
             "plan": "no meter or permit, by the water-use plan", "declared": "nothing to verify against, as declared"}


def _source_evidence(s: dict) -> dict:
    return {"source": s["source"], "declared_m3": s["declared"], "metered_m3": s["metered"], "permitted_m3": s["permitted"],
            "verified_m3": s["verified"], "basis": s["basis"], "gap_filled": bool(s["gap_filled"]), "filed": bool(s["filed"]),
            "silent_meters": int(s["silent_meters"])}


def _source_text_zh(s: dict) -> str:
    declared = f"申报{m3_text(s['declared'])}" if s["filed"] else "未申报"
    filled = "（含缺报月份按均值估算）" if s["gap_filled"] and s["basis"] == "meter" else ""
    filled += "（另有水表本季度无读数，未计入）" if s["silent_meters"] else ""
    return (f"{SOURCE_CN.get(s['source'], s['source'])}{declared}，计量{m3_text(s['metered'])}{filled}，"
            f"许可{m3_text(s['permitted'])}，{_BASIS_CN[s['basis']]}核定{m3_text(s['verified'])}")


def _source_text_en(s: dict) -> str:
    declared = f"declared {s['declared']:,.0f} m³" if s["filed"] else "not declared"
    return (f"{s['source']}: {declared}, metered {s['metered']:,.0f} m³, permitted {s['permitted']:,.0f} m³, verified "
            f"{s['verified']:,.0f} m³ ({_BASIS_EN[s['basis']]})")


# -- source prevention -----------------------------------------------------------------------


def source_prevention_cases(tables, alerts: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One case per project approved or started without the water procedures its owner needs."""
    hits = alerts[alerts["kind"] == "source_prevention"]
    if hits.empty:
        return pd.DataFrame()
    projects = tables["projects"].drop_duplicates("project_id").set_index("project_id")
    case = hits[["alert_id", "uscc", "name", "district", "project_id", "period", "message"]].copy()
    p = projects.reindex(case["project_id"])
    started = p["construction_start_on"].where(p["construction_start_on"] < as_of)
    dewatering = p["dewatering"].fillna(False).astype(bool).to_numpy()
    pit_to_permit = dewatering & ~dewatering_permitted(p, known_permits(tables["permits"], as_of), as_of).to_numpy()
    expected = p["expected_annual_water_m3"].astype("float64").to_numpy()
    name = p["project_name"].fillna("").to_numpy()
    stage_zh = np.where(started.notna(), "已开工", "已立项")
    stage_en = np.where(started.notna(), "started construction on " + started.dt.strftime("%Y-%m-%d").fillna(""),
                        "was approved on " + p["approved_on"].dt.strftime("%Y-%m-%d").fillna(""))
    need_zh = np.where(pit_to_permit, "基坑降水须办理疏干排水取水许可", "需取用水的须办理取水许可、申报计划用水")
    need_en = np.where(pit_to_permit, "foundation-pit dewatering needs a dewatering permit",
                       "any abstraction needs a permit and a water-use plan")
    case["evidence_text"] = ("建设项目" + name + stage_zh + "，建设单位无相应有效取水许可；" + need_zh
                             + "。需指导办理取水手续，落实节水“三同时”。")
    case["evidence_text_en"] = ("Project " + case["project_id"] + " " + stage_en + " while its owner holds no matching permit; "
                                + need_en + ". Guide the owner through the water procedures.")
    case["evidence"] = _evidence_json([
        {"project_name": n, "approved_on": a, "construction_start_on": s if pd.notna(s) else None, "dewatering": bool(d),
         "expected_annual_water_m3": e}
        for n, a, s, d, e in zip(name, p["approved_on"], started, dewatering, expected)
    ])
    case["kind"] = "source_prevention"
    case["period"] = p["approved_on"].dt.strftime("%Y-%m").fillna(case["period"].str[:7]).to_numpy()
    case["volume_at_stake_m3"] = expected
    case["alert_ids"] = case["alert_id"]
    return case.drop(columns=["message"])
