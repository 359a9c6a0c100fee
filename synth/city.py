"""The whole city, block by block: the stages in order, and what a generated city holds.

A city is made in blocks of ``SynthConfig.block_entities`` entities. Each block
runs every stage on its own entities with its own random streams (seeded by
the city's seed and the block's number), so memory does not grow with the city.
Blocks depend on the blocks before them only through ``Carry``: the registered
names (the registry refuses a name already taken) and the running serial
numbers of permits. Identifiers are unique city-wide by construction
(``synth.ids``). Inspection numbers and the truth file's order are set once all
blocks are made. ``build_city`` and ``generate_city`` run the same blocks, so the
in-memory city and the streamed drop are the same city.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd

from features.contract import TABLES
from synth import accounts, billing, inspections, permits, projects, registry, tax, violations, water_use
from synth.arrays import cat
from synth.config import SynthConfig
from synth.state import CityState
from synth.writing import break_rows

STREAMED = [name for name in TABLES if name != "inspections"]  # inspections are numbered city-wide at the end


@dataclass
class City:
    """A generated city: the drop's tables plus the generator's own knowledge (evaluation only)."""

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    link_truth: pd.DataFrame
    park_members: pd.DataFrame  # source, account_id, uscc: who is behind each shared account
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["table", "row_number", "column"]))
    internal: CityState | None = None  # a one-block city's state: true volumes, owners, lines (tests only)


@dataclass
class Carry:
    """What a block hands to the next: the names already registered and the permit serials used per year."""

    names: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))  # sorted hashes
    permit_serials: Counter = field(default_factory=Counter)

    @staticmethod
    def _hash(names: np.ndarray) -> np.ndarray:
        return pd.util.hash_array(np.asarray(names, dtype=object))

    def taken(self, names: np.ndarray) -> np.ndarray:
        h = self._hash(names)
        pos = np.clip(np.searchsorted(self.names, h), 0, max(len(self.names) - 1, 0))
        return (self.names[pos] == h) if len(self.names) else np.zeros(len(h), bool)

    def register(self, names: np.ndarray) -> None:
        self.names = np.union1d(self.names, self._hash(names))


@dataclass(frozen=True)
class Block:
    index: int
    first_entity: int
    config: SynthConfig  # the block's share of the city (entities, inspections, projects)
    malformed_rows: int


def split(total: int, sizes: list[int]) -> list[int]:
    """``total`` split in proportion to ``sizes`` (largest remainder, ties to the earlier block)."""
    raw = np.asarray(sizes, float) * total / max(sum(sizes), 1)
    out = np.floor(raw).astype(int)
    out[np.argsort(-(raw - out), kind="stable")[: total - out.sum()]] += 1
    return out.tolist()


def plan_blocks(config: SynthConfig) -> list[Block]:
    size, n = config.block_entities, config.entities
    sizes = [min(size, n - start) for start in range(0, n, size)]
    inspections_total = config.inspections
    if inspections_total is None:
        inspections_total = int(np.clip(round(0.03 * n), 30, 1500))
    inspections = split(inspections_total, sizes)
    projects = split(config.projects, sizes) if config.projects is not None else [None] * len(sizes)
    malformed = split(config.malformed_rows, sizes)
    return [
        Block(
            index=b,
            first_entity=b * size,
            config=dataclasses.replace(
                config, entities=sizes[b], inspections=inspections[b], projects=projects[b], malformed_rows=0
            ),
            malformed_rows=malformed[b],
        )
        for b in range(len(sizes))
    ]


def build_block(block: Block, carry: Carry) -> tuple[City, CityState]:
    """Every stage, in order, for one block of entities."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        g = CityState(block.config, block.index, block.first_entity)
        g.carry = carry
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
    return City(tables=tables, truth=truth, link_truth=link_truth, park_members=members), g


class CityStream:
    """The city's blocks in order, each with its malformed rows already broken (row numbers city-wide);
    after the last block, the inspections, the truth and the list of malformed rows."""

    def __init__(self, config: SynthConfig):
        self.config = config
        self.blocks = plan_blocks(config)
        self.carry = Carry()
        self.rows: Counter = Counter()
        self._inspections: list[pd.DataFrame] = []
        self._truth: list[pd.DataFrame] = []
        self._malformed: list[pd.DataFrame] = []

    def __iter__(self) -> Iterator[tuple[City, CityState]]:
        for block in self.blocks:
            part, state = build_block(block, self.carry)
            self._inspections.append(part.tables.pop("inspections"))
            self._truth.append(part.truth)
            if block.malformed_rows:
                seed = [self.config.seed, 99] + ([block.index] if block.index else [])
                part.tables, broken = break_rows(part.tables, block.malformed_rows, np.random.default_rng(seed))
                broken["row_number"] += broken["table"].map(self.rows).fillna(0).astype(int)
                self._malformed.append(broken)
            self.rows.update({name: len(frame) for name, frame in part.tables.items()})
            yield part, state

    def inspections(self) -> pd.DataFrame:
        """All blocks' inspections in date order, numbered city-wide."""
        frame = pd.concat(self._inspections, ignore_index=True)
        frame = frame.sort_values("inspected_on", kind="stable").reset_index(drop=True)
        day = frame["inspected_on"].str.replace("-", "").to_numpy().astype(str)
        frame["inspection_id"] = cat("HC", day, np.char.zfill(np.arange(len(frame)).astype(str), 4))
        return frame[list(TABLES["inspections"].column_names)]

    def truth(self) -> pd.DataFrame:
        return pd.concat(self._truth, ignore_index=True).sort_values("uscc").reset_index(drop=True)

    def malformed(self) -> pd.DataFrame:
        if not self._malformed:
            return pd.DataFrame(columns=["table", "row_number", "column"])
        frame = pd.concat(self._malformed, ignore_index=True)
        return frame.sort_values(["table", "row_number"]).reset_index(drop=True)


def build_city(config: SynthConfig) -> City:
    """Generate the whole city in memory (a one-block city keeps the generator's state for the tests)."""
    stream = CityStream(config)
    parts, states = zip(*((part, state if len(stream.blocks) == 1 else None) for part, state in stream))
    tables = {name: pd.concat([p.tables[name] for p in parts], ignore_index=True) for name in STREAMED}
    tables["inspections"] = stream.inspections()
    return City(
        tables={name: tables[name] for name in TABLES},
        truth=stream.truth(),
        link_truth=pd.concat([p.link_truth for p in parts], ignore_index=True),
        park_members=pd.concat([p.park_members for p in parts], ignore_index=True),
        malformed=stream.malformed(),
        internal=states[0],
    )
