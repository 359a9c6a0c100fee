"""Structurally malformed CSV lines (a field too many or too few, a stray quote) are quarantined one row each
with file, row, column and reason, the rest of the file is read, whole or in chunks alike; a header that
names a column twice refuses the table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import TABLES
from features.csv_lines import is_plain
from features.ingest import IngestError, ingest, ingest_table, validate_table
from features.ingest_files import read_raw
from features.workspace import Workspace
from waterwatch.cli import app

SUPPLY = TABLES["supply"]


def _lines(sample_drop: Path, table: str, rows: int) -> list[str]:
    """The header and the first ``rows`` data lines of a sample table, as written (BOM included)."""
    return (sample_drop / f"{table}.csv").read_text(encoding="utf-8").split("\n")[: rows + 1]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _both_ways(path: Path, tmp_path: Path, chunk_rows: int = 7):
    """The whole-file result and the chunked one, after checking that they agree exactly."""
    whole = validate_table(SUPPLY, read_raw(path), path.name)
    streamed = ingest_table(SUPPLY, path, tmp_path / "typed.parquet", chunk_rows=chunk_rows)
    assert streamed["summary"] == whole.summary
    pd.testing.assert_frame_equal(streamed["quarantine"], whole.quarantine, check_dtype=False)
    typed = pd.read_parquet(tmp_path / "typed.parquet").astype(whole.accepted.dtypes)
    pd.testing.assert_frame_equal(typed, whole.accepted, check_exact=True)
    summary = whole.summary
    assert summary["read"] == summary["accepted"] + summary["quarantined"]
    return whole


def _rows(result) -> dict[int, tuple[str, str]]:
    return {int(r.row_number): (r.column, r.reason) for r in result.quarantine.itertuples()}


def test_an_extra_field_is_one_quarantined_row_and_the_rest_is_read(sample_drop, tmp_path):
    lines = _lines(sample_drop, "supply", 40)
    lines[10] += ",extra"  # data row 10
    lines[20] = lines[20].rsplit(",", 1)[0] + ",-5"  # an ordinary bad cell keeps its row number
    result = _both_ways(_write(tmp_path / "supply.csv", lines), tmp_path)
    assert _rows(result) == {10: ("(extra fields)", "7 fields where the header has 6 (line 11)"),
                             20: ("volume_m3", "negative value")}
    assert result.quarantine.loc[0, "value"] == lines[10]
    assert result.summary == {"read": 40, "accepted": 38, "quarantined": 2}
    assert not {10, 20} & set(result.accepted["source_row"])


def test_too_few_fields_are_quarantined_not_padded(sample_drop, tmp_path):
    """Before, pandas padded a short line with empty cells: in entities, whose last two columns may be
    empty, a line that lost them was accepted silently."""
    lines = _lines(sample_drop, "entities", 20)
    lines[5] = ",".join(lines[5].split(",")[:7])
    _write(tmp_path / "entities.csv", lines)
    whole = validate_table(TABLES["entities"], read_raw(tmp_path / "entities.csv"), "entities.csv")
    assert _rows(whole) == {5: ("employees,registered_capital_wan", "7 fields where the header has 9 (line 6)")}
    assert whole.summary == {"read": 20, "accepted": 19, "quarantined": 1}

    lines = _lines(sample_drop, "supply", 30)
    lines[12] = ",".join(lines[12].split(",")[:3])
    result = _both_ways(_write(tmp_path / "supply.csv", lines), tmp_path)
    assert _rows(result) == {12: ("uscc,month,volume_m3", "3 fields where the header has 6 (line 13)")}


def test_an_unbalanced_quote_costs_its_own_line_only(sample_drop, tmp_path):
    lines = _lines(sample_drop, "supply", 40)
    head, name, rest = lines[7].split(",", 2)
    lines[7] = f'{head},"{name},{rest}'  # the quote opened before the name never closes
    fields = lines[25].split(",")
    lines[25] = ",".join(fields[:-1] + ['"1,234"'])  # a later quote would have closed it
    lines[40] = lines[40].replace(",", ',"', 1)  # and one on the last line, up to the end of the file
    result = _both_ways(_write(tmp_path / "supply.csv", lines), tmp_path)
    rows = _rows(result)
    assert rows[7] == ("account_name", "unbalanced quote (line 8; reading goes on at the next line)")
    assert rows[40][0] == "account_name" and rows[40][1].startswith("unbalanced quote (line 41")
    assert rows[25] == ("volume_m3", "not a number")
    assert result.summary == {"read": 40, "accepted": 37, "quarantined": 3}
    assert set(result.accepted["source_row"]) == set(range(1, 41)) - {7, 25, 40}


def test_text_after_a_closing_quote_is_malformed(sample_drop, tmp_path):
    lines = _lines(sample_drop, "supply", 12)
    head, name, rest = lines[3].split(",", 2)
    lines[3] = f'{head},"{name}"x,{rest}'  # pandas read this as the name with an x appended
    result = _both_ways(_write(tmp_path / "supply.csv", lines), tmp_path)
    assert _rows(result) == {3: ("account_name", "text after a closing quote (line 4; reading goes on at the next line)")}


def test_a_quoted_line_break_is_text_and_a_stray_quote_may_not_swallow_records(sample_drop, tmp_path):
    """The contract's text is as the departments write it: a quoted value may span lines (one row). A quote
    left open that would swallow whole record-like lines up to a later stray quote is still a stray quote."""
    lines = _lines(sample_drop, "supply", 30)
    head, name, rest = lines[4].split(",", 2)
    lines[4] = f'{head},"{name}\n二厂",{rest}'  # data row 4 on lines 5-6
    head, name, rest = lines[10].split(",", 2)
    lines[10] = f'{head},"{name},{rest}'
    head, name, rest = lines[14].split(",", 2)
    lines[14] = f'{head},{name}",{rest}'  # the same column, closing "properly" four lines later
    lines[20] = lines[20].rsplit(",", 1)[0] + ",abc"
    result = _both_ways(_write(tmp_path / "supply.csv", lines), tmp_path)
    assert _rows(result) == {10: ("account_name", "unbalanced quote (line 12; reading goes on at the next line)"),
                             20: ("volume_m3", "not a number")}
    accepted = result.accepted.set_index("source_row")
    assert accepted.loc[4, "account_name"] == name_of(sample_drop, 4) + "\n二厂"
    assert accepted.loc[14, "account_name"].endswith('"')  # an ordinary text value once row 10 is set aside
    assert result.summary == {"read": 30, "accepted": 28, "quarantined": 2}


def name_of(sample_drop: Path, row: int) -> str:
    return _lines(sample_drop, "supply", row)[row].split(",")[1]


def test_the_fast_path_and_the_record_path_read_alike(sample_drop, tmp_path):
    """A clean file goes straight to pandas; one quote sends it through the csv module record by record.
    Blank lines are no rows either way; the accepted rows are the same."""
    lines = _lines(sample_drop, "supply", 50)
    lines.insert(20, "")
    lines.insert(30, "  ")
    plain = _both_ways(_write(tmp_path / "plain.csv", lines), tmp_path)
    quoted = list(lines)
    quoted[3] = '"' + quoted[3].replace(",", '",', 1)  # a needless but valid quote
    (tmp_path / "quoted").mkdir()
    via_records = _both_ways(_write(tmp_path / "quoted" / "plain.csv", quoted), tmp_path / "quoted")
    assert plain.summary == via_records.summary == {"read": 50, "accepted": 50, "quarantined": 0}
    pd.testing.assert_frame_equal(plain.accepted, via_records.accepted, check_exact=True)


def test_windows_line_ends_take_the_fast_path_and_a_bad_line_is_still_caught(sample_drop, tmp_path):
    lines = _lines(sample_drop, "supply", 20)
    path = tmp_path / "supply.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert is_plain(path, 6)
    lines[9] += ",x,y"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert not is_plain(path, 6)
    result = _both_ways(path, tmp_path, chunk_rows=4)
    assert _rows(result) == {9: ("(extra fields)", "8 fields where the header has 6 (line 10)")}
    assert result.quarantine.loc[0, "value"] == lines[9]


def test_a_drop_with_malformed_lines_ingests_with_every_row_accounted_for(sample_drop, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    for f in sample_drop.glob("*.csv"):
        if f.stem in TABLES:
            _write(drop / f.name, _lines(sample_drop, f.stem, 120))
    supply = _lines(sample_drop, "supply", 120)
    supply[110] += ",extra"
    supply[60] = supply[60].replace(",", ',"', 2)
    _write(drop / "supply.csv", supply)
    for chunk_rows in (1_000_000, 50):
        ws = Workspace(tmp_path / f"ws{chunk_rows}")
        summary = ingest(drop, ws, chunk_rows=chunk_rows)
        assert summary["supply"] == {"read": 120, "accepted": 118, "quarantined": 2}
        assert all(s["read"] == s["accepted"] + s["quarantined"] for s in summary.values())
        quarantine = pd.read_csv(ws.stage("quarantine") / "quarantine.csv", dtype=str)
        assert quarantine[["file", "row_number"]].values.tolist() == [["supply.csv", "60"], ["supply.csv", "110"]]


def test_a_header_naming_a_column_twice_refuses_the_table(sample_drop, tmp_path):
    drop = tmp_path / "drop"
    shutil.copytree(sample_drop, drop, ignore=shutil.ignore_patterns("truth.csv", "link_truth.csv"))
    tax = _lines(sample_drop, "tax", 30)
    tax = [line + ("," + line.split(",")[3] if i else ",declared_m3 ") for i, line in enumerate(tax)]
    _write(drop / "tax.csv", tax)
    with pytest.raises(IngestError, match=r"tax\.csv: the header names column\(s\) declared_m3 more than once"):
        ingest(drop, Workspace(tmp_path / "ws"))
    result = CliRunner().invoke(app, ["ingest", "--data", str(drop), "--workspace", str(tmp_path / "ws2")])
    assert result.exit_code == 2
    assert "tax.csv" in result.output and "declared_m3" in result.output and "Traceback" not in result.output
