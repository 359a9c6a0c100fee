"""Module 5: water-rights market supervision (取水权交易) -- who could sell, who needs to buy.

Sellers are holders who left a steady surplus: below ``rights_surplus_share`` of
the prorated monthly quota in every one of the last ``rights_surplus_months``
months (with meter data every month: no data is not evidence of surplus).
Buyers are users over their quota or plan this year. Matching stays inside one
source and one district and is greedy by volume, which the cumulative-interval
overlap below computes exactly without a Python loop over candidates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.as_of import month_start
from features.compliance import in_force, known_permits
from models.rules.quota import quota_usage
from models.settings import RuleSettings

MATCH_COLUMNS = [
    "seller_uscc",
    "seller_name",
    "buyer_uscc",
    "buyer_name",
    "source",
    "district",
    "surplus_m3",
    "shortfall_m3",
    "volume_m3",
]


def rights_sellers(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """(uscc, source) with surplus_m3 = annual quota minus the last 12 months' abstraction."""
    as_of = pd.Timestamp(as_of)
    n = rules.rights_surplus_months
    start = as_of - pd.DateOffset(months=n)
    permits = known_permits(tables["permits"], as_of)
    permits = permits[
        (permits["status"] == "valid") & (permits["valid_from"] <= start) & (permits["valid_to"] >= as_of) & (permits["annual_quota_m3"] > 0)
    ]
    ab = tables["abstraction"]
    ab = ab[(ab["month"] >= start) & (ab["month"] < as_of) & ab["permit_id"].isin(permits["permit_id"])]
    monthly = ab.groupby(["permit_id", "month"], as_index=False)["volume_m3"].sum()
    quota = permits.set_index("permit_id")["annual_quota_m3"]
    monthly["share"] = monthly["volume_m3"] / (monthly["permit_id"].map(quota) / 12)
    per = monthly.groupby("permit_id").agg(months=("month", "nunique"), worst=("share", "max"))
    last12 = monthly[monthly["month"] >= as_of - pd.DateOffset(months=12)].groupby("permit_id")["volume_m3"].sum()
    steady = per[(per["months"] >= n) & (per["worst"] < rules.rights_surplus_share)].index
    sel = permits[permits["permit_id"].isin(steady)]
    sel = sel.assign(surplus=sel["annual_quota_m3"] - sel["permit_id"].map(last12).astype("float64").fillna(0.0))
    return sel.groupby(["uscc", "source"], as_index=False)["surplus"].sum().rename(columns={"surplus": "surplus_m3"})


def rights_buyers(tables, links, as_of, rules: RuleSettings) -> pd.DataFrame:
    """(uscc, source) over quota or plan: shortfall = max(YTD, run-rate projection) minus the limit."""
    usage = quota_usage(tables, links, as_of, rules)
    over = usage[usage["share"] >= rules.quota_red - 1e-9].copy()
    over["shortfall_m3"] = np.maximum(over["ytd_m3"], over["projected_m3"]) - over["limit_m3"]
    permits = known_permits(tables["permits"], as_of)
    current = permits[in_force(permits, pd.Timestamp(as_of))]
    main_source = current.sort_values(["annual_quota_m3", "permit_id"], ascending=[False, True]).drop_duplicates("uscc").set_index("uscc")["source"]
    plan = over["basis"] == "plan"
    over.loc[plan, "source"] = over.loc[plan, "uscc"].map(main_source)
    over = over[over["source"].notna() & (over["source"] != "")]
    by_permit = over[~plan[over.index]].groupby(["uscc", "source"])["shortfall_m3"].sum()
    by_plan = over[plan[over.index]].groupby(["uscc", "source"])["shortfall_m3"].max()
    both = pd.concat([by_permit, by_plan], axis=1).max(axis=1)
    return both.rename("shortfall_m3").reset_index()


def greedy_match(sellers: pd.DataFrame, buyers: pd.DataFrame) -> pd.DataFrame:
    """Largest seller to largest buyer, in order, within one market: overlaps of cumulative volumes."""
    s = sellers.sort_values(["surplus_m3", "uscc"], ascending=[False, True]).reset_index(drop=True)
    b = buyers.sort_values(["shortfall_m3", "uscc"], ascending=[False, True]).reset_index(drop=True)
    s_hi = s["surplus_m3"].cumsum().to_numpy()
    b_hi = b["shortfall_m3"].cumsum().to_numpy()
    total = min(s_hi[-1], b_hi[-1]) if len(s) and len(b) else 0.0
    cuts = np.unique(np.concatenate([[0.0], s_hi, b_hi]))
    cuts = cuts[cuts <= total]
    if len(cuts) < 2:
        return pd.DataFrame(columns=["seller", "buyer", "volume_m3"])
    lo, hi = cuts[:-1], cuts[1:]
    mid = (lo + hi) / 2
    si = np.searchsorted(s_hi, mid)
    bi = np.searchsorted(b_hi, mid)
    pieces = pd.DataFrame({"seller": si, "buyer": bi, "volume_m3": hi - lo})
    pieces = pieces.groupby(["seller", "buyer"], as_index=False, sort=True)["volume_m3"].sum()
    pieces["seller_uscc"] = s["uscc"].to_numpy()[pieces["seller"]]
    pieces["surplus_m3"] = s["surplus_m3"].to_numpy()[pieces["seller"]]
    pieces["buyer_uscc"] = b["uscc"].to_numpy()[pieces["buyer"]]
    pieces["shortfall_m3"] = b["shortfall_m3"].to_numpy()[pieces["buyer"]]
    return pieces


def rights_market(tables, links, as_of, rules: RuleSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sellers (surplus_m3) and buyers (shortfall_m3) of the water-rights market, each with the
    entity's district and name. Entity by entity, so it may be computed over any partition of the
    entities and the parts concatenated before ``match_market``."""
    as_of = month_start(as_of)
    ent = tables["entities"].drop_duplicates("uscc").set_index("uscc")
    sellers = rights_sellers(tables, as_of, rules)
    buyers = rights_buyers(tables, links, as_of, rules)
    also_buying = pd.MultiIndex.from_frame(sellers[["uscc", "source"]]).isin(pd.MultiIndex.from_frame(buyers[["uscc", "source"]]))
    sellers = sellers[~also_buying]
    sellers = sellers.assign(district=sellers["uscc"].map(ent["district"])).dropna(subset=["district"])
    buyers = buyers.assign(district=buyers["uscc"].map(ent["district"])).dropna(subset=["district"])
    sellers = sellers[sellers["surplus_m3"] > 0]
    buyers = buyers[buyers["shortfall_m3"] > 0]
    sellers = sellers.assign(name=sellers["uscc"].map(ent["name"]).fillna(""))
    buyers = buyers.assign(name=buyers["uscc"].map(ent["name"]).fillna(""))
    return sellers.reset_index(drop=True), buyers.reset_index(drop=True)


def match_market(sellers: pd.DataFrame, buyers: pd.DataFrame) -> pd.DataFrame:
    """Seller-buyer pairs within the same source and district (``rights_market``'s sides)."""
    sellers = sellers.sort_values(["uscc", "source"], kind="stable")
    buyers = buyers.sort_values(["uscc", "source"], kind="stable")
    out = []
    markets = sorted(set(zip(sellers["source"], sellers["district"])) & set(zip(buyers["source"], buyers["district"])))
    for source, district in markets:  # one iteration per (source, district) market, not per row
        s = sellers[(sellers["source"] == source) & (sellers["district"] == district)]
        b = buyers[(buyers["source"] == source) & (buyers["district"] == district)]
        m = greedy_match(s, b)
        if len(m):
            out.append(m.assign(source=source, district=district))
    if not out:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith("_m3") else "str") for c in MATCH_COLUMNS})
    matches = pd.concat(out, ignore_index=True)
    names = pd.concat([sellers[["uscc", "name"]], buyers[["uscc", "name"]]]).drop_duplicates("uscc").set_index("uscc")["name"]
    matches["seller_name"] = matches["seller_uscc"].map(names).fillna("")
    matches["buyer_name"] = matches["buyer_uscc"].map(names).fillna("")
    for c in ("surplus_m3", "shortfall_m3", "volume_m3"):
        matches[c] = matches[c].astype("float64").round(1)
    return matches[MATCH_COLUMNS].reset_index(drop=True)


def water_rights_candidates(tables, links, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Seller-buyer pairs within the same source and district, with the volume to trade."""
    return match_market(*rights_market(tables, links, as_of, rules))
