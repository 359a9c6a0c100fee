"""The whole city: the stages in order, and what a generated city holds."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contract import TABLES
from synth import accounts, billing, inspections, permits, projects, registry, tax, violations, water_use
from synth.config import SynthConfig
from synth.state import CityState
from synth.writing import break_rows


@dataclass
class City:
    """A generated city: the drop's tables plus the generator's own knowledge (evaluation only)."""

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    link_truth: pd.DataFrame
    park_members: pd.DataFrame  # source, account_id, uscc: who is behind each shared account
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["table", "row_number", "column"]))
    internal: CityState | None = None  # true volumes, owners, lines (evaluation and tests only)


def build_city(config: SynthConfig) -> City:
    """Generate the whole city in memory (tests use this to see the generator's internal state)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        return _build(config)


def _build(config: SynthConfig) -> City:
    g = CityState(config)
    registry.entities(g)
    water_use.water_use(g)
    permits.permit_lines(g)
    violations.plan_violations(g)
    water_use.volumes(g)
    projects.projects(g)
    accounts.accounts(g)
    billing.billing(g)
    permits.permit_tables(g)
    tax.tax(g)
    tax.plans(g)
    inspections.inspections(g)
    truth, link_truth, members = inspections.truth(g)
    tables = {name: g.tables[name][list(TABLES[name].column_names)] for name in TABLES}
    city = City(tables=tables, truth=truth, link_truth=link_truth, park_members=members)
    if config.malformed_rows:
        city.tables, city.malformed = break_rows(
            city.tables, config.malformed_rows, np.random.default_rng([config.seed, 99])
        )
    city.internal = g
    return city
