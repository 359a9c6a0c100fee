"""Nothing dated on or after the as-of month reaches a feature, a label or an "already found" mark, and the
as-of itself is a month start that the drop's data reaches."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.profiles import build_profiles, entity_snapshot
from features.workspace import Workspace
from test_profiles import links_from_accounts, monthly, random_city, truncate, typed
from training.labels import inspection_labels, known_inspections

AS_OF = pd.Timestamp("2025-06-01")
X, Y = "91371400ASOF0000X", "91371400ASOF0000Y"

DROP = pd.DataFrame([
    ("D1", X, "2025-03-10", "violation", "private_well"),
    ("D2", Y, "2025-11-18", "violation", "meter_tampering"),  # found after the as-of
], columns=["inspection_id", "uscc", "inspected_on", "outcome", "violation_type"])
FIELD = pd.DataFrame([
    ("V1", "91371400ASOF0000Z", "2025-05-20", "no_violation", None, 0.5),
    ("V2", "91371400ASOF0000W", "2025-08-02", "violation", "private_well", 0.5),  # recorded after the as-of
], columns=["inspection_id", "uscc", "inspected_on", "outcome", "violation_type", "queue_probability"])


# -- labels and "already found" -----------------------------------------------


def test_an_inspection_after_as_of_is_no_label():
    known = known_inspections(DROP, AS_OF, [FIELD])
    assert sorted(known["inspection_id"]) == ["D1", "V1"]
    labels = inspection_labels(known, AS_OF)
    assert labels["label"].to_dict() == {X: 1, "91371400ASOF0000Z": 0}


def test_field_verdicts_after_as_of_count_only_at_the_drops_latest_as_of():
    """A run at the present learns from verdicts recorded since the drop was cut; the drop's own later
    inspections stay out even then."""
    known = known_inspections(DROP, AS_OF, [FIELD], verdicts_after_as_of=True)
    assert sorted(known["inspection_id"]) == ["D1", "V1", "V2"]


@pytest.mark.parametrize(("latest", "present"), [("2025-06-01", True), ("2026-11-01", False), (None, False)])
def test_a_run_is_at_the_present_only_at_its_drops_latest_as_of(tmp_path, latest, present):
    from training.train import at_latest_as_of

    Workspace(tmp_path).update_manifest(as_of="2025-06-01", latest_as_of=latest)
    assert at_latest_as_of(tmp_path) is present


def test_an_inspection_after_as_of_is_not_already_found(tmp_path):
    from serving.scoring import recorded_violations

    ws = Workspace(tmp_path)
    ws.write("typed", "inspections", DROP.assign(inspected_on=pd.to_datetime(DROP["inspected_on"])))
    ws.update_manifest(as_of="2025-06-01")
    assert recorded_violations(ws) == {X}
    ws.update_manifest(as_of="2026-01-01")
    assert recorded_violations(ws) == {X, Y}


# -- the as-of on the command line ---------------------------------------------


def _said(result) -> str:
    """The command's output as one line of words (the error box and its line breaks taken out)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


@pytest.mark.parametrize("given", ["2025-06-15", "06/01/2025", "June 2025", "2025-06", "2025-02-30"])
def test_cli_refuses_an_as_of_that_is_not_a_month_start(tmp_path, given):
    from waterwatch.cli import app

    for command in (["pipeline", "--out", str(tmp_path / "out")], ["ingest", "--workspace", str(tmp_path / "ws")]):
        result = CliRunner().invoke(app, [*command, "--data", str(tmp_path / "no-drop"), "--as-of", given])
        assert result.exit_code == 2, result.output
        said = _said(result)
        assert "Invalid value for '--as-of'" in said and f"as-of {given}" in said.replace("'", ""), said
        assert ("first day of a month" if given == "2025-06-15" else "YYYY-MM-DD" if "/" in given or " " in given
                or len(given) == 7 else "not a valid date") in said, said
        assert not (tmp_path / "out").exists() and not (tmp_path / "ws").exists()  # refused before any work


@pytest.fixture(scope="module")
def small_drop(tmp_path_factory):
    """A 40-entity generated drop whose last month is 2026-10."""
    from synth import SynthConfig, generate_city

    root = tmp_path_factory.mktemp("as-of-drop")
    generate_city(SynthConfig(entities=40, seed=2, months=15), root)
    return root


def test_cli_refuses_an_as_of_past_the_drops_data(small_drop, tmp_path):
    from waterwatch.cli import app

    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false"}
    ws = tmp_path / "ws"
    for late in ("2027-06-01", "2026-12-01"):
        result = CliRunner().invoke(app, ["ingest", "--data", str(small_drop), "--workspace", str(ws), "--as-of", late],
                                    env=env)
        assert result.exit_code == 2, result.output
        assert f"as-of {late} is after the drop's data" in _said(result) and "latest as-of is 2026-11-01" in _said(result)
        assert Workspace(ws).manifest().get("as_of") is None  # no later stage runs on a refused as-of
    ok = CliRunner().invoke(app, ["ingest", "--data", str(small_drop), "--workspace", str(ws), "--as-of", "2026-11-01"],
                            env=env)
    assert ok.exit_code == 0, ok.output
    manifest = Workspace(ws).manifest()
    assert manifest["as_of"] == manifest["latest_as_of"] == "2026-11-01"


# -- features -----------------------------------------------------------------


def _late_account_city() -> tuple[dict[str, pd.DataFrame], str]:
    """A random city (months 2022-01 to 2024-12) where an entity registered before it and never deregistered
    opens another supply account in 2024-03 and a sewer account in 2024-09."""
    city = random_city()
    ents = city["entities"]
    code = ents[(ents["registered_on"] < pd.Timestamp("2022-01-01")) & ents["deregistered_on"].isna()]["uscc"].iloc[0]
    late = monthly("S-LATE", code, [500.0] * 10, pd.date_range("2024-03-01", periods=10, freq="MS"))
    sewer = monthly("D-LATE", code, [900.0] * 4, pd.date_range("2024-09-01", periods=4, freq="MS"), measured=True)
    city["supply"] = pd.concat([city["supply"], typed("supply", late)], ignore_index=True)
    city["discharge"] = pd.concat([city["discharge"], typed("discharge", sewer)], ignore_index=True)
    return city, code


def test_link_columns_count_an_account_from_its_first_bill_on():
    city, code = _late_account_city()
    links = links_from_accounts(city, {"S-LATE": 0.6, "D-LATE": 0.9})
    before = links[(links["uscc"] == code) & ~links["account_id"].isin(["S-LATE", "D-LATE"])]
    n, conf = len(before), before["confidence"].tolist()
    prof = build_profiles(city, links, pd.Timestamp("2025-01-01")).set_index(["uscc", "month"])
    at = lambda month: prof.loc[(code, pd.Timestamp(month))]  # noqa: E731
    assert at("2024-02-01")["linked_accounts"] == n
    assert at("2024-03-01")["linked_accounts"] == n + 1  # counted from its first bill's month
    assert at("2024-03-01")["link_confidence_min"] == pytest.approx(0.6)
    assert at("2024-08-01")["link_confidence_mean"] == pytest.approx(np.mean(conf + [0.6]))
    assert at("2024-09-01")["linked_accounts"] == n + 2
    assert at("2024-02-01")["link_confidence_min"] == pytest.approx(min(conf))
    # the snapshot at 2024-03-01 reads February: the supply account first billed in March is not there yet
    snap = entity_snapshot(prof.reset_index(), city, pd.Timestamp("2024-03-01"))
    assert snap.loc[code, "linked_accounts"] == n


@pytest.mark.parametrize("as_of", [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-09-01")])
def test_snapshot_on_the_full_drop_equals_one_on_the_drop_cut_at_as_of(as_of):
    """Built on everything (links over the whole drop, profiles up to its end, as a backtest does; or at as_of,
    as a historical run does) or on only what was known at as_of (its own links): every column is the same."""
    city, _ = _late_account_city()
    links = links_from_accounts(city)
    cut = truncate(city, as_of)
    known = entity_snapshot(build_profiles(cut, links_from_accounts(cut), as_of), cut, as_of)
    pd.testing.assert_frame_equal(known, entity_snapshot(build_profiles(city, links, as_of), city, as_of))
    pd.testing.assert_frame_equal(known, entity_snapshot(build_profiles(city, links, pd.Timestamp("2025-01-01")), city, as_of))


def test_a_day_inside_a_month_counts_as_its_first_day():
    """Library callers passing a mid-month as-of get the month's snapshot: last month's columns filled, 12
    months counted, nothing of the as-of month read."""
    city, _ = _late_account_city()
    links = links_from_accounts(city)
    prof = build_profiles(city, links, pd.Timestamp("2024-06-15"))
    assert prof["month"].max() == pd.Timestamp("2024-05-01")
    start = entity_snapshot(prof, city, pd.Timestamp("2024-06-01"))
    mid = entity_snapshot(prof, city, pd.Timestamp("2024-06-15"))
    pd.testing.assert_frame_equal(start, mid)
    assert start["supply_m3_12m"].notna().any()
