"""Module 3: the water-resource tax cross-check -- quarterly declared volume against metered abstraction.

A quarter in which a meter that read before and after it sent no reading at all (``silent_meter_quarters``) is
a hole in the meter data, not a quarter metered at 0 m³: it raises ``meter_data_missing`` (yellow: get the
readings or verify the quantity on site), never a ``tax_mismatch`` from a fake 0. A meter that stopped for good
(no reading after the quarter) or a holder with no meter at all still raises ``tax_mismatch``: water declared
with nothing measuring it is what the tax check exists to flag (``tax_mismatch``'s doc)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.compliance import (
    declared_vs_metered,
    known_permits,
    meter_verifiable,
    metered_by_quarter,
    quarter_label,
    quarter_number,
    silent_meter_quarters,
    taxable_holders,
    taxed_rows,
)
from models.rules.alerts import SOURCE_CN, empty_alerts, finish_alerts, fmt_m3, fmt_pct, with_entity
from models.rules.records import known_abstraction, known_tax
from models.rules.memo import shared
from models.settings import RuleSettings


@shared
def declared_and_metered(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Declared beside metered volume per (uscc, source, quarter) for taxable holders, over the quarters
    the tax data and the meters both cover (ended before as_of, within the lookback).

    Columns uscc, source, quarter, period, period_start, declared (m³), tax_yuan (NaN when not
    filed), filed, metered (m³, gap-filled), gap_filled, silent_meters (meters of the pair with no reading
    in the quarter between readings before and after it: ``metered`` leaves them out). Only (uscc, source)
    pairs holding a taxable (non-agricultural) permit of that source are compared, on the meters of those
    permits: irrigation within quota is exempt, and declarations with no permit at all are ``unpermitted``.
    """
    as_of = pd.Timestamp(as_of)
    tax = known_tax(tables, as_of, rules)
    taxable = taxed_rows(known_permits(tables["permits"], as_of))
    metered = _taxed_metering(tables, as_of)
    if tax.empty or metered.empty:
        return pd.DataFrame(columns=["uscc", "source", "quarter", "period", "period_start", "declared", "tax_yuan",
                                     "filed", "metered", "gap_filled", "silent_meters"])
    first_metered = tables["abstraction"]["month"].min()
    m = metered_by_quarter(metered)[["uscc", "source", "quarter", "metered_m3", "gap_filled", "silent_meters"]]
    d = tax.assign(quarter=quarter_number(tax["period_start"]))
    d = d.groupby(["uscc", "source", "quarter"], as_index=False).agg(
        declared_m3=("declared_m3", "sum"), tax_yuan=("tax_yuan", "sum")
    )
    d["filed"] = True
    both = declared_vs_metered(d, m, taxable_holders(taxable))
    both["filed"] = both["filed"].fillna(False).astype(bool)
    both["gap_filled"] = both["gap_filled"].fillna(False).astype(bool)
    both["silent_meters"] = both["silent_meters"].fillna(0).astype("int64")
    both.insert(3, "period", quarter_label(both["quarter"]))
    both.insert(4, "period_start", pd.PeriodIndex(both["period"], freq="Q").start_time)
    both = both[
        both["period"].isin(set(tax["period"]))
        & (both["period_start"] >= first_metered)
        & (both["period_start"] + pd.DateOffset(months=3) <= as_of)
    ]
    both = both.rename(columns={"declared_m3": "declared", "metered_m3": "metered"})
    return both[(both["declared"] > 0) | (both["metered"] > 0)].reset_index(drop=True)


def _taxed_metering(tables, as_of: pd.Timestamp) -> pd.DataFrame:
    """Meter rows known at as_of on the taxable permits of their holders (the meters the tax check reads)."""
    taxable = taxed_rows(known_permits(tables["permits"], as_of))
    metered = known_abstraction(tables, as_of).dropna(subset=["uscc"])
    return metered[metered["permit_id"].isin(taxable["permit_id"])]


def tax_rate(rows: pd.DataFrame, tax: pd.DataFrame, rules: RuleSettings) -> pd.Series:
    """Yuan per m³ for each (uscc, source, declared, tax_yuan) row: the declaration's own rate, else the
    entity's usual rate for the source in ``tax``, else the statutory default."""
    rates_all = tax["tax_yuan"] / tax["declared_m3"].where(tax["declared_m3"] > 0)
    usual = rates_all.groupby([tax["uscc"], tax["source"]]).median()
    own_rate = rows["tax_yuan"] / rows["declared"].where(rows["declared"] > 0)
    usual_rate = pd.Series(usual.reindex(pd.MultiIndex.from_frame(rows[["uscc", "source"]])).to_numpy(), index=rows.index)
    default = rows["source"].map({"groundwater": rules.tax_rate_groundwater_yuan, "surface": rules.tax_rate_surface_yuan})
    return own_rate.where(own_rate > 0).fillna(usual_rate).fillna(default).astype("float64")


def tax_mismatch(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Quarterly declared volume vs metered abstraction (by uscc and source) beyond the tolerance
    (``declared_and_metered`` says which pairs and quarters are compared).

    Declared water with no metered volume is red: no meter at all, or one that stopped for good (no reading
    after the quarter), means water nothing measured, and the case verifies it by the permit. A quarter with a
    meter silent between readings (``silent_meters``) is left to ``meter_data_missing``, unless the meters that
    did read already show more water than declared: an under-declaration the missing readings can only enlarge."""
    as_of = pd.Timestamp(as_of)
    both = declared_and_metered(tables, as_of, rules)
    if both.empty:
        return empty_alerts()
    gap = both["declared"] - both["metered"]
    rel = gap.abs() / both["metered"].where(both["metered"] > 0)
    eps = 1e-9
    no_meter = both["metered"] <= 0
    comparable = meter_verifiable(both["declared"], both["metered"], both["silent_meters"])
    both["rel"] = rel
    both["level"] = np.select(
        [comparable & (no_meter | (rel > rules.tax_red_share + eps)), comparable & (rel > rules.tax_tolerance + eps)],
        ["red", "orange"], default=""
    )
    hit = both[both["level"] != ""].copy()
    if hit.empty:
        return empty_alerts()

    rate = tax_rate(hit, known_tax(tables, as_of, rules), rules)

    hit_gap = hit["declared"] - hit["metered"]
    hit = with_entity(hit, tables)
    hit["kind"] = "tax_mismatch"
    hit["basis"] = "tax"
    hit["permit_id"] = ""
    hit["value"] = (hit["rel"].fillna(1.0) * 100).round(1)
    hit["threshold"] = np.where(hit["level"] == "red", rules.tax_red_share, rules.tax_tolerance) * 100
    hit["unit"] = "%"
    hit["volume_at_stake_m3"] = hit_gap.abs()
    hit["tax_at_stake_yuan"] = ((-hit_gap).clip(lower=0) * rate).round(0)
    hit["message"] = _mismatch_message(hit, hit_gap)
    hit["audience"] = "bureau"
    return finish_alerts(hit)


def _mismatch_message(hit: pd.DataFrame, gap: pd.Series) -> pd.Series:
    """The bureau's sentence: declared, metered (gap-filled months said so), the difference, the tax."""
    metered_text = fmt_m3(hit["metered"]) + pd.Series(np.where(hit["gap_filled"], "（含缺报月份按均值估算）", ""), index=hit.index)
    metered_text += pd.Series(np.where(hit["silent_meters"] > 0, "（另有水表本季度无读数，未计入）", ""), index=hit.index)
    declared_text = pd.Series(np.where(hit["filed"], "申报取水" + fmt_m3(hit["declared"]), "未申报"), index=hit.index)
    diff = pd.Series(
        np.where(
            hit["metered"] <= 0,
            "无计量取水记录",
            np.where(gap < 0, "少申报", "多申报") + fmt_m3(gap.abs()) + "（差异" + fmt_pct(hit["rel"].fillna(1.0) * 100) + "）",
        ),
        index=hit.index,
    )
    tax_part = pd.Series(
        np.where(hit["tax_at_stake_yuan"] > 0, "，涉及税款约" + hit["tax_at_stake_yuan"].map("{:,.0f}".format) + "元", "，疑有未计量取水"),
        index=hit.index,
    )
    return (
        hit["name"] + "（" + hit["uscc"] + "）" + hit["period"] + hit["source"].map(SOURCE_CN) + declared_text
        + "，计量取水" + metered_text + "，" + diff + tax_part + "，建议与税务部门核对。"
    )


def meter_data_missing(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """A taxable holder's declared (or metered) quarter in which a meter of that source sent no reading at all
    while it read before and after: the bureau cannot check the declaration against the meter until it has the
    readings or has verified the quantity on site. Yellow, for the bureau; no volume or tax at stake (nothing
    is shown to be missing but data), and no case."""
    as_of = pd.Timestamp(as_of)
    both = declared_and_metered(tables, as_of, rules)
    hit = both[both["silent_meters"] > 0].copy() if not both.empty else both
    if hit.empty:
        return empty_alerts()
    silent = silent_meter_quarters(_taxed_metering(tables, as_of))
    names = silent.groupby(["uscc", "source", "quarter"])["meter_id"].agg(lambda m: "、".join(sorted(set(m))))
    hit["meters"] = names.reindex(pd.MultiIndex.from_frame(hit[["uscc", "source", "quarter"]])).fillna("").to_numpy()
    hit = with_entity(hit, tables)
    hit["kind"] = "meter_data_missing"
    hit["level"] = "yellow"
    hit["basis"] = "tax"
    hit["permit_id"] = ""
    hit["value"] = hit["declared"]
    hit["threshold"] = np.nan
    hit["unit"] = "m³"
    hit["volume_at_stake_m3"] = np.nan
    hit["tax_at_stake_yuan"] = np.nan
    declared = pd.Series(np.where(hit["filed"], "申报取水" + fmt_m3(hit["declared"]), "未申报"), index=hit.index)
    others = pd.Series(np.where(hit["metered"] > 0, "，其余水表计量取水" + fmt_m3(hit["metered"]), ""), index=hit.index)
    hit["message"] = (
        hit["name"] + "（" + hit["uscc"] + "）" + hit["period"] + hit["source"].map(SOURCE_CN) + declared
        + "；取水计量设施" + hit["meters"] + "本季度无任何读数（此前此后均有读数，疑为数据中断或未上传）" + others
        + "，无法按计量核对申报水量，不按申报不符处理。请调取该季度计量读数，或现场核定取水量。"
    )
    hit["audience"] = "bureau"
    return finish_alerts(hit)
