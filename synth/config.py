"""What a generated city looks like: the one configuration object of the generator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from features.contract import VIOLATION_TYPES
from synth.vocab import DEZHOU_DISTRICTS, DISTRICT_WEIGHTS

DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("private_well", 0.25),
    ("unpermitted_abstraction", 0.15),
    ("meter_tampering", 0.20),
    ("over_permit", 0.15),
    ("expired_permit", 0.10),
    ("tax_underreport", 0.15),
)
PERMIT_VIOLATIONS = ("meter_tampering", "over_permit", "expired_permit", "tax_underreport")


@dataclass(frozen=True)
class SynthConfig:
    """What the city looks like; every share is of registered entities unless said otherwise."""

    entities: int = 2000
    months: int = 36
    seed: int = 0
    end_month: str = "2026-10"
    province: str = "山东省"
    city: str = "德州市"
    city_short: str = "德州"
    city_division: str = "371400"
    permit_prefix: str = "取水(鲁德)字"
    districts: tuple[tuple[str, str, str], ...] = DEZHOU_DISTRICTS  # (name, division code, short)
    district_weights: tuple[float, ...] = DISTRICT_WEIGHTS
    violation_rate: float = 0.04
    violation_mix: tuple[tuple[str, float], ...] = DEFAULT_MIX
    supply_share: float = 0.85  # entities with a public-supply account
    discharge_share: float = 0.38  # entities with a discharge account (more for industry)
    uscc_filled_supply: float = 0.35
    uscc_filled_discharge: float = 0.5
    uscc_typo_share: float = 0.02  # of filled codes, mistyped by the clerk
    second_account_share: float = 0.06
    orphan_account_share: float = 0.08  # accounts of no registered entity, per entity
    park_share: float = 0.05  # small firms sharing an industrial-park account
    deregistered_share: float = 0.08
    permit_holder_boost: float = 0.6  # scales the industries' chance of holding a permit
    combined_sewer_share: float = 0.3
    estimated_discharge_share: float = 0.35
    efficiency_drop_share: float = 0.04
    growth_share: float = 0.12
    meter_replacement_share: float = 0.06
    inspections: int | None = None  # default scales with entities
    projects: int | None = None
    file_format: str = "csv"  # csv | parquet | mixed
    malformed_rows: int = 0

    def with_tampering_share(self, share: float) -> "SynthConfig":
        """A copy where ``share`` of the violations are meter tampering, the others keeping their proportions."""
        if not 0.0 <= share <= 1.0:
            raise ValueError("tampering share must be within [0, 1]")
        others = [(t, w) for t, w in self.violation_mix if t != "meter_tampering"]
        total = sum(w for _, w in others) or 1.0
        mix = tuple((t, (1.0 - share) * w / total) for t, w in others) + (("meter_tampering", share),)
        return dataclasses.replace(self, violation_mix=mix)

    def __post_init__(self):
        if self.file_format not in ("csv", "parquet", "mixed"):
            raise ValueError("file_format must be csv, parquet or mixed")
        if self.months < 15:
            raise ValueError("at least 15 months are needed to plant violations with a before and an after")
        unknown = {t for t, _ in self.violation_mix} - set(VIOLATION_TYPES)
        if unknown:
            raise ValueError(f"unknown violation types {sorted(unknown)}")
