"""What the checks read from the typed tables: only what is known at as_of.

Monthly rows with ``month < as_of``, tax quarters that ended before as_of, permits with
``valid_from < as_of`` (``features.compliance.known_permits``).
"""

from __future__ import annotations

import pandas as pd

from features.linkage import linked_volumes
from models.settings import RuleSettings


def year_window(as_of: pd.Timestamp) -> tuple[int, pd.Timestamp, int]:
    """The calendar year being supervised (that of the last known day) and months elapsed in it."""
    as_of = pd.Timestamp(as_of)
    year = (as_of - pd.Timedelta(days=1)).year
    start = pd.Timestamp(year=year, month=1, day=1)
    months = (as_of.year - year) * 12 + as_of.month - 1
    return year, start, months


def known_abstraction(tables, as_of) -> pd.DataFrame:
    """Metered monthly abstraction known at as_of, with the permit's holder and source
    (empty where the meter's permit number is not in the register)."""
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
    return linked_volumes(tables["supply"], links, "supply", as_of)


def known_tax(tables, as_of, rules: RuleSettings) -> pd.DataFrame:
    """Tax quarters that ended before as_of, within the enforcement lookback."""
    as_of = pd.Timestamp(as_of)
    tax = tables["tax"].dropna(subset=["uscc", "period_start"])
    ended = tax["period_start"] + pd.DateOffset(months=3) <= as_of
    lookback = tax["period_start"] >= as_of - pd.DateOffset(months=rules.enforcement_lookback_months)
    return tax[ended & lookback]
