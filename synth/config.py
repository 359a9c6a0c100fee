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
HIDDEN_VIOLATIONS = ("private_well", "unpermitted_abstraction", "meter_tampering")


@dataclass(frozen=True)
class Confounders:
    """How often honest entities look like violators; docs/generator.md says what each does and why.

    Shares are of the group named in the comment. ``Confounders.none()`` is a
    city without them (for measuring what each one does to a detector).
    """

    # records: what a deterministic check sees on honest permit holders
    late_renewal: float = 0.2  # of renewals in the window: granted 1-2 months after expiry, meter running
    tight_quota: float = 0.15  # of permit lines: quota within a few percent of normal use
    dry_year_use: float = 0.12  # extra use of irrigation in the dry year (cooling: a third of it)
    tax_misdeclare: float = 0.2  # of taxpayers: declarations off by 10-15 % in about half the quarters
    new_permit: float = 0.08  # of permit holders: first permit granted inside the window (supply drops)
    dewatering_by_contractor: float = 0.3  # of legal dewatering works: the contractor holds the permit, not the owner
    pit_water_to_storm_drain: float = 0.5  # of legal dewatering with the owner's permit: pit water not in the sewer
    # water balance: discharge above the water a detector can see
    coefficient_spread: float = 0.15  # sd of the log discharge coefficient around the industry's value
    reclaimed_water: float = 0.3  # of heavy industry: 20-50 % of its water is reclaimed water, in no table
    park_own_discharge: float = 0.1  # of industrial parks: members on own sewer accounts, shared supply
    estimated_from_supply: float = 0.95  # of estimated discharge accounts: billed supply x a fixed ratio
    # behaviour over time: level shifts with no violation behind them
    production_change: float = 0.08  # of entities: a step of -60 %..+80 % in all use
    sector_downturn: float = 0.1  # of industry classes: most members fall 15-50 % together and stay there
    dormancy: float = 0.05  # of entities: a 2-8 month shutdown
    closure: float = 0.03  # of entities: stop operating without deregistering
    meter_drift: float = 0.1  # of abstraction meters: under-register 5-15 % a year until replaced
    billing_misread: float = 0.001  # of supply and discharge bills: a month keyed with an extra digit (x 10)
    billing_gap: float = 0.012  # of supply and discharge account-months: a run of 1-5 months with no bill starts
    bimonthly_supply: float = 0.05  # of supply accounts: read every second month (odd months 0, even months both)
    bimonthly_discharge: float = 0.02  # of discharge accounts: billed every second month, as above
    zero_bill: float = 0.005  # of supply and discharge account-months: billed 0, the next bill at its usual level
    meter_gap: float = 0.01  # of abstraction meter-months: a run of 1-5 months with no row starts (the water was drawn)

    @classmethod
    def none(cls) -> "Confounders":
        return cls(**{f.name: 0.0 for f in dataclasses.fields(cls)})


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
    preexisting_share: float = 0.25  # of hidden violations: began before the window (no before/after to see)
    confounders: Confounders = Confounders()
    dry_year: int | None = None  # default: the first full calendar year of the window
    new_entity_share: float = 0.18  # entities registered inside the window
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
    block_entities: int = 25_000  # entities generated together; the city is made block by block
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
        shares = {f.name: getattr(self.confounders, f.name) for f in dataclasses.fields(Confounders)}
        shares.update(preexisting_share=self.preexisting_share, new_entity_share=self.new_entity_share)
        bad = sorted(k for k, v in shares.items() if not 0.0 <= v <= 1.0)
        if bad:
            raise ValueError(f"shares must be within [0, 1]: {bad}")
        unknown = {t for t, _ in self.violation_mix} - set(VIOLATION_TYPES)
        if unknown:
            raise ValueError(f"unknown violation types {sorted(unknown)}")
