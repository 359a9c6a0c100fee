"""The synthetic city: contract-conformant, deterministic, consistent truth, planted traces measurable."""

from __future__ import annotations

import dataclasses
import filecmp

import numpy as np
import pandas as pd
import pytest

from features.contract import TABLES, VIOLATION_TYPES
from features.ingest import ingest
from synth import SynthConfig, build_city, generate_city
from features.uscc import ALPHABET, check_character
from features.workspace import Workspace

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
        owned = mine[mine["uscc"] != ""]
        assert owned["uscc"].isin(entities["uscc"]).all()
        shared = mine[mine["shared"] == "true"]
        assert (shared["uscc"] == "").all()
        # what the clerk wrote is the owner's code, or a mistyped one that fails its check character
        written = table.groupby("account_id")["uscc"].first()
        written = written[written != ""]
        owner = mine.set_index("account_id")["uscc"].reindex(written.index)
        wrong = written[written != owner]
        assert all(check_character(c[:17]) != c[17] for c in wrong)
        assert (owner == "").sum() == 0  # accounts of no entity carry no code
    assert (links["uscc"] == "").any()  # residential compounds, public bodies, parks


def test_shared_park_accounts_have_several_entities_behind_them():
    city = build_city(SynthConfig(entities=800, seed=8, park_share=0.08))
    shared = city.link_truth[city.link_truth["shared"] == "true"]
    assert len(shared) >= 3
    members = city.park_members.groupby(["source", "account_id"])["uscc"].nunique()
    keys = list(zip(shared["source"], shared["account_id"]))
    assert (members.reindex(keys) >= 2).all()
    assert not city.park_members["uscc"].isin(city.link_truth["uscc"]).any()  # park firms have no own account
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


# -- planted violations leave the trace they leave in reality ------------------------------


def _entity_monthly(city, source):
    """Monthly volume per (uscc, month) through the true account owners."""
    table = city.tables[source]
    owner = city.link_truth[(city.link_truth["source"] == source) & (city.link_truth["uscc"] != "")]
    merged = table.merge(owner[["account_id", "uscc"]].rename(columns={"uscc": "owner"}), on="account_id")
    return merged.groupby(["owner", "month"])["volume_m3"].sum().unstack(fill_value=0.0)


def _before_after(matrix, truth, kind):
    rows = truth[truth["violation_type"] == kind]
    rows = rows[rows["uscc"].isin(matrix.index)]
    months = matrix.columns.to_numpy()
    before, after = [], []
    for uscc, since in zip(rows["uscc"], rows["since_month"]):  # a few dozen violators
        series = matrix.loc[uscc]
        before.append(series[months < since].mean())
        after.append(series[months >= since].mean())
    return pd.Series(before, index=rows["uscc"].to_numpy()), pd.Series(after, index=rows["uscc"].to_numpy())


def test_private_wells_show_discharge_above_metered_water(rich):
    sup = _entity_monthly(rich, "supply")
    dis = _entity_monthly(rich, "discharge")
    metered = _metered_by_entity(rich).reindex(index=sup.index, columns=sup.columns, fill_value=0.0)
    both = sup.index.intersection(dis.index)
    ratio = dis.loc[both] / ((sup + metered).loc[both].reindex(columns=dis.columns, fill_value=0) + 1.0)
    before, after = _before_after(ratio, rich.truth, "private_well")
    assert len(before) >= 10
    # discharge / (supply + metered abstraction) after since_month clearly exceeds before, for the typical well
    assert np.nanmedian(after / before) > 1.4
    assert np.nanmean(np.log(after / before)) > np.log(1.3)
    s_before, s_after = _before_after(sup, rich.truth, "private_well")
    assert np.median(s_after / s_before) < 0.8  # the supply bill dropped
    # honest entities of the same city show no such jump
    honest = ratio.drop(index=rich.truth["uscc"], errors="ignore")
    half = honest.columns[len(honest.columns) // 2]
    change = honest.loc[:, honest.columns >= half].mean(1) / honest.loc[:, honest.columns < half].mean(1)
    assert np.nanmedian(change) < 1.15


def _metered_by_entity(city):
    ab = city.tables["abstraction"].merge(city.tables["permits"][["permit_id", "uscc"]], on="permit_id")
    return ab.groupby(["uscc", "month"])["volume_m3"].sum().unstack(fill_value=0.0)


def test_meter_tampering_lowers_the_meter_while_discharge_goes_on(rich):
    metered = _metered_by_entity(rich)
    m_before, m_after = _before_after(metered, rich.truth, "meter_tampering")
    assert len(m_before) >= 8
    assert np.median(m_after / m_before) < 0.6
    dis = _entity_monthly(rich, "discharge")
    d_before, d_after = _before_after(dis, rich.truth, "meter_tampering")
    assert np.nanmedian(d_after / d_before) > 0.8


def test_over_permit_expired_permit_and_tax_underreport_traces(rich):
    truth, permits, ab, tax = rich.truth, rich.tables["permits"], rich.tables["abstraction"], rich.tables["tax"]
    metered = _metered_by_entity(rich)
    quota = permits[permits["status"] == "valid"].groupby("uscc")["annual_quota_m3"].max()
    over = truth[truth["violation_type"] == "over_permit"]
    assert len(over) >= 5
    exceeded = []
    for uscc, since in zip(over["uscc"], over["since_month"]):
        series = metered.loc[uscc]
        exceeded.append(series[series.index >= since].mean() * 12 > quota[uscc])
    assert np.mean(exceeded) >= 0.8
    expired = truth[truth["violation_type"] == "expired_permit"]
    rows = ab.merge(permits[["permit_id", "uscc", "valid_to"]], on="permit_id")
    late = rows[rows["month"] > rows["valid_to"].str[:7]]
    assert len(expired) >= 5 and expired["uscc"].isin(late["uscc"]).all()
    # honest taxpayers never pump on an expired permit
    assert set(late["uscc"]) <= set(truth["uscc"])
    under = truth[truth["violation_type"] == "tax_underreport"]
    quarterly = metered.T.groupby(pd.PeriodIndex(metered.columns, freq="Q").astype(str).str.replace("Q", "-Q")).sum().T
    declared = tax.groupby(["uscc", "period"])["declared_m3"].sum().unstack()
    share_before, share_after = [], []
    for uscc, since in zip(under["uscc"], under["since_month"]):
        q_since = str(pd.Period(since, freq="Q")).replace("Q", "-Q")
        ratio = (declared.loc[uscc] / quarterly.loc[uscc].reindex(declared.columns)).dropna()
        share_before.append(ratio[ratio.index < q_since].mean())
        share_after.append(ratio[ratio.index > q_since].mean())
    assert np.nanmedian(share_before) > 0.9 and np.nanmedian(share_after) < 0.7


def test_unpermitted_abstractors_have_no_valid_permit(rich):
    truth, permits = rich.truth, rich.tables["permits"]
    unp = truth[truth["violation_type"] == "unpermitted_abstraction"]
    assert len(unp) >= 5
    held = permits[(permits["status"] == "valid")].merge(unp, on="uscc")
    covering = held[
        (held["valid_from"].str[:7] <= held["since_month"]) & (held["valid_to"].str[:7] >= held["since_month"])
    ]
    assert covering.empty
    dis = _entity_monthly(rich, "discharge")
    sup = _entity_monthly(rich, "supply")
    d_before, d_after = _before_after(dis, truth, "unpermitted_abstraction")
    s_before, s_after = _before_after(sup, truth, "unpermitted_abstraction")
    # the unmetered water shows up somewhere: more discharge, or less supply
    more_discharge = (d_after / d_before).reindex(unp["uscc"]) > 1.2
    less_supply = (s_after / s_before).reindex(unp["uscc"]) < 0.8
    assert (more_discharge | less_supply).mean() >= 0.6


def test_confounders_are_present(rich):
    dis = rich.tables["discharge"]
    estimated = dis[dis["measured"] == "false"]
    # estimated discharge is flat within a year and rounded
    per_year = estimated.assign(year=estimated["month"].str[:4]).groupby(["account_id", "year"])["volume_m3"].nunique()
    assert (per_year == 1).mean() > 0.95
    assert (estimated["volume_m3"] % 10 == 0).all()
    # combined sewers: measured discharge of honest accounts peaks in the wet season
    measured = dis[dis["measured"] == "true"].copy()
    measured["wet"] = measured["month"].str[5:].isin(["07", "08"])
    wet = measured.groupby(["account_id", "wet"])["volume_m3"].mean().unstack()
    assert ((wet[True] / wet[False]) > 1.5).mean() > 0.1
    # meter replacements leave gaps and a new meter id under the same permit
    ab = rich.tables["abstraction"]
    meters_per_permit = ab.groupby("permit_id")["meter_id"].nunique()
    assert (meters_per_permit > 1).any()


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
