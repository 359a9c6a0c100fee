"""The lead queue: top picks plus a stratified random share, with known inclusion probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.queue import build_queue


def city_leads(sizes: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Leads of districts -> {industry section: entities}, ranks interleaved across districts."""
    rows = []
    for district, strata in sizes.items():
        for section, n in strata.items():
            rows += [(district, f"{section}{1000 + i}") for i in range(n)]
    df = pd.DataFrame(rows, columns=["district", "industry_code"])
    df = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    df["uscc"] = [f"9137{i:014d}" for i in range(len(df))]
    df["rank"] = np.arange(1, len(df) + 1)
    return df


def test_small_district_enters_whole_with_probability_one():
    leads = city_leads({"甲区": {"C": 30}, "乙区": {"C": 500}})
    q = build_queue(leads, capacity_per_district=50, exploration_share=0.1, random_state=0)
    small = q[q["district"] == "甲区"]
    assert len(small) == 30
    assert (small["queue_probability"] == 1.0).all() and not small["exploratory"].any()
    assert len(q[q["district"] == "乙区"]) == 50


def test_top_picks_and_exploration_counts():
    leads = city_leads({"甲区": {"C": 400, "F": 200}, "乙区": {"C": 300, "H": 300}})
    q = build_queue(leads, capacity_per_district=100, exploration_share=0.1, random_state=1)
    for district, part in q.groupby("district"):
        all_d = leads[leads["district"] == district].sort_values("rank")
        top90 = set(all_d["uscc"].iloc[:90])
        exploit = part[~part["exploratory"]]
        assert set(exploit["uscc"]) == top90
        assert (exploit["queue_probability"] == 1.0).all()
        explore = part[part["exploratory"]]
        assert len(explore) == 10
        assert not set(explore["uscc"]) & top90
        assert sorted(part["queue_position"]) == list(range(1, 101))


def test_allocation_is_proportional_to_industry_strata_and_probabilities_are_exact():
    # after the 18 top picks the pool is whatever is left; make strata big so shares are stable
    leads = city_leads({"甲区": {"C": 618, "F": 300, "H": 100}})
    q = build_queue(leads, capacity_per_district=20, exploration_share=0.5, random_state=7)
    top = set(leads.sort_values("rank")["uscc"].iloc[:10])
    pool = leads[~leads["uscc"].isin(top)]
    sizes = pool.groupby(pool["industry_code"].str[0]).size()
    explore = q[q["exploratory"]]
    got = explore.groupby(explore["industry_code"].str[0]).size().reindex(sizes.index, fill_value=0)
    expected_share = sizes / sizes.sum() * 10
    assert got.sum() == 10
    assert (np.abs(got - expected_share) < 1).all()  # largest remainder: within one slot of the exact share
    probs = explore.groupby(explore["industry_code"].str[0])["queue_probability"].first()
    for section, p in probs.items():
        assert p == pytest.approx(got[section] / sizes[section])


def test_empirical_inclusion_frequency_matches_queue_probability():
    leads = city_leads({"甲区": {"C": 150, "F": 60}, "乙区": {"E": 80, "H": 80}})
    draws = 150
    counts = pd.Series(0, index=leads["uscc"])
    probs = {}
    for seed in range(draws):
        q = build_queue(leads, capacity_per_district=40, exploration_share=0.25, random_state=seed)
        counts[q["uscc"]] += 1
        probs.update(dict(zip(q["uscc"], q["queue_probability"])))
    freq = counts / draws
    # entities outside the top picks: mean frequency per (district, section) vs the stated probability
    table = leads.assign(freq=freq.to_numpy(), p=leads["uscc"].map(probs))
    pool = table[table["p"] < 1]
    by = pool.groupby(["district", pool["industry_code"].str[0]])
    assert len(by) == 4
    for _, g in by:
        assert g["p"].nunique() == 1
        assert g["freq"].mean() == pytest.approx(g["p"].iloc[0], abs=0.03)


def test_deterministic_and_no_exploration_is_top_k():
    leads = city_leads({"甲区": {"C": 200}, "乙区": {"F": 200}})
    a = build_queue(leads, 30, 0.1, random_state=5)
    b = build_queue(leads, 30, 0.1, random_state=5)
    pd.testing.assert_frame_equal(a, b)
    c = build_queue(leads, 30, 0.1, random_state=6)
    assert set(a["uscc"]) != set(c["uscc"])
    plain = build_queue(leads, 30, 0.0, random_state=5)
    expected = leads.sort_values("rank").groupby("district").head(30)
    assert set(plain["uscc"]) == set(expected["uscc"])
    assert not plain["exploratory"].any()


def test_exploratory_leads_are_shuffled_into_the_queue():
    leads = city_leads({"甲区": {"C": 2000}})
    q = build_queue(leads, 200, 0.2, random_state=0)
    pos = q.loc[q["exploratory"], "queue_position"]
    # were they appended, their positions would be 161..200
    assert pos.min() < 100
    assert pos.mean() < 150


def test_capacity_per_district_mapping_and_bad_input():
    leads = city_leads({"甲区": {"C": 100}, "乙区": {"C": 100}})
    q = build_queue(leads, {"甲区": 10}, 0.1, random_state=0)
    assert q["district"].unique().tolist() == ["甲区"] and len(q) == 10
    with pytest.raises(ValueError, match="exploration_share"):
        build_queue(leads, 10, 1.5)
    with pytest.raises(ValueError, match="rank"):
        build_queue(leads.drop(columns="rank"), 10, 0.1)
    assert build_queue(leads.iloc[:0], 10, 0.1).empty
