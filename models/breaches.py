"""Documented breaches: the case track's work (models.cases), never a reason to rank.

The risk ranking is for what no record shows; an entity whose records already prove a breach gets a case,
and the columns that document it are kept out of the ranking's input (training.backtest.split_snapshot),
so a documented breach alone cannot lift an entity up the list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# snapshot columns that document a breach (use after expiry or on a withdrawn permit, tax declared with no
# permit, a quota overrun, declarations short of the meter): the case track acts on them; the risk ranking
# of hidden violations never reads them, so a documented breach alone cannot lift an entity
DOCUMENTED_BREACH_COLUMNS = (
    "abstraction_after_expiry_m3_12m", "abstraction_withdrawn_permit_m3_12m", "tax_declared_without_permit_m3_4q",
    "permit_quota_used_max_12m", "permit_quota_pace_max_3m", "quota_excess_m3_12m", "tax_undeclared_m3_4q",
    "tax_undeclared_share_4q", "abstraction_no_valid_permit_m3_12m", "abstraction_no_valid_permit_share_12m",
    "abstraction_without_permit_months_12m",
)
TAX_TOLERANCE = 0.10  # declared this far short of the meter (median quarter) is a documented gap


def documented_breach(snapshot: pd.DataFrame) -> pd.Series:
    """True where the snapshot documents a breach the case track handles: metered after the permit's expiry or
    on a withdrawn permit, tax declared for a source with no permit, a permit's 12-month use over its quota,
    or declarations short of the meter by more than TAX_TOLERANCE quarter after quarter."""
    idx = snapshot.index

    def col(name):
        if name not in snapshot.columns:
            return np.zeros(len(idx))
        return np.nan_to_num(pd.to_numeric(snapshot[name], errors="coerce").to_numpy("float64", na_value=np.nan))

    flag = (
        (col("abstraction_after_expiry_m3_12m") > 0)
        | (col("abstraction_withdrawn_permit_m3_12m") > 0)
        | (col("tax_declared_without_permit_m3_4q") > 0)
        | (col("permit_quota_used_max_12m") > 1.0)
        | (col("tax_undeclared_share_4q") > TAX_TOLERANCE)
    )
    return pd.Series(flag, index=idx, name="documented_breach")
