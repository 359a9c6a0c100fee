"""Review of ingest and the permit checks, round 2 (session 9): each test is a defect found on hand-made data
with a known answer, failing before its fix."""

from __future__ import annotations

import pandas as pd
import pytest

from features.contract import TABLES
from features.ingest import IngestError, ingest_table
from models.cases import build_cases
from models.rules import run_checks, unpermitted_abstraction
from models.settings import RuleSettings
from test_rules import entity, make_tables, meter, permit

RULES = RuleSettings()
U1, U2 = "91371402MA0000001X", "91371402MA0000002X"
PLANS = "uscc,year,planned_m3\n"
ENTITY_HEADER = "uscc,name,industry_code,district,address,registered_on,deregistered_on,employees,registered_capital_wan\n"


# -- 1. a CSV that is not UTF-8 ---------------------------------------------------------------------------


def _ingest_bytes(tmp_path, table: str, data: bytes, chunk_rows: int = 1_000_000) -> tuple[dict, pd.DataFrame]:
    (tmp_path / f"{table}.csv").write_bytes(data)
    done = ingest_table(TABLES[table], tmp_path / f"{table}.csv", tmp_path / "typed.parquet", chunk_rows=chunk_rows)
    return done, pd.read_parquet(tmp_path / "typed.parquet")


@pytest.mark.parametrize("chunk_rows", [1_000_000, 1], ids=["whole", "chunked"])
def test_a_line_in_gbk_is_quarantined_with_its_file_line_and_column(tmp_path, chunk_rows):
    """The contract says UTF-8. A line a clerk pasted in GBK stopped the whole ingest with "'utf-8' codec can't
    decode byte 0xb5 in position 151": a byte offset, no row, no column. It is one quarantined row now, named by
    file, row, line and column, and the rest of the file is read."""
    data = (ENTITY_HEADER + f"{U1},德州甲公司,C1713,德城区,,,,,\n").encode("utf-8")
    data += f"{U2},德州乙公司,C1713,德城区,,,,,\n".encode("gbk")
    data += f"{U1[:-1]}3,德州丙公司,C1713,德城区,,,,,\n".encode("utf-8")
    done, typed = _ingest_bytes(tmp_path, "entities", data, chunk_rows)
    assert done["summary"] == {"read": 3, "accepted": 2, "quarantined": 1}
    bad = done["quarantine"].iloc[0]
    assert (bad["file"], bad["row_number"], bad["column"]) == ("entities.csv", 2, "name")
    assert "UTF-8" in bad["reason"] and "line 3" in bad["reason"]
    assert bad["value"].startswith(U2) and "德州乙公司" in bad["value"]  # shown as GB18030 reads it
    assert typed["name"].tolist() == ["德州甲公司", "德州丙公司"]


def test_a_whole_gbk_file_keeps_the_accounting_identity(tmp_path):
    """Every line holding Chinese is quarantined (each with its line); the ASCII-only line is read."""
    data = (PLANS + f"{U1},2025,100\n").encode("utf-8") + "丙公司,2025,5\n".encode("gbk") * 2
    done, typed = _ingest_bytes(tmp_path, "plans", data)
    assert done["summary"] == {"read": 3, "accepted": 1, "quarantined": 2}
    assert done["quarantine"]["row_number"].tolist() == [2, 3]
    assert ["line 3" in r for r in done["quarantine"]["reason"]] == [True, False]


def test_a_header_that_is_not_utf8_refuses_the_file_naming_file_and_line(tmp_path):
    (tmp_path / "plans.csv").write_bytes("uscc,year,planned_m3,备注\n".encode("gbk") + f"{U1},2025,100,\n".encode())
    with pytest.raises(IngestError) as err:
        ingest_table(TABLES["plans"], tmp_path / "plans.csv", tmp_path / "typed.parquet")
    assert "plans.csv" in str(err.value) and "line 1" in str(err.value) and "UTF-8" in str(err.value)
    assert "position" not in str(err.value)


# -- 2. a text column Parquet stores as float --------------------------------------------------------------


def test_integral_floats_in_a_parquet_text_column_read_as_their_integer_text(tmp_path):
    """pandas writes an id column with gaps as float64: 240639490 became "240639490.0" and the account no longer
    matched its discharge account or its links. A fraction in a code column is quarantined, not kept as text."""
    frame = pd.DataFrame({
        "account_id": [240639490.0, 240639491.0, 2.5], "account_name": [12.0, None, None],
        "address": [None, None, None], "uscc": [None, None, None],
        "month": ["2025-01", "2025-01", "2025-01"], "volume_m3": [1.0, 2.0, 3.0],
    })
    frame.to_parquet(tmp_path / "supply.parquet", index=False)
    done = ingest_table(TABLES["supply"], tmp_path / "supply.parquet", tmp_path / "typed.parquet")
    typed = pd.read_parquet(tmp_path / "typed.parquet")
    assert typed["account_id"].tolist() == ["240639490", "240639491"]
    assert typed["account_name"].tolist()[0] == "12"
    assert done["summary"] == {"read": 3, "accepted": 2, "quarantined": 1}
    bad = done["quarantine"].iloc[0]
    assert (bad["row_number"], bad["column"], bad["value"]) == (3, "account_id", "2.5")
