"""The generator's state during one run: the calendar, one random stream per stage, and the tables made so far."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth.config import SynthConfig

# one independent random stream per stage, so that changing one stage leaves the others' draws alone
STREAMS = (
    "registry",
    "water_use",
    "permits",
    "violations",
    "volumes",
    "accounts",
    "projects",
    "billing",
    "permit_tables",
    "tax",
    "plans",
    "inspections",
    "downturns",
    "misreads",
    "dewatering_terms",
    "bill_gaps",
    "bimonthly",
    "zero_bills",
    "meter_gaps",
    "dewatering_contractors",  # last: a stream added later leaves the earlier streams' draws alone
)

# how many running numbers each block may use per entity it holds (a block never needs more), and how many
# numbers the identifier's format has room for (``synth.ids.permute`` maps running numbers into that room)
NUMBERS_PER_ENTITY = {"supply": 3, "discharge": 3, "meter": 4, "project": 0.05}
NUMBER_ROOM = {"supply": 9 * 10**7, "discharge": 9 * 10**7, "meter": 9 * 10**7, "project": 9 * 10**5}


class CityState:
    """Attributes are the generator's internal state, all numpy arrays; stages read and add to them."""

    def __init__(self, cfg: SynthConfig, block: int = 0, first_entity: int = 0):
        self.cfg = cfg
        self.block, self.first_entity = block, first_entity  # this block's place in the city
        seeds = np.random.SeedSequence([cfg.seed, block]).spawn(len(STREAMS))
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.periods = pd.period_range(end=cfg.end_month, periods=cfg.months, freq="M")
        self.M = cfg.months
        self.cal = self.periods.month.to_numpy() - 1  # 0..11
        self.year = self.periods.year.to_numpy()
        self.month_text = self.periods.strftime("%Y-%m").to_numpy().astype(str)
        self.start = np.datetime64(self.periods[0].start_time.date(), "D")
        self.end = np.datetime64(self.periods[-1].end_time.date(), "D")
        self.month_start = self.periods.start_time.to_numpy().astype("datetime64[D]")
        self.tables: dict[str, pd.DataFrame] = {}
        self.carry = None  # what earlier blocks hand on (synth.city.Carry), set by the caller
        full_years = [y for y in np.unique(self.year) if (self.year == y).sum() == 12]
        self.dry_year = cfg.dry_year if cfg.dry_year is not None else (full_years[0] if full_years else -1)

    def numbers(self, kind: str, count: int) -> np.ndarray:
        """Running numbers of this block's accounts, meters or projects, disjoint from every other block's."""
        cap = max(int(NUMBERS_PER_ENTITY[kind] * self.cfg.block_entities), 100)
        if count > cap:
            raise ValueError(f"block {self.block} needs {count} {kind} numbers, more than its {cap}")
        if (self.block + 1) * cap > NUMBER_ROOM[kind]:
            raise ValueError(f"too many blocks for {kind} numbers: use fewer entities or larger blocks")
        return self.block * cap + np.arange(count)

    def rng(self, stage: str) -> np.random.Generator:
        return self.rngs[STREAMS.index(stage)]

    def month_of(self, d: np.ndarray) -> np.ndarray:
        """Month index of dates (negative before the window, >= M after)."""
        m = d.astype("datetime64[M]").astype(np.int64) - self.month_start[0].astype("datetime64[M]").astype(np.int64)
        return np.where(np.isnat(d), 10**6, m)

    def district_codes(self) -> np.ndarray:
        return np.array([d[1] for d in self.cfg.districts])
