"""The run report: self-contained, one language, codes in words, the as-of stated once, the numbers of the
run, a backtest that says when it cannot measure, and a page that fits the screen."""

from __future__ import annotations

import html as html_lib
import re
import types
from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest
from features.workspace import Workspace
from models.cases import ACTION_CN, KIND_CN, build_cases
from models.rules import run_checks, water_rights_candidates
from models.settings import RuleSettings
from serving.i18n import code_label
from serving.report import MIN_POSITIVES, backtest_section, data_period_text, profile_section, write_report

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def run(sample_drop, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("report") / "ws")
    ingest(sample_drop, ws)
    tables, as_of = ws.typed_tables(), ws.as_of()
    rules = RuleSettings()
    alerts = run_checks(tables, None, as_of, rules)
    return tables, as_of, alerts, water_rights_candidates(tables, None, as_of, rules), build_cases(tables, None, alerts, as_of, rules)


def visible_text(page: str) -> str:
    """What a reader sees: the body without tags, styles and SVG tooltips."""
    body = re.sub(r"<style>.*?</style>|<title>.*?</title>", "", page, flags=re.S)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", body))


def fake_backtest(positives: list[int], k: int = 100):
    """Backtest metrics as training.backtest returns them: one row per (cut-off, target, scorer)."""
    rows = []
    for i, n in enumerate(positives):
        for scorer, precision in (("model", 0.42), ("naive", 0.17), ("random", 0.03)):
            rows.append({"cutoff": pd.Timestamp(2025, 1 + 3 * i, 1), "target": "inspected", "scorer": scorer,
                         "positives": float(n), f"precision_at_{k}": 0.0 if n == 0 else precision})
    return types.SimpleNamespace(metrics=pd.DataFrame(rows), capacity_k=k)


def test_report_is_self_contained_in_one_language_with_the_run_numbers(run, tmp_path):
    tables, as_of, alerts, matches, cases = run
    path = write_report(tmp_path / "out", alerts, matches, tables, as_of, cases=cases,
                        extra_sections={"回测": "<p id='bt'>AUC 0.81</p>"})
    assert path == tmp_path / "out" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page  # nothing from outside
    assert page.count('<svg class="chart') >= 3  # cases, alerts and quota use, drawn by the browser

    text = visible_text(page)
    assert data_period_text(as_of) in text and "数据截至2026年10月（含该月）" in text and "2026-11-01" in text
    assert not re.findall(r"\b[a-z]+_[a-z0-9_]+\b", text)  # no code or column name (reminder_60, volume_at_stake_m3)
    assert not re.findall(r"\b(alerts|permits|quota|level|kind|source)\b", text, flags=re.I)

    assert f"<b>{len(alerts):,}</b>预警总数" in page and f"<b>{len(cases):,}</b>案件" in page
    assert f"<b>{int((alerts['audience'] == 'user').sum()):,}</b>发送用户短信" in page
    for (kind, level), n in alerts.groupby(["kind", "level"]).size().items():
        assert f"<td class=\"short\">{code_label('kind', kind)}</td><td class=\"short\">{code_label('level', level)}</td>" \
               f"<td class=\"n\">{n:,}</td>" in page
    for district in set(alerts["district"]) - {""}:
        assert f">{district}</td>" in page
    n_permits = int(re.search(r"有效许可证 ([\d,]+) 本", page).group(1).replace(",", ""))
    year = (as_of - pd.Timedelta(days=1)).year
    permits = tables["permits"]
    in_force = permits[(permits["status"] == "valid") & (permits["valid_from"] < as_of)
                       & (permits["valid_to"] >= pd.Timestamp(year, 1, 1)) & (permits["annual_quota_m3"] > 0)]
    assert n_permits == len(in_force)
    assert "<h2>回测</h2>" in page and "AUC 0.81" in page


def test_report_has_the_cases_by_kind_with_their_action(run, tmp_path):
    tables, as_of, alerts, matches, cases = run
    assert len(cases) > 0
    page = write_report(tmp_path, alerts, matches, tables, as_of, cases=cases).read_text(encoding="utf-8")
    assert f"案件 {len(cases):,} 件" in page
    verified = cases[cases["kind"] == "tax_verification"]
    assert f"水量核定 {len(verified):,} 件（纳税人·季度），核定水量合计 {verified['verified_m3'].sum() / 1e4:,.1f} 万m³" in page
    for (kind, action), n in cases.groupby(["kind", "action"]).size().items():
        assert re.search(f'<td class="[a-z]+">{KIND_CN[kind]}</td><td class="[a-z]+">{ACTION_CN[action]}</td>'
                         f'<td class="n">{n:,}</td>', page), (kind, action)
    largest = cases.sort_values("volume_at_stake_m3", ascending=False).iloc[0]
    assert html_lib.escape(largest["evidence_text"]) in page
    empty = write_report(tmp_path / "none", alerts, matches, tables, as_of, cases=cases.iloc[0:0]).read_text(encoding="utf-8")
    assert "本期无案件" in empty


def test_report_with_no_alerts_still_writes(run, tmp_path):
    tables, as_of, alerts, matches, _ = run
    path = write_report(tmp_path, alerts.iloc[0:0], matches.iloc[0:0], tables, as_of, extra_sections=["<p>raw</p>"])
    page = path.read_text(encoding="utf-8")
    assert "本期无预警" in page and "<b>0</b>预警总数" in page and "<p>raw</p>" in page
    assert page.count('<svg class="chart') == 1  # the quota distribution still has data


def test_a_backtest_without_enough_violations_is_not_shown_as_zeros():
    title, body = backtest_section(fake_backtest([0, 3, MIN_POSITIVES - 1]), "workspace/models/backtest.html")
    assert title == "模型回测"
    assert "0.00" not in body and body.count(f"违规不足{MIN_POSITIVES}起，无法衡量") == 3
    assert "这不是零分" in body and 'href="workspace/models/backtest.html"' in body
    _, measured = backtest_section(fake_backtest([MIN_POSITIVES, 40]))
    assert measured.count(">0.42<") == 2 and measured.count(">0.17<") == 2 and "这不是零分" not in measured


def test_profile_section_draws_the_city_balance_and_names_the_industries(run):
    tables, as_of, *_ = run
    profiles = pd.DataFrame({
        "uscc": ["A", "B"] * 3, "month": pd.to_datetime(["2026-01-01"] * 2 + ["2026-02-01"] * 2 + ["2026-03-01"] * 2),
        "supply_m3": [1e4, 2e4] * 3, "abstraction_m3": [5e3, 0.0] * 3, "discharge_m3": [1e4, 1e4] * 3,
    })
    snapshot = pd.DataFrame({"industry_section": ["C"] * 12, "balance_ratio_12m": [0.5] * 10 + [2.0, 3.0]})
    title, body = profile_section(profiles, snapshot)
    assert title == "企业用水画像" and '<svg class="chart"' in body
    assert "制造业（C）" in body and "1.5倍的企业 2 家（共 12 家有数据）" in body
    assert not re.findall(r"\b[a-z]+_[a-z0-9_]+\b", visible_text(body))


@pytest.mark.browser
@pytest.mark.parametrize("width", [1366, 820])
def test_report_fits_the_page_in_a_browser(run, tmp_path, width):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    tables, as_of, alerts, matches, cases = run
    wide = pd.DataFrame({f"第{i}列": ["一段很长的说明文字" * 3] * 3 for i in range(12)})  # a section that is wider than any page
    from serving.report import _table

    path = write_report(tmp_path, alerts, matches, tables, as_of, cases=cases,
                        extra_sections=[backtest_section(fake_backtest([2, 30])), ("宽表", _table(wide))])
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(path.as_uri())
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        browser.close()
    assert scroll_width <= width
