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


# -- 3. a meter on a permit whose register row was quarantined ---------------------------------------------


def test_quarantine_names_each_rows_key(tmp_path):
    """The quarantine kept the offending cell only: which permit a rejected row was could not be told."""
    (tmp_path / "permits.csv").write_text(
        "permit_id,uscc,holder_name,source,purpose,annual_quota_m3,valid_from,valid_to,status,wells\n"
        f"P1,{U1},甲,groundwater,industrial,1200,2020-01-01,2030-12-31,valid,1\n"
        f"P2,{U2},乙,groundwater,industrial,1200,2020/01/01,2030-12-31,valid,1\n", encoding="utf-8")
    done = ingest_table(TABLES["permits"], tmp_path / "permits.csv", tmp_path / "typed.parquet")
    bad = done["quarantine"].iloc[0]
    assert (bad["key"], bad["column"], bad["value"]) == ("P2", "valid_from", "2020/01/01")


def _quarantined_p2() -> tuple[dict, pd.DataFrame]:
    tables = make_tables(entities=[entity(U1), entity(U2)], permits=[permit("P1", U1)],
                         abstraction=[meter("P2", "2026-03-01", 55.0), meter("NOPE", "2026-03-01", 7.0)])
    quarantine = pd.DataFrame({"table": ["permits"], "file": ["permits.csv"], "row_number": [2], "key": ["P2"],
                               "column": ["valid_from"], "value": ["2020/01/01"], "reason": ["not a date YYYY-MM-DD"]})
    return tables, quarantine


def test_a_meter_on_a_quarantined_permit_is_no_unpermitted_use():
    """Before: "计量设施登记在不存在的许可证号P2下" and an enforcement case, though P2's register row exists and was
    only rejected at ingest. Now a warning asking to fix the register row, naming the reason; no case."""
    tables, quarantine = _quarantined_p2()
    as_of = pd.Timestamp("2026-07-01")
    alerts = unpermitted_abstraction(tables, as_of, RULES, quarantine=quarantine)
    p2 = alerts[alerts["permit_id"] == "P2"].iloc[0]
    assert "不存在" not in p2["message"] and "隔离" in p2["message"]
    assert "permits.csv" in p2["message"] and "第2行" in p2["message"] and "not a date YYYY-MM-DD" in p2["message"]
    assert p2["level"] == "warning" and p2["basis"] == "quarantined_permit"
    nope = alerts[alerts["permit_id"] == "NOPE"].iloc[0]
    assert nope["level"] == "red" and "不存在" in nope["message"]  # a number truly absent stays as it was
    all_alerts = run_checks(tables, None, as_of, RULES, quarantine=quarantine)
    cases = build_cases(tables, None, all_alerts, as_of, RULES)
    assert set(cases["permit_id"]) == {"NOPE"}
    from serving.console.alert_text import alert_text

    assert "quarantined at ingest" in alert_text(p2.to_dict(), "en")


def test_the_pipeline_passes_the_workspace_quarantine_to_the_checks(tmp_path):
    from waterwatch.pipeline import run_checks as stage_checks, run_ingest
    from waterwatch.settings import Settings

    drop = tmp_path / "drop"
    drop.mkdir()
    for name, spec in TABLES.items():
        if not spec.optional:
            (drop / f"{name}.csv").write_text(",".join(spec.column_names) + "\n", encoding="utf-8")
    (drop / "entities.csv").write_text(ENTITY_HEADER + f"{U1},甲,C1713,德城区,,,,,\n{U2},乙,C1713,德城区,,,,,\n",
                                       encoding="utf-8")
    (drop / "permits.csv").write_text(
        "permit_id,uscc,holder_name,source,purpose,annual_quota_m3,valid_from,valid_to,status,wells\n"
        f"P1,{U1},甲,groundwater,industrial,1200,2020-01-01,2030-12-31,valid,1\n"
        f"P2,{U2},乙,groundwater,industrial,-5,2020-01-01,2030-12-31,valid,1\n", encoding="utf-8")
    (drop / "abstraction.csv").write_text(
        "permit_id,meter_id,month,volume_m3,reading\nP1,M1,2026-05,10,online\nP2,M2,2026-05,20,online\n",
        encoding="utf-8")
    settings = Settings()
    run_ingest(drop, tmp_path / "ws", settings)
    from features.workspace import Workspace

    alerts = stage_checks(Workspace(tmp_path / "ws"), settings)["alerts"]
    p2 = alerts[alerts["permit_id"] == "P2"].iloc[0]
    assert p2["basis"] == "quarantined_permit" and "negative value" in p2["message"]


# -- 4. abstraction before the permit was granted (未批先取) -------------------------------------------------


def test_months_metered_before_valid_from_are_unpermitted_use():
    """P1 was granted on 2026-03-10; its meter measured January and February before it (未批先取) and no check
    said so. March, the month of the grant, is not counted; April on is permitted use."""
    tables = make_tables(
        entities=[entity(U1)],
        permits=[permit("P1", U1, start="2026-03-10", end="2031-03-09")],
        abstraction=[meter("P1", m, v) for m, v in
                     (("2025-12-01", 0.0), ("2026-01-01", 100.0), ("2026-02-01", 150.0), ("2026-03-01", 90.0),
                      ("2026-04-01", 80.0))],
    )
    alerts = unpermitted_abstraction(tables, pd.Timestamp("2026-06-01"), RULES)
    assert len(alerts) == 1
    hit = alerts.iloc[0]
    assert (hit["uscc"], hit["permit_id"], hit["period"], hit["level"], hit["basis"]) == (U1, "P1", "2026", "red",
                                                                                          "before_permit")
    assert hit["volume_at_stake_m3"] == 250.0
    assert "2026年01月至02月" in hit["message"] and "250m³" in hit["message"] and "2026年03月10日" in hit["message"]
    assert "未批先取" in hit["message"]
    cases = build_cases(tables, None, run_checks(tables, None, pd.Timestamp("2026-06-01"), RULES),
                        pd.Timestamp("2026-06-01"), RULES)
    case = cases[cases["kind"] == "unpermitted_use"].iloc[0]
    assert (case["uscc"], case["permit_id"], case["period"], case["volume_at_stake_m3"]) == (U1, "P1", "2026", 250.0)
    assert "2026年03月10日" in case["evidence_text"]


def test_use_before_the_permit_respects_as_of():
    """At 2026-02-01 only January is known, and the permit (from 2026-03-10) is not: nothing may be said yet
    from a grant that lies in the future. At 2026-04-01 January and February are."""
    tables = make_tables(
        entities=[entity(U1)],
        permits=[permit("P1", U1, start="2026-03-10", end="2031-03-09")],
        abstraction=[meter("P1", "2026-01-01", 100.0), meter("P1", "2026-02-01", 150.0)],
    )
    early = unpermitted_abstraction(tables, pd.Timestamp("2026-02-01"), RULES)
    assert not (early["basis"] == "before_permit").any()
    later = unpermitted_abstraction(tables, pd.Timestamp("2026-04-01"), RULES)
    assert later["volume_at_stake_m3"].tolist() == [250.0]


def test_months_another_permit_of_the_holder_covered_are_no_use_before_the_permit():
    """A meter booked to the renewal's number for months its predecessor covered is not 未批先取; the same months
    on a holder whose other permit is for another source are."""
    tables = make_tables(
        entities=[entity(U1), entity(U2)],
        permits=[permit("OLD", U1, start="2021-03-01", end="2026-02-28"), permit("NEW", U1, start="2026-03-01"),
                 permit("SURF", U2, source="surface", start="2021-03-01"), permit("G2", U2, start="2026-03-01")],
        abstraction=[meter("NEW", "2026-01-01", 100.0), meter("NEW", "2026-02-01", 150.0),
                     meter("G2", "2026-02-01", 40.0)],
    )
    alerts = unpermitted_abstraction(tables, pd.Timestamp("2026-06-01"), RULES)
    assert [(r.permit_id, r.volume_at_stake_m3) for r in alerts.itertuples()] == [("G2", 40.0)]
