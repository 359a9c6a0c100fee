"""The whole pipeline on the shared sample drop, as a client's data we did not write."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from waterwatch.cli import app
from waterwatch.pipeline import OUTPUT_FILES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_run(sample_drop, tmp_path_factory):
    out = tmp_path_factory.mktemp("sample-run")
    env = {
        "WATERWATCH_HOME": str(out / "var"),
        "WATERWATCH_SHOW_PROGRESS": "false",
        "WATERWATCH_MODEL__BACKTEST_CUTOFFS": "2",
    }
    result = CliRunner().invoke(app, ["pipeline", "--data", str(sample_drop), "--out", str(out), "--trials", "3"], env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


def test_every_output_is_written(sample_run):
    for name in OUTPUT_FILES:
        assert (sample_run / name).exists(), name


def test_every_row_is_accounted_for(sample_run, sample_drop):
    summary = json.loads((sample_run / "ingest_summary.json").read_text())
    for table, row in summary.items():
        raw_rows = len(pd.read_csv(sample_drop / f"{table}.csv", dtype=str))
        assert row["read"] == raw_rows == row["accepted"] + row["quarantined"], table


def test_leads_rank_every_live_entity_once(sample_run, sample_drop):
    leads = pd.read_csv(sample_run / "leads.csv", dtype={"uscc": str})
    entities = pd.read_csv(sample_drop / "entities.csv", dtype=str)
    live = entities[entities["deregistered_on"].isna() | (entities["deregistered_on"] >= "2026-11-01")]
    live = live[live["registered_on"] < "2026-11-01"]
    assert set(leads["uscc"]) == set(live["uscc"])
    assert leads["uscc"].is_unique
    assert sorted(leads["rank"]) == list(range(1, len(leads) + 1))
    assert leads["risk_score"].between(0, 1).all()
    # by score, except that entities whose violation an inspection recorded (no longer hidden) come last
    inspections = pd.read_csv(sample_drop / "inspections.csv", dtype=str)
    found = set(inspections.loc[inspections["outcome"] == "violation", "uscc"].str.upper())
    ordered = leads.sort_values("rank")
    known = ordered["uscc"].str.upper().isin(found)
    assert known.any() and not known.iloc[: (~known).sum()].any()
    assert ordered.loc[~known, "risk_score"].is_monotonic_decreasing
    assert ordered.loc[known, "risk_score"].is_monotonic_decreasing
    top = leads.nsmallest(20, "rank")
    assert top["reasons"].str.len().gt(0).all(), "every top lead needs reasons an officer can act on"


def test_top_leads_find_hidden_violations(sample_run, sample_drop, report_metric):
    """Evaluation only: ../shared/evaluation/evaluate.py reads the sample's truth, never the platform."""
    from test_ranking_measured import measure

    res = measure(sample_drop, sample_run / "leads.csv", report_metric, "sample-city")
    assert res["project"]["ap"] > 2 * res["naive"]["ap"] and res["project"]["p@1pct"] > 3 * res["random"]["p@1pct"]


def test_leads_carry_reason_codes_and_the_documented_breach_flag(sample_run):
    """INTERFACES.md: reason_codes is a JSON list in the order of reasons; documented_breach is informational."""
    leads = pd.read_csv(sample_run / "leads.csv", dtype={"uscc": str})
    assert {"reason_codes", "documented_breach"} <= set(leads.columns)
    for reasons, codes in zip(leads["reasons"], leads["reason_codes"]):
        parsed = json.loads(codes)
        assert parsed and all({"code", "value", "unit", "text_zh", "text_en"} <= set(r) for r in parsed)
        assert [r["text_zh"] for r in parsed] == str(reasons).split("；")
    assert leads["documented_breach"].dtype == bool


def test_alert_and_link_outputs_are_well_formed(sample_run):
    alerts = pd.read_csv(sample_run / "alerts.csv", dtype=str)
    assert {"kind", "level", "uscc", "permit_id", "value", "threshold", "message"} <= set(alerts.columns)
    assert alerts["message"].str.len().gt(0).all()
    links = pd.read_csv(sample_run / "linkage.csv", dtype=str)
    assert {"account_id", "uscc", "method", "confidence"} <= set(links.columns)
    assert links[["source", "account_id"]].drop_duplicates().shape[0] == len(links)
    report = (sample_run / "report.html").read_text(encoding="utf-8")
    assert report.count('<svg class="chart') >= 4  # cases, alerts, quota use, the city's monthly balance
    assert "企业用水画像" in report and "<h2>模型回测</h2>" in report and "案件：已有记录证实的违规" in report
    assert re.search(r'<td class="n">\d+</td><td class="short">(0\.\d\d|1\.00|—)</td>', report)  # a precision, or none
    cases = pd.read_csv(sample_run / "cases.csv", dtype=str, keep_default_na=False)
    from models.cases import CASE_COLUMNS

    assert list(cases.columns) == CASE_COLUMNS and cases["case_id"].is_unique and (cases["status"] == "open").all()
    breach = alerts[alerts["kind"].isin(["expired_permit", "unpermitted", "tax_mismatch", "source_prevention"])
                    | ((alerts["kind"] == "quota") & (alerts["level"] == "red"))]
    assert sorted(";".join(cases["alert_ids"]).split(";")) == sorted(breach["alert_id"])


def test_stage_commands_rerun_on_the_workspace(sample_run, tmp_path):
    """`waterwatch check` and `waterwatch score` re-run single stages and agree with the pipeline's outputs."""
    env = {"WATERWATCH_HOME": str(sample_run / "var"), "WATERWATCH_SHOW_PROGRESS": "false"}
    ws = str(sample_run / "workspace")
    runner = CliRunner()
    checked = runner.invoke(app, ["check", "--workspace", ws], env=env)
    assert checked.exit_code == 0, checked.output
    assert "0 new messages" in checked.output, "the same reminders must not be queued twice"
    scored = runner.invoke(app, ["score", "--workspace", ws, "--out", str(tmp_path / "leads.csv")], env=env)
    assert scored.exit_code == 0, scored.output
    again = pd.read_csv(tmp_path / "leads.csv", dtype={"uscc": str})
    first = pd.read_csv(sample_run / "leads.csv", dtype={"uscc": str})
    pd.testing.assert_frame_equal(again, first)
