"""Polish found in review 9, each proven here before its fix.

- the backtest detail page (``training.backtest_report``, linked from the run report for data scientists): counts
  are integers, a missing value is a dash, a metric that could not be measured says so (never a 0.000 standard
  deviation over a single measured cut-off), the page declares its language and a viewport, and the score
  distribution and feature importance charts have labelled axes with units;
- the lead page's monthly chart draws a series, the quota line and their legend entries only for what the entity
  has on record: no 计量取水 line at 0 for an entity with no permit (no meter), no 许可水量/月 in the legend where
  no quota line is drawn; the desktop and the phone drawings agree.
"""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from test_backtest import _synthetic_cutoffs
from test_console import lead_ids, login, make_run, make_settings, officer_of
from training.backtest import run_backtest
from training.backtest_report import report_html

# -- the backtest detail page ------------------------------------------------------------------------------


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts (th and td), as the reader sees them."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def column(table: list[list[str]], name: str, where: dict[str, str] | None = None) -> list[str]:
    """The cells under the header ``name`` in the rows whose cells under the headers of ``where`` match."""
    head = next(row for row in table if name in row)
    at = head.index(name)
    keys = {head.index(k): v for k, v in (where or {}).items()}
    return [row[at] for row in table[table.index(head) + 1:]
            if len(row) == len(head) and all(row[i] == v for i, v in keys.items())]


@pytest.fixture(scope="module")
def backtest():
    """Three cut-offs whose inspection windows hold 10, 5 and 8 violations: only the first is measurable."""
    cuts = _synthetic_cutoffs(n=300)
    result = run_backtest(cuts, lambda cut: cut.X["signal"].to_numpy(), 20)
    result.importance = pd.Series({"signal": 0.75, "naive_ratio": 0.25})
    assert result.positives("inspected").tolist() == [10, 5, 8]
    return cuts, result


def test_backtest_page_shows_counts_as_integers(backtest):
    _, result = backtest
    html = report_html(result, {}, "test")
    per_cut = tables_of(html)[1]
    for scorer in ("model", "naive"):
        for name in ("labelled_at_20", "labelled_at_100", "positives"):
            cells = column(per_cut, name, {"scorer": scorer})
            assert cells and all(re.fullmatch(r"\d+", c) for c in cells), (scorer, name, cells)


def test_backtest_page_says_what_was_not_measured(backtest):
    _, result = backtest
    html = report_html(result, {}, "test")
    summary = tables_of(html)[0]
    # one measured cut-off of three: a mean of one number, but no spread at all; 0.000 would claim one
    inspected_model = next(row for row in summary if row[:2] == ["inspected", "model"])
    head = next(row for row in summary if "precision_at_20_std" in row)
    std = inspected_model[head.index("precision_at_20_std") - len(head) + len(inspected_model)]
    assert std == "not measured", std


def test_backtest_audit_shows_a_dash_for_what_it_could_not_compute(backtest):
    cuts, _ = backtest
    unvisited = [dataclasses.replace(c, verdict=c.verdict & False, found=c.found & False) for c in cuts]
    result = run_backtest(unvisited, lambda cut: cut.X["signal"].to_numpy(), 20)
    html = report_html(result, {}, "test")
    assert not re.search(r">\s*(NaN|nan)\s*<", html)
    audit = tables_of(html)[-1]
    fdr = column(audit, "fdr_vs_verdicts")
    assert fdr and set(fdr) == {"—"}, fdr  # no verdict at all: no false-discovery rate to state
    assert "— " in html.split("Audit", 1)[1]  # and the page says what the dash means


def test_backtest_page_declares_language_and_viewport(backtest):
    _, result = backtest
    html = report_html(result, {}, "test")
    assert html.startswith("<!DOCTYPE html>")
    assert re.search(r'<html lang="en">', html)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_backtest_charts_have_labelled_axes_with_units(backtest):
    from training.backtest_report import figures

    cuts, result = backtest
    figs = figures(result, cuts, pd.Series(np.linspace(0, 1, 50)))
    assert set(figs) == {"precision_at_k.png", "score_distribution.png", "feature_importance.png"}
    for name, fig in figs.items():
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_xlabel(), ax.get_ylabel())
    (dist,) = figs["score_distribution.png"].axes
    assert "0–1" in dist.get_xlabel() and "density" in dist.get_ylabel()
    (imp,) = figs["feature_importance.png"].axes
    assert "%" in imp.get_xlabel() and imp.get_ylabel()
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)


# -- the lead page's chart -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The console's test run, except that entities without a permit have no meter: their profiles store 0."""
    from fastapi.testclient import TestClient

    from serving.api import create_app
    from serving.console import console_router
    from serving.publish import publish_run
    from serving.store import open_store

    tmp = tmp_path_factory.mktemp("polish9")
    facts = make_run(tmp / "out")
    prof = pd.read_parquet(tmp / "out" / "profiles.parquet")
    prof.loc[~prof["uscc"].isin(facts["uscc"][:2]), "abstraction_m3"] = 0.0  # permits: the first two only
    prof.to_parquet(tmp / "out" / "profiles.parquet")
    settings = make_settings(tmp)
    _, sessions = open_store(settings.resolved_database_url())
    publish_run(tmp / "out", sessions, settings)
    app = create_app(settings, session_factory=sessions, routers=[console_router()])
    with TestClient(app):  # the start-up creates the demo users
        pass
    return {"app": app, "sessions": sessions, "facts": facts, "TestClient": TestClient}


def lead_chart_of(env, i: int) -> tuple[list[str], list[str]]:
    """(the two drawings, the legend's entries) of the chart on entity ``i``'s lead page."""
    from sqlalchemy import select

    from serving.store import Lead

    facts = env["facts"]
    with env["sessions"]() as s:
        lead_id = s.scalar(select(Lead.id).where(Lead.uscc == facts["uscc"][i]))
    assert lead_id in lead_ids(env["sessions"], facts["district"][i])
    client, _ = login(env, officer_of(facts["district"][i]))
    html = client.get(f"/leads/{lead_id}").text
    card = re.search(r'<section class="card chart-card">.*?</section>', html, re.S).group(0)
    svgs = re.findall(r"<svg .*?</svg>", card, re.S)
    legend = re.findall(r"<li>(.*?)</li>", re.search(r'<ul class="legend">(.*?)</ul>', card, re.S).group(1), re.S)
    return svgs, [re.sub(r"<[^>]+>", "", item).strip() for item in legend]


def test_lead_chart_of_an_entity_without_permit_draws_no_meter_and_no_quota(env):
    svgs, legend = lead_chart_of(env, 2)  # no permit, so no meter; its profile stores 0 abstraction
    assert len(svgs) == 2 and 'data-chart="monthly"' in svgs[0] and 'data-chart="monthly-compact"' in svgs[1]
    for svg in svgs:  # the desktop and the phone drawings alike
        assert 'class="series abstraction"' not in svg and 'class="series quota"' not in svg
        assert 'class="series supply"' in svg and 'class="series discharge"' in svg
    assert legend == ["自来水供水量", "排水量"], legend


def test_lead_chart_of_a_permit_holder_draws_meter_and_quota(env):
    svgs, legend = lead_chart_of(env, 0)
    for svg in svgs:
        for key in ("supply", "abstraction", "discharge", "quota"):
            assert f'class="series {key}"' in svg, key
    assert legend[:4] == ["自来水供水量", "计量取水量", "排水量", "许可水量/月"], legend
