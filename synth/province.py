"""Several cities of one province in one drop: one sub-folder per city, each a complete contract drop.

The contract has no city column, and district names repeat across cities
(Jinan, Zaozhuang and Jining each have a 市中区), so a province drop keeps each
city's tables in its own folder, named the way engines read partitions
(``city=371400``), with ``province.json`` listing the cities.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from synth.city import split
from synth.config import SynthConfig
from synth.vocab import PROVINCE_CITIES
from synth.writing import generate_city


def province_configs(config: SynthConfig, cities: int) -> list[SynthConfig]:
    """One configuration per city: the entities split evenly, each city its own seed and vocabulary."""
    if not 1 <= cities <= len(PROVINCE_CITIES):
        raise ValueError(f"a province drop holds 1 to {len(PROVINCE_CITIES)} cities")
    even = [1] * cities
    sizes, malformed = split(config.entities, even), split(config.malformed_rows, even)
    inspections = split(config.inspections, even) if config.inspections is not None else [None] * cities
    projects = split(config.projects, even) if config.projects is not None else [None] * cities
    out = []
    for i, (city, short, division, prefix, districts, weights) in enumerate(PROVINCE_CITIES[:cities]):
        out.append(
            dataclasses.replace(
                config,
                entities=sizes[i],
                seed=config.seed * 100 + i,
                city=city,
                city_short=short,
                city_division=division,
                permit_prefix=prefix,
                districts=districts,
                district_weights=weights,
                inspections=inspections[i],
                projects=projects[i],
                malformed_rows=malformed[i],
            )
        )
    return out


def city_folder(config: SynthConfig) -> str:
    return f"city={config.city_division}"


def generate_province(config: SynthConfig, cities: int, out_dir: Path | str, progress=None) -> dict[str, dict]:
    """Write ``cities`` city drops under ``out_dir`` and ``province.json``; returns each city's row counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    listing = []
    for cfg in province_configs(config, cities):
        folder = city_folder(cfg)
        counts[folder] = generate_city(cfg, out / folder, progress=progress)
        listing.append({"folder": folder, "city": cfg.city, "division": cfg.city_division, "seed": cfg.seed,
                        "entities": cfg.entities})  # fmt: skip
    (out / "province.json").write_text(
        json.dumps({"province": config.province, "cities": listing}, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return counts
