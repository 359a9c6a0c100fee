"""Module 3: the water-resource tax cross-check -- quarterly declared volume against metered abstraction."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.compliance import (
    declared_vs_metered,
    known_permits,
    metered_by_quarter,
    quarter_label,
    quarter_number,
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
    filed), filed, metered (m³, gap-filled), gap_filled. Only (uscc, source) pairs holding a taxable
    (non-agricultural) permit of that source are compared, on the meters of those permits:
    irrigation within quota is exempt, and declarations with no permit at all are ``unpermitted``.
    """
    as_of = pd.Timestamp(as_of)
    tax = known_tax(tables, as_of, rules)
    taxable = taxed_rows(known_permits(tables["permits"], as_of))
    metered = known_abstraction(tables, as_of).dropna(subset=["uscc"])
    metered = metered[metered["permit_id"].isin(taxable["permit_id"])]
    if tax.empty or metered.empty:
        return pd.DataFrame(columns=["uscc", "source", "quarter", "period", "period_start", "declared", "tax_yuan",
                                     "filed", "metered", "gap_filled"])
    first_metered = tables["abstraction"]["month"].min()
    m = metered_by_quarter(metered)[["uscc", "source", "quarter", "metered_m3", "gap_filled"]]
    d = tax.assign(quarter=quarter_number(tax["period_start"]))
    d = d.groupby(["uscc", "source", "quarter"], as_index=False).agg(
        declared_m3=("declared_m3", "sum"), tax_yuan=("tax_yuan", "sum")
    )
    d["filed"] = True
    both = declared_vs_metered(d, m, taxable_holders(taxable))
    both["filed"] = both["filed"].fillna(False).astype(bool)
    both["gap_filled"] = both["gap_filled"].fillna(False).astype(bool)
    both.insert(3, "period", quarter_label(both["quarter"]))
    both.insert(4, "period_start", pd.PeriodIndex(both["period"], freq="Q").start_time)
    both = both[
        both["period"].isin(set(tax["period"]))
        & (both["period_start"] >= first_metered)
        & (both["period_start"] + pd.DateOffset(months=3) <= as_of)
    ]
    both = both.rename(columns={"declared_m3": "declared", "metered_m3": "metered"})
    return both[(both["declared"] > 0) | (both["metered"] > 0)].reset_index(drop=True)


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
    (``declared_and_metered`` says which pairs and quarters are compared)."""
    as_of = pd.Timestamp(as_of)
    both = declared_and_metered(tables, as_of, rules)
    if both.empty:
        return empty_alerts()
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
