"""Our generator: contract-conformant, deterministic, consistent truth files, streamed block by block in
bounded memory, province drops. Violations' and confounders' traces: tests/test_synth_signatures.py."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import TABLES, VIOLATION_TYPES
from features.ingest import ingest
from features.uscc import ALPHABET, check_character
from features.workspace import Workspace
from synth import SynthConfig, build_city, generate_city, generate_province
from synth.city import Carry, build_block, plan_blocks
from synth.writing import for_csv

SMALL = SynthConfig(entities=600, seed=3)
# a city with many violations so every type has enough cases to measure its trace
RICH = SynthConfig(entities=1000, seed=5, violation_rate=0.15)


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    path = tmp_path_factory.mktemp("city")
    counts = generate_city(SMALL, path)
    return path, counts


@pytest.fixture(scope="module")
def ingested(drop, tmp_path_factory):
    path, _ = drop
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    summary = ingest(path, ws)
    return summary, ws


@pytest.fixture(scope="module")
def rich():
    return build_city(RICH)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    config = SynthConfig(entities=300, seed=21)
    generate_city(config, tmp_path / "a")
    generate_city(config, tmp_path / "b")
    generate_city(dataclasses.replace(config, seed=22), tmp_path / "c")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "truth.csv" in files and "link_truth.csv" in files and len(files) == 11
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)
    assert mismatch == [] and errors == []
    _, differ, _ = filecmp.cmpfiles(tmp_path / "a", tmp_path / "c", files, shallow=False)
    assert {"entities.csv", "supply.csv", "truth.csv"} <= set(differ)


def test_every_table_ingests_with_zero_quarantine(drop, ingested):
    _, counts = drop
    summary, ws = ingested
    assert set(summary) == set(TABLES)
    for name, s in summary.items():
        assert s["quarantined"] == 0, name
        assert s["read"] == s["accepted"] == counts[name] > 0, name
    typed = ws.typed_tables()
    assert typed["entities"]["uscc_valid"].all()
    # the city looks like a city: most entities supplied, fewer discharge accounts, a minority of uscc filled
    supply_accounts = typed["supply"]["account_id"].nunique()
    discharge_accounts = typed["discharge"]["account_id"].nunique()
    assert 0.6 * SMALL.entities < supply_accounts < 1.2 * SMALL.entities
    assert discharge_accounts < supply_accounts
    filled = typed["supply"].groupby("account_id")["uscc"].first().notna().mean()
    assert 0.15 < filled < 0.6
    assert {"true", "false"} == set(pd.read_csv(drop[0] / "discharge.csv", dtype=str)["measured"].unique())


def test_uscc_and_organisation_code_check_characters(drop):
    entities = pd.read_csv(drop[0] / "entities.csv", dtype=str)
    codes = entities["uscc"]
    assert codes.str.len().eq(18).all() and codes.is_unique
    assert all(check_character(c[:17]) == c[17] for c in codes)
    assert set(codes.str[:2]) <= {"91", "92", "93"} and (codes.str[:2] == "91").mean() > 0.5
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    for code in codes.str[8:17]:
        total = sum((int(ch) if ch.isdigit() else ord(ch) - 55) * w for ch, w in zip(code[:8], weights))
        c = 11 - total % 11
        assert code[8] == {10: "X", 11: "0"}.get(c, str(c))
    assert set("".join(codes)) <= set(ALPHABET)
    # names carry a legal form or a shop word; industry codes are GB/T 4754 classes
    assert entities["name"].is_unique
    assert entities["industry_code"].str.fullmatch(r"[A-T]\d{4}").all()
    assert entities["name"].str.contains("有限公司|有限责任公司|股份有限公司").mean() > 0.5


def test_truth_and_link_truth_agree_with_the_tables(drop):
    path, _ = drop
    entities = pd.read_csv(path / "entities.csv", dtype=str)
    truth = pd.read_csv(path / "truth.csv", dtype=str)
    links = pd.read_csv(path / "link_truth.csv", dtype=str, keep_default_na=False)
    assert len(truth) > 0 and truth["uscc"].isin(entities["uscc"]).all() and truth["uscc"].is_unique
    assert set(truth["violation_type"]) <= set(VIOLATION_TYPES)
    months = pd.read_csv(path / "supply.csv", dtype=str)["month"]
    assert truth["since_month"].between(months.min(), months.max()).all()
    for source in ("supply", "discharge"):
        table = pd.read_csv(path / f"{source}.csv", dtype=str, keep_default_na=False)
        mine = links[links["source"] == source]
        assert set(mine["account_id"]) == set(table["account_id"]) and mine["account_id"].is_unique
        shared = mine[mine["shared"] == "true"]
        members = shared["uscc"].str.split(";")  # a park account: every member's code joined by ';'
        assert (members.str.len() >= 2).all() and members.explode().isin(entities["uscc"]).all()
        owned = mine[(mine["uscc"] != "") & (mine["shared"] == "false")]
        assert owned["uscc"].isin(entities["uscc"]).all()
        # what the clerk wrote is the owner's code, or a mistyped one that fails its check character
        written = table.groupby("account_id")["uscc"].first()
        written = written[written != ""]
        owner = mine.set_index("account_id")["uscc"].reindex(written.index)
        wrong = written[written != owner]
        assert all(check_character(c[:17]) != c[17] for c in wrong)
        assert (owner == "").sum() == 0  # accounts of no entity carry no code
    assert (links["uscc"] == "").any()  # residential compounds, public bodies


def test_shared_park_accounts_have_several_entities_behind_them():
    city = build_city(SynthConfig(entities=800, seed=8, park_share=0.08))
    shared = city.link_truth[city.link_truth["shared"] == "true"]
    assert len(shared) >= 3
    members = city.park_members.groupby(["source", "account_id"])["uscc"].nunique()
    keys = list(zip(shared["source"], shared["account_id"]))
    assert (members.reindex(keys) >= 2).all()
    # park firms have no supply account of their own; the sewer operator bills some of them on their own
    for source in ("supply", "discharge"):
        own = city.link_truth[(city.link_truth["source"] == source) & (city.link_truth["shared"] == "false")]
        listed = city.park_members[city.park_members["source"] == source]["uscc"]
        assert not listed.isin(own["uscc"]).any()
    all_members = set(city.internal.uscc[city.internal.park_e])
    own_supply = city.link_truth[(city.link_truth["source"] == "supply") & (city.link_truth["shared"] == "false")]
    assert not own_supply["uscc"].isin(all_members).any()
    names = city.tables["supply"].drop_duplicates("account_id").set_index("account_id")["account_name"]
    assert names.reindex(shared.loc[shared["source"] == "supply", "account_id"]).str.contains("标准化厂房").all()


def test_malformed_rows_are_exactly_the_quarantined_ones(tmp_path):
    config = SynthConfig(entities=400, seed=4, malformed_rows=30)
    counts = generate_city(config, tmp_path / "drop")
    malformed = pd.read_csv(tmp_path / "drop" / "malformed.csv")
    assert len(malformed) == counts["malformed"] == 30
    summary = ingest(tmp_path / "drop", Workspace(tmp_path / "ws"))
    quarantine = pd.read_parquet(tmp_path / "ws" / "quarantine" / "quarantine.parquet")
    got = set(zip(quarantine["table"], quarantine["row_number"].astype(int), quarantine["column"]))
    expected = set(zip(malformed["table"], malformed["row_number"].astype(int), malformed["column"]))
    assert got == expected
    for name, s in summary.items():
        assert s["read"] == s["accepted"] + s["quarantined"]
        assert s["quarantined"] == int((malformed["table"] == name).sum())
    assert malformed["column"].str.contains(",").any()  # duplicate keys are among the breaks


@pytest.mark.parametrize("file_format", ["parquet", "mixed"])
def test_parquet_and_mixed_drops_ingest(tmp_path, file_format):
    config = SynthConfig(entities=300, seed=6, file_format=file_format, malformed_rows=8)
    counts = generate_city(config, tmp_path / "drop")
    parquet = {p.stem for p in (tmp_path / "drop").glob("*.parquet")}
    if file_format == "parquet":
        assert parquet == set(TABLES)
    else:
        assert 0 < len(parquet) < len(TABLES)
    summary = ingest(tmp_path / "drop", Workspace(tmp_path / "ws"))
    assert sum(s["quarantined"] for s in summary.values()) == counts["malformed"] == 8
    assert all(s["read"] == counts[name] for name, s in summary.items())


def test_tampering_share_override():
    config = SynthConfig(entities=1000, seed=2, violation_rate=0.05).with_tampering_share(0.5)
    mix = dict(config.violation_mix)
    assert mix["meter_tampering"] == 0.5 and abs(sum(mix.values()) - 1) < 1e-9
    truth = build_city(config).truth
    share = (truth["violation_type"] == "meter_tampering").mean()
    assert 0.4 <= share <= 0.6
    with pytest.raises(ValueError):
        config.with_tampering_share(1.5)


def test_inspections_are_biased_and_never_see_a_violation_before_it_began(rich):
    ins = rich.tables["inspections"].merge(rich.truth, on="uscc", how="left")
    assert 30 <= len(ins) <= 400
    assert set(ins["outcome"]) <= {"violation", "no_violation", "unreachable"}
    found = ins[ins["outcome"] == "violation"]
    assert len(found) > 0
    assert found["violation_type_y"].notna().all()  # only planted violators are found
    assert (found["inspected_on"].str[:7] >= found["since_month"]).all()
    assert (found["violation_type_x"] == found["violation_type_y"]).all()
    assert ins.loc[ins["outcome"] != "violation", "violation_type_x"].isna().all()
    # officers went where violators are: inspected entities are violators far more often than the city average
    assert ins["since_month"].notna().mean() > 2 * len(rich.truth) / RICH.entities


def test_the_generator_stands_outside_the_production_layers():
    """No production package imports ``synth``; ``synth`` imports nothing of the platform but the contract."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def imported(path):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                yield from (a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module

    for layer in ("features", "models", "training", "serving"):
        for path in (root / layer).rglob("*.py"):
            assert not [m for m in imported(path) if m.split(".")[0] == "synth"], path
    platform = {"features", "models", "training", "serving", "waterwatch"}
    for path in (root / "synth").glob("*.py"):
        used = {m for m in imported(path) if m.split(".")[0] in platform}
        assert used <= {"features.contract", "features.uscc"}, (path, used)


# -- streaming: block by block, bounded memory, province drops --------------------------------------

BLOCKED = SynthConfig(entities=2500, seed=19, block_entities=800, malformed_rows=12)


def test_streamed_drop_equals_the_city_built_in_memory(tmp_path):
    """generate_city writes block after block; the same city built whole in memory writes the same bytes."""
    counts = generate_city(BLOCKED, tmp_path / "streamed")
    city = build_city(BLOCKED)
    whole = tmp_path / "whole"
    whole.mkdir()
    for name, frame in city.tables.items():
        for_csv(frame).to_csv(whole / f"{name}.csv", index=False, encoding="utf-8")
    city.truth.to_csv(whole / "truth.csv", index=False, encoding="utf-8")
    city.link_truth.to_csv(whole / "link_truth.csv", index=False, encoding="utf-8")
    city.malformed.to_csv(whole / "malformed.csv", index=False, encoding="utf-8")
    files = sorted(p.name for p in whole.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "streamed", whole, files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == 12
    assert counts["malformed"] == 12 and len(plan_blocks(BLOCKED)) == 4
    # the broken rows are spread over the blocks, numbered city-wide, and exactly what ingest quarantines
    summary = ingest(tmp_path / "streamed", Workspace(tmp_path / "ws"))
    quarantine = pd.read_parquet(tmp_path / "ws" / "quarantine" / "quarantine.parquet")
    got = set(zip(quarantine["table"], quarantine["row_number"].astype(int), quarantine["column"]))
    assert got == set(zip(city.malformed["table"], city.malformed["row_number"].astype(int), city.malformed["column"]))
    assert sum(s["quarantined"] for s in summary.values()) == 12
    assert city.malformed["row_number"].max() > max(len(f) for f in build_block(plan_blocks(BLOCKED)[0], Carry())[0].tables.values())


def test_parquet_streamed_in_row_groups_holds_the_same_rows(tmp_path):
    config = dataclasses.replace(BLOCKED, file_format="parquet")
    generate_city(config, tmp_path / "drop")
    city = build_city(config)
    for name, frame in city.tables.items():
        read = pd.read_parquet(tmp_path / "drop" / f"{name}.parquet")
        frame = frame.reset_index(drop=True)
        assert len(read) == len(frame), name
        for col in frame.columns:
            kind, a, b = TABLES[name].column(col).kind, frame[col], read[col]
            if b.dtype.kind == "f" or kind in ("int", "decimal") and b.dtype.kind in "iu":
                np.testing.assert_array_equal(pd.to_numeric(a).astype(float), b.astype(float), err_msg=f"{name}.{col}")
            elif b.dtype.kind == "M":
                assert (pd.to_datetime(a).fillna(pd.Timestamp(0)) == b.fillna(pd.Timestamp(0))).all(), (name, col)
            else:
                a, b = a.astype(str).where(a.notna(), ""), b.astype(str).where(b.notna(), "")
                assert (a.str.lower() == b.str.lower()).all(), (name, col)  # booleans: 'true' / True
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "drop" / "supply.parquet").num_row_groups == 4


def test_blocks_do_not_change_when_the_city_grows():
    """Blocks depend on earlier blocks only through the registered names and the permit serials: a bigger city
    with the same seed and block size begins with exactly the smaller city's rows."""
    small = build_city(SynthConfig(entities=1600, seed=23, block_entities=800))
    big = build_city(SynthConfig(entities=2800, seed=23, block_entities=800))
    for name in ("entities", "permits", "abstraction", "supply", "discharge", "tax", "plans", "projects"):
        a, b = small.tables[name].reset_index(drop=True), big.tables[name].head(len(small.tables[name]))
        pd.testing.assert_frame_equal(a, b.reset_index(drop=True), check_dtype=False, obj=name)
    assert set(small.truth["uscc"]) <= set(big.truth["uscc"])
    # identifiers are unique city-wide, names too (the registry refuses a taken name)
    t = big.tables
    assert t["entities"]["uscc"].is_unique and t["entities"]["name"].is_unique
    assert t["permits"]["permit_id"].is_unique and t["projects"]["project_id"].is_unique
    assert t["inspections"]["inspection_id"].is_unique
    for source in ("supply", "discharge"):
        owners = t[source].groupby("account_id")["account_name"].nunique()
        assert (owners == 1).all()  # one account id, one account
    assert not t["abstraction"].duplicated(["meter_id", "month"]).any()


def _peak_rss_mb(entities: int, block: int, out: Path) -> float:
    # VmHWM, not ru_maxrss: a forked child's ru_maxrss starts at its parent's (pytest's) resident size
    code = (
        "import re, sys; from synth import SynthConfig, generate_city; "
        f"generate_city(SynthConfig(entities={entities}, seed=3, block_entities={block}), sys.argv[1]); "
        "status = open('/proc/self/status').read(); "
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def test_memory_follows_the_block_not_the_city(tmp_path, report_metric):
    small = _peak_rss_mb(2_000, 2_000, tmp_path / "small")
    large = _peak_rss_mb(16_000, 2_000, tmp_path / "large")
    whole = _peak_rss_mb(16_000, 16_000, tmp_path / "whole")
    report_metric(f"synth peak RSS: 2,000 entities {small:.0f} MB; 16,000 in blocks of 2,000 {large:.0f} MB; "
                  f"16,000 in one block {whole:.0f} MB")  # fmt: skip
    assert large < 1.25 * small + 40
    assert whole > large + 50  # the bound comes from the blocks


def test_province_drop_has_one_complete_drop_per_city(tmp_path):
    config = SynthConfig(entities=1800, seed=29, malformed_rows=6)
    counts = generate_province(config, 3, tmp_path)
    listing = json.loads((tmp_path / "province.json").read_text(encoding="utf-8"))
    folders = [c["folder"] for c in listing["cities"]]
    assert folders == ["city=371400", "city=371500", "city=371600"] and set(counts) == set(folders)
    districts = []
    for entry in listing["cities"]:
        drop = tmp_path / entry["folder"]
        summary = ingest(drop, Workspace(tmp_path / f"ws-{entry['division']}"))
        assert sum(s["quarantined"] for s in summary.values()) == 2
        entities = pd.read_csv(drop / "entities.csv", dtype=str)
        assert len(entities) == entry["entities"] == 600 and "city" not in entities.columns
        assert entities["uscc"].str[2:6].eq(entry["division"][:4]).all()  # the city's administrative division
        assert entities["address"].dropna().str.contains(entry["city"]).all()
        assert (drop / "truth.csv").exists() and (drop / "link_truth.csv").exists()
        districts.append(set(entities["district"]))
    assert not (districts[0] & districts[1]) and not (districts[1] & districts[2])
    with pytest.raises(ValueError):
        generate_province(config, 9, tmp_path / "too-many")


def test_drop_comparison_reads_our_drops_and_the_shared_sample(drop, sample_drop):
    """benchmarks/compare_drops.py (the realism check against drops made elsewhere) reads both kinds of drop."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from compare_drops import summary

    ours, theirs = summary(drop[0]), summary(sample_drop)
    assert set(ours) == set(theirs) and ours["entities"] == SMALL.entities
    assert 0 < ours["supply accounts with uscc"] < 1 and 0 < theirs["supply accounts with uscc"] < 1
    assert 0 < ours["discharge measured rows"] < 1


def test_a_million_entities_have_room_for_their_identifiers():
    """Every block of a 1,000,000-entity city gets running numbers inside its identifiers' format."""
    from synth.ids import key_for, permute
    from synth.state import NUMBER_ROOM, NUMBERS_PER_ENTITY, CityState

    last = plan_blocks(SynthConfig(entities=1_000_000))[-1]
    g = CityState(last.config, last.index, last.first_entity)
    for kind, room in NUMBER_ROOM.items():
        numbers = g.numbers(kind, int(NUMBERS_PER_ENTITY[kind] * last.config.block_entities))
        assert numbers.max() < room and len(np.unique(permute(numbers, room, key_for(0, kind)))) == len(numbers)
    with pytest.raises(ValueError):
        g.numbers("project", 10**6)
