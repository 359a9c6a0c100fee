"""The deterministic supervision checks of the bureau's six modules, as pure functions.

Each check takes the typed contract tables and an ``as_of`` (first day of a
month) and returns alerts in one shape (``alerts.ALERT_COLUMNS``). Only data known at
as_of is used (``records``): monthly rows with ``month < as_of``, tax quarters that ended
before as_of, permits with ``valid_from < as_of``, projects approved before
as_of. Permit ``status`` is the register's current snapshot (it has no date).
The compliance facts the checks share with the profiles (use outside a permit,
metered volume by quarter, tax coverage) are defined once in ``features.compliance``.

- ``quota``: modules 1/2, quota and plan colours and the run-rate projection
- ``permits``: module 4, renewal reminders, expired or withdrawn permits in use, unpermitted use
- ``tax``: module 3, declared against metered volume per quarter, and quarters a meter sent no reading for
- ``projects``: module 6, source prevention
- ``rights``: module 5, water-rights sellers and buyers
"""

from __future__ import annotations

import pandas as pd

from features.as_of import month_start
from models.rules.alerts import ALERT_COLUMNS, LEVEL_ORDER, alert_ids, empty_alerts
from models.rules.permits import expired_permit_use, renewal_reminder, unpermitted_abstraction
from models.rules.projects import source_prevention
from models.rules.quota import quota_projection, quota_usage, quota_warning
from models.rules.records import own_uscc_links
from models.rules.rights import water_rights_candidates
from models.rules.tax import declared_and_metered, meter_data_missing, tax_mismatch
from models.settings import RuleSettings


def run_checks(tables: dict[str, pd.DataFrame], links: pd.DataFrame | None, as_of, rules: RuleSettings,
               quarantine: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every deterministic check as of ``as_of`` (any day counts as its month's first: data of the months before
    it); ``links`` None falls back to accounts' own uscc; ``quarantine`` (ingest's quarantine rows) tells a
    permit whose register row was rejected from one the register does not hold."""
    as_of = month_start(as_of)
    parts = [
        quota_warning(tables, links, as_of, rules),
        quota_projection(tables, links, as_of, rules),
        renewal_reminder(tables, as_of, rules),
        expired_permit_use(tables, as_of, rules),
        unpermitted_abstraction(tables, as_of, rules, quarantine),
        tax_mismatch(tables, as_of, rules),
        meter_data_missing(tables, as_of, rules),
        source_prevention(tables, as_of, rules),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_alerts()
    return pd.concat(parts, ignore_index=True)


__all__ = [
    "ALERT_COLUMNS",
    "LEVEL_ORDER",
    "alert_ids",
    "run_checks",
    "quota_warning",
    "quota_projection",
    "renewal_reminder",
    "expired_permit_use",
    "unpermitted_abstraction",
    "tax_mismatch",
    "meter_data_missing",
    "declared_and_metered",
    "source_prevention",
    "water_rights_candidates",
    "quota_usage",
    "own_uscc_links",
]
