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
)


class CityState:
    """Attributes are the generator's internal state, all numpy arrays; stages read and add to them."""

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg
        seeds = np.random.SeedSequence(cfg.seed).spawn(len(STREAMS))
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

    def rng(self, stage: str) -> np.random.Generator:
        return self.rngs[STREAMS.index(stage)]

    def month_of(self, d: np.ndarray) -> np.ndarray:
        """Month index of dates (negative before the window, >= M after)."""
        m = d.astype("datetime64[M]").astype(np.int64) - self.month_start[0].astype("datetime64[M]").astype(np.int64)
        return np.where(np.isnat(d), 10**6, m)

    def district_codes(self) -> np.ndarray:
        return np.array([d[1] for d in self.cfg.districts])
