"""Ingest: every row accounted for, bad rows quarantined with file/row/column/reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import TABLES
from features.ingest import IngestError, ingest
from features.workspace import Workspace
from waterwatch.cli import app


def _copy_drop(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.csv"):
        if f.name != "truth.csv":
            shutil.copy(f, dst / f.name)
    return dst


def _break_cells(path: Path, edits: dict[int, dict[str, str]], append_copy_of: int | None = None) -> None:
    """Overwrite cells by data-row number (from 1), working on the raw text like a careless clerk."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for row, cells in edits.items():
        for column, value in cells.items():
            frame.loc[row - 1, column] = value
    if append_copy_of is not None:
        frame = pd.concat([frame, frame.iloc[[append_copy_of - 1]]], ignore_index=True)
    frame.to_csv(path, index=False)


@pytest.fixture
def broken_drop(sample_drop, tmp_path) -> tuple[Path, set[tuple[str, int, str]]]:
    drop = _copy_drop(sample_drop, tmp_path / "drop")
    _break_cells(
        drop / "supply.csv",
        {3: {"month": "2026-13"}, 5: {"volume_m3": "-5"}, 7: {"volume_m3": "abc"}, 9: {"account_id": ""}},
        append_copy_of=1,
    )
    n_supply = len(pd.read_csv(drop / "supply.csv", dtype=str))
    _break_cells(drop / "abstraction.csv", {2: {"month": "2025/01"}, 4: {"volume_m3": "1e400"}})
    _break_cells(drop / "permits.csv", {1: {"valid_to": "2025-02-30"}, 2: {"source": "river"}})
    _break_cells(drop / "entities.csv", {6: {"employees": "12.5"}})
    expected = {
        ("supply", 3, "month"),
        ("supply", 5, "volume_m3"),
        ("supply", 7, "volume_m3"),
        ("supply", 9, "account_id"),
        ("supply", n_supply, "account_id,month"),
        ("abstraction", 2, "month"),
        ("abstraction", 4, "volume_m3"),
        ("permits", 1, "valid_to"),
        ("permits", 2, "source"),
        ("entities", 6, "employees"),
    }
    return drop, expected


def test_sample_drop_ingests_cleanly(sample_drop, tmp_path):
    summary = ingest(sample_drop, Workspace(tmp_path / "ws"))
    assert set(summary) == set(TABLES)
    for name, row in summary.items():
        assert row["read"] == row["accepted"] + row["quarantined"], name
        assert row["quarantined"] == 0, name
    assert Workspace(tmp_path / "ws").as_of() == pd.Timestamp("2026-11-01")


def test_malformed_rows_are_quarantined_exactly(broken_drop, tmp_path):
    drop, expected = broken_drop
    ws = Workspace(tmp_path / "ws")
    summary = ingest(drop, ws)
    quarantine = pd.read_csv(ws.stage("quarantine") / "quarantine.csv", dtype=str)
    found = {(r.table, int(r.row_number), r.column) for r in quarantine.itertuples()}
    assert found == expected
    assert set(quarantine["file"]) >= {"supply.csv", "abstraction.csv", "permits.csv", "entities.csv"}
    assert quarantine["reason"].notna().all()
    for name, row in summary.items():
        assert row["read"] == row["accepted"] + row["quarantined"], name
    assert summary["supply"]["quarantined"] == 5
    # accepted rows keep their source row numbers, and none of the broken ones
    supply = ws.read("typed", "supply")
    assert not set(supply["source_row"]) & {3, 5, 7, 9}
    assert supply["volume_m3"].ge(0).all()


def test_mistyped_uscc_is_a_finding_not_a_rejection(sample_drop, tmp_path):
    drop = _copy_drop(sample_drop, tmp_path / "drop")
    entities = pd.read_csv(drop / "entities.csv", dtype=str, keep_default_na=False)
    code = entities.loc[0, "uscc"]
    wrong_check = "0" if code[-1] != "0" else "1"
    _break_cells(drop / "entities.csv", {1: {"uscc": code[:-1] + wrong_check}})
    ws = Workspace(tmp_path / "ws")
    summary = ingest(drop, ws)
    assert summary["entities"]["quarantined"] == 0
    typed = ws.read("typed", "entities")
    assert typed.loc[typed["source_row"] == 1, "uscc_valid"].tolist() == [False]
    assert ws.manifest()["sources"]["entities"]["uscc_findings"] == 1


def test_ingest_is_idempotent(sample_drop, tmp_path):
    ws = Workspace(tmp_path / "ws")
    ingest(sample_drop, ws)
    first = {name: ws.read("typed", name) for name in TABLES}
    ingest(sample_drop, ws)
    for name in TABLES:
        pd.testing.assert_frame_equal(first[name], ws.read("typed", name))
    assert ws.manifest()["sources"]["supply"]["sha256"]


def test_parquet_and_csv_mixed(sample_drop, tmp_path):
    drop = _copy_drop(sample_drop, tmp_path / "drop")
    supply = pd.read_csv(drop / "supply.csv", dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    supply["volume_m3"] = supply["volume_m3"].astype(float)
    supply.to_parquet(drop / "supply.parquet", index=False)
    (drop / "supply.csv").unlink()
    summary = ingest(drop, Workspace(tmp_path / "ws"))
    assert summary["supply"] == {"read": len(supply), "accepted": len(supply), "quarantined": 0}
    typed = Workspace(tmp_path / "ws").read("typed", "supply")
    assert typed["account_id"].str.len().min() >= 1 and typed["account_id"].iloc[0].startswith("0")


def test_optional_table_may_be_missing(sample_drop, tmp_path):
    drop = _copy_drop(sample_drop, tmp_path / "drop")
    (drop / "projects.csv").unlink()
    ws = Workspace(tmp_path / "ws")
    summary = ingest(drop, ws)
    assert "projects" not in summary
    assert list(ws.typed_tables()["projects"].columns)[:3] == ["project_id", "uscc", "project_name"]


def test_missing_required_table_is_a_clear_error_with_exit_code_2(sample_drop, tmp_path):
    drop = _copy_drop(sample_drop, tmp_path / "drop")
    (drop / "permits.csv").unlink()
    with pytest.raises(IngestError, match="required table 'permits'"):
        ingest(drop, Workspace(tmp_path / "ws"))
    result = CliRunner().invoke(app, ["ingest", "--data", str(drop), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "permits" in result.output and "Traceback" not in result.output


def test_missing_required_column_names_file_and_column(sample_drop, tmp_path):
    drop = _copy_drop(sample_drop, tmp_path / "drop")
    tax = pd.read_csv(drop / "tax.csv", dtype=str).drop(columns=["declared_m3"])
    tax.to_csv(drop / "tax.csv", index=False)
    result = CliRunner().invoke(app, ["ingest", "--data", str(drop), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "tax.csv" in result.output and "declared_m3" in result.output
    assert "Traceback" not in result.output


def test_ingest_in_chunks_equals_one_piece_with_duplicates_across_chunks(sample_drop, tmp_path):
    """Streaming ingest (issue #13): chunk after chunk, duplicate keys found across chunks, the same
    typed rows, quarantine and counts as validating the whole file at once."""
    from features.ingest import ingest_table, validate_table
    from features.ingest_files import read_raw

    path = tmp_path / "supply.csv"
    head = pd.read_csv(sample_drop / "supply.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig").head(60)
    head.to_csv(path, index=False)
    # bad cells in several chunks, and rows 2 and 40 repeated at the end (and row 40's key again inside)
    _break_cells(path, {3: {"month": "2026-13"}, 11: {"volume_m3": "-5"}, 25: {"account_id": ""}}, append_copy_of=2)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = pd.concat([frame.iloc[:50], frame.iloc[[39]], frame.iloc[50:], frame.iloc[[39]]], ignore_index=True)
    frame.to_csv(path, index=False)
    whole = validate_table(TABLES["supply"], read_raw(path), path.name)
    streamed = ingest_table(TABLES["supply"], path, tmp_path / "typed.parquet", chunk_rows=7)
    assert streamed["summary"] == whole.summary
    assert whole.summary["quarantined"] == 6  # 3 bad cells, 3 duplicates
    assert (streamed["quarantine"]["reason"].str.startswith("duplicate key")).sum() == 3
    pd.testing.assert_frame_equal(streamed["quarantine"], whole.quarantine, check_exact=True, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "typed.parquet").astype(whole.accepted.dtypes),
                                  whole.accepted, check_exact=True)


def test_a_table_partitioned_by_month_in_parquet_and_csv_parts_ingests_like_one_file(sample_drop, tmp_path):
    """At province scale a table arrives as a folder of parts (here supply by month, Parquet, and one
    CSV part with a bad cell): the same accepted rows, the bad row named by its part."""
    drop = _copy_drop(sample_drop, tmp_path / "drop")
    supply = pd.read_csv(drop / "supply.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    (drop / "supply.csv").unlink()
    months = sorted(supply["month"].unique())
    for m in months[:-1]:
        part = drop / "supply" / f"month={m}"
        part.mkdir(parents=True)
        supply[supply["month"] == m].replace("", None).to_parquet(part / "part-0.parquet", index=False)
    last = supply[supply["month"] == months[-1]].copy()
    last.iloc[0, last.columns.get_loc("volume_m3")] = "-1"
    (drop / "supply" / f"month={months[-1]}").mkdir()
    last.to_csv(drop / "supply" / f"month={months[-1]}" / "part-0.csv", index=False)

    whole, parts = Workspace(tmp_path / "whole"), Workspace(tmp_path / "parts")
    ingest(sample_drop, whole)
    summary = ingest(drop, parts)
    assert summary["supply"]["read"] == len(supply)
    assert summary["supply"]["quarantined"] == 1
    quarantine = pd.read_parquet(parts.stage("quarantine") / "quarantine.parquet")
    assert quarantine["file"].tolist() == [f"supply/month={months[-1]}/part-0.csv"]
    key = ["account_id", "month"]
    a = whole.read("typed", "supply").drop(columns="source_row").sort_values(key).reset_index(drop=True)
    b = parts.read("typed", "supply").drop(columns="source_row").sort_values(key).reset_index(drop=True)
    bad = last.iloc[0]
    a = a[~((a["account_id"] == bad["account_id"]) & (a["month"] == pd.Timestamp(bad["month"] + "-01")))].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
