"""The HTML run report: self-contained, with its charts embedded and the numbers of the run."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from features.ingest import ingest
from features.workspace import Workspace
from models.rules import run_checks, water_rights_candidates
from serving.report import write_report
from models.settings import RuleSettings


@pytest.fixture(scope="module")
def run(sample_drop, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("report") / "ws")
    ingest(sample_drop, ws)
    tables, as_of = ws.typed_tables(), ws.as_of()
    rules = RuleSettings()
    return tables, as_of, run_checks(tables, None, as_of, rules), water_rights_candidates(tables, None, as_of, rules)


def test_report_is_self_contained_with_images_and_numbers(run, tmp_path):
    tables, as_of, alerts, matches = run
    path = write_report(tmp_path / "out", alerts, matches, tables, as_of, extra_sections={"回测": "<p id='bt'>AUC 0.81</p>"})
    assert path == tmp_path / "out" / "report.html"
    page = path.read_text(encoding="utf-8")

    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from outside

    assert f"<b>{len(alerts):,}</b>预警总数" in page
    assert f"<b>{int((alerts['audience'] == 'user').sum()):,}</b>发送用户短信" in page
    for (kind, level), n in alerts.groupby(["kind", "level"]).size().items():
        assert f"<td>{kind}</td><td>{level}</td><td class=\"n\">{n:,}</td>" in page
    for district in set(alerts["district"]) - {""}:
        assert f"<td>{district}</td>" in page
    n_permits = int(re.search(r"许可证 ([\d,]+) 本", page).group(1).replace(",", ""))
    year = (as_of - pd.Timedelta(days=1)).year
    permits = tables["permits"]
    in_force = permits[(permits["status"] == "valid") & (permits["valid_from"] < as_of) & (permits["valid_to"] >= pd.Timestamp(year, 1, 1))
                       & (permits["annual_quota_m3"] > 0)]
    assert n_permits == len(in_force)
    assert "<h2>回测</h2>" in page and "AUC 0.81" in page


def test_report_with_no_alerts_still_writes(run, tmp_path):
    tables, as_of, alerts, matches = run
    path = write_report(tmp_path, alerts.iloc[0:0], matches.iloc[0:0], tables, as_of, extra_sections=["<p>raw</p>"])
    page = path.read_text(encoding="utf-8")
    assert "本期无预警" in page and "<b>0</b>预警总数" in page and "<p>raw</p>" in page
    assert page.count("data:image/png;base64,") == 1  # the quota distribution still has data


def test_report_has_the_cases_by_kind_with_their_action(run, tmp_path):
    from models.cases import ACTION_CN, KIND_CN, build_cases

    tables, as_of, alerts, matches = run
    cases = build_cases(tables, None, alerts, as_of, RuleSettings())
    assert len(cases) > 0
    page = write_report(tmp_path, alerts, matches, tables, as_of, cases=cases).read_text(encoding="utf-8")
    assert f"案件 {len(cases):,} 件" in page
    for (kind, action), n in cases.groupby(["kind", "action"]).size().items():
        assert f"<td>{KIND_CN[kind]}</td><td>{ACTION_CN[action]}</td><td class=\"n\">{n:,}</td>" in page
    largest = cases.sort_values("volume_at_stake_m3", ascending=False).iloc[0]
    assert largest["evidence_text"] in page
    empty = write_report(tmp_path / "none", alerts, matches, tables, as_of, cases=cases.iloc[0:0]).read_text(encoding="utf-8")
    assert "本期无案件" in empty
