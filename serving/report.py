"""The run report: one self-contained HTML page a supervisor can open offline, print or mail.

No CDN, no external files, no script. One language (Chinese, the bureau's): codes are shown in
words (``serving.i18n``, ``models.cases``), tables carry Chinese headings, and the charts are
inline SVG (``serving.console.charts``, the console's own) whose text the reader's browser renders,
so no CJK font is needed on the server. The page fits its width (tables wrap, a wide table scrolls
inside its own box). The as-of convention is the console's: ``data_period_text``.
A backtest whose windows hold too few verdicts to measure anything says so instead of showing zeros.
Later stages may append their own sections through ``extra_sections``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from models.cases import ACTION_CN as CASE_ACTION_CN, KIND_CN as CASE_KIND_CN
from models.rules import LEVEL_ORDER, quota_usage
from models.settings import RuleSettings
from serving.console.charts import LEVEL_COLOURS, SERIES_COLOURS, monthly_chart_svg, stacked_bars_svg
from serving.i18n import code_label

MIN_POSITIVES = 10  # violations a backtest window needs before its precision is a measurement
CASE_COLOURS = {"enforcement_file": "#c53030", "notice": "#dd6b20", "tax_quantity_correction": "#2b6cb0",
                "procedure_guidance": "#2f855a", "sms": "#718096"}
SECTIONS_CN = {  # GB/T 4754-2017 sections
    "A": "农、林、牧、渔业", "B": "采矿业", "C": "制造业", "D": "电力、热力、燃气及水生产和供应业", "E": "建筑业",
    "F": "批发和零售业", "G": "交通运输、仓储和邮政业", "H": "住宿和餐饮业", "I": "信息传输、软件和信息技术服务业",
    "J": "金融业", "K": "房地产业", "L": "租赁和商务服务业", "M": "科学研究和技术服务业", "N": "水利、环境和公共设施管理业",
    "O": "居民服务、修理和其他服务业", "P": "教育", "Q": "卫生和社会工作", "R": "文化、体育和娱乐业",
    "S": "公共管理、社会保障和社会组织", "T": "国际组织",
}
BAND_COLOURS = ("#a0aec0", "#ecc94b", "#ed8936", "#e53e3e")
_CSS = """
*{box-sizing:border-box}
body{font-family:"Microsoft YaHei","PingFang SC","Noto Sans CJK SC","Noto Sans SC",sans-serif;margin:1.5em auto;
max-width:1100px;padding:0 1em;color:#1a202c;line-height:1.5}
h1{font-size:1.45em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #cbd5e0;padding-bottom:.2em;margin-top:1.8em}
h3{font-size:1.02em;margin-top:1.2em}.asof{color:#4a5568;margin:0 0 1em}
.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;max-width:100%}
th,td{border:1px solid #e2e8f0;padding:3px 8px;vertical-align:top;overflow-wrap:anywhere}
th{background:#f7fafc;text-align:left}td.n{text-align:right;white-space:nowrap}td.code{white-space:nowrap}
td.short{white-space:nowrap}td.name{min-width:8em}td.text{min-width:18em}
.kpis{display:flex;flex-wrap:wrap;gap:.5em 2em;margin:.5em 0 1em}.kpi b{display:block;font-size:1.5em}
.legend{font-size:.85em;color:#4a5568}.legend span{display:inline-block;margin-right:1.2em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
.note{color:#4a5568;font-size:.9em}
svg.chart{width:100%;max-width:760px;height:auto;display:block}
svg.chart text{font-size:11px;fill:#4a5568;font-family:inherit}svg.chart .grid{stroke:#edf2f7}
svg.chart .baseline{stroke:#a0aec0}svg.chart .total{font-weight:700;fill:#1a202c}
"""


def data_period_text(as_of) -> str:
    """The run's as-of stated the console's way: the last month the data includes, and the as-of day
    before which every number was computed."""
    as_of = pd.Timestamp(as_of)
    last = as_of - pd.DateOffset(months=1)
    return f"数据截至{last.year}年{last.month}月（含该月）；评估基准日 {as_of.date().isoformat()}，只使用此日之前的数据"


# -- building blocks ------------------------------------------------------------------------------


def _cell(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return f"<td>{'是' if v else '否'}</td>"
    if isinstance(v, (int, np.integer)):
        return f'<td class="n">{v:,}</td>'
    if isinstance(v, (float, np.floating)):
        return f'<td class="n">{v:,.1f}</td>' if pd.notna(v) else "<td>—</td>"
    text = str(v)
    kind = "short" if len(text) <= 10 else "name" if len(text) <= 40 else "text"  # how a cell may wrap
    return f'<td class="{kind}">{html.escape(text)}</td>'


def _table(frame: pd.DataFrame) -> str:
    """A display table (a few dozen rows at most) in a box that scrolls if it is ever wider than the page."""
    if frame.empty:
        return "<p>无</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = ["<tr>" + "".join(_cell(v) for v in values) + "</tr>" for values in frame.itertuples(index=False)]
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _legend(items: Sequence[tuple[str, str]]) -> str:
    spans = "".join(f'<span><i style="background:{c}"></i>{html.escape(label)}</span>' for label, c in items)
    return f'<p class="legend">{spans}</p>'


def _kind(kind: str) -> str:
    return code_label("kind", kind, "zh")


def _level(level: str) -> str:
    return code_label("level", level, "zh")


def _sections(extra) -> list[tuple[str, str]]:
    if not extra:
        return []
    if isinstance(extra, Mapping):
        return [(str(k), str(v)) for k, v in extra.items()]
    out = []
    for item in extra if isinstance(extra, Sequence) and not isinstance(extra, str) else [extra]:
        out.append((str(item[0]), str(item[1])) if isinstance(item, tuple) else ("", str(item)))
    return out


# -- the page -------------------------------------------------------------------------------------


def write_report(
    out_dir: Path | str,
    alerts: pd.DataFrame,
    matches: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    as_of,
    extra_sections: Mapping[str, str] | Sequence[str | tuple[str, str]] | None = None,
    rules: RuleSettings | None = None,
    cases: pd.DataFrame | None = None,
) -> Path:
    """Write ``<out_dir>/report.html``; ``extra_sections`` are (title, html) pairs, a {title: html} map or raw HTML."""
    rules = rules or RuleSettings()
    as_of = pd.Timestamp(as_of)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        "<h1>WaterWatch 水资源监管运行报告</h1>",
        f'<p class="asof">{html.escape(data_period_text(as_of))}</p>',
        _kpis(alerts, matches, cases),
    ]
    if cases is not None:
        parts += cases_section(cases)
    parts += _alert_sections(alerts)
    parts += _quota_section(tables, as_of, rules)
    parts += _rights_section(matches)
    for title, body in _sections(extra_sections):
        if title:
            parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(body)
    page = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>WaterWatch 运行报告 {as_of.date().isoformat()}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _kpis(alerts: pd.DataFrame, matches: pd.DataFrame, cases: pd.DataFrame | None) -> str:
    items = [
        (f"{len(alerts):,}", "预警总数"),
        (f"{int((alerts['audience'] == 'user').sum()):,}", "发送用户短信"),
        (f"{int((alerts['audience'] == 'bureau').sum()):,}", "移交执法核查"),
        (f"{alerts['volume_at_stake_m3'].fillna(0).sum() / 10_000:,.1f}", "涉及水量（万m³）"),
        (f"{alerts['tax_at_stake_yuan'].fillna(0).sum() / 10_000:,.1f}", "涉及税款（万元）"),
        (f"{len(matches):,}", "水权交易撮合"),
    ]
    if cases is not None:
        items.insert(3, (f"{len(cases):,}", "案件"))
    return '<div class="kpis">' + "".join(f'<span class="kpi"><b>{v}</b>{label}</span>' for v, label in items) + "</div>"


def cases_section(cases: pd.DataFrame, top: int = 20) -> list[str]:
    """Documented breaches: cases by kind with the action each needs, by district, and the largest ones."""
    parts = ["<h2>案件：已有记录证实的违规</h2>"]
    if cases.empty:
        return parts + ["<p>本期无案件。</p>"]
    kind = cases["kind"].map(CASE_KIND_CN).fillna(cases["kind"])
    action = cases["action"].map(CASE_ACTION_CN).fillna(cases["action"])
    parts.append(
        f"<p>案件 {len(cases):,} 件（按单位与处理措施归并预警），涉及水量 {cases['volume_at_stake_m3'].fillna(0).sum() / 1e4:,.1f} 万m³，"
        f"涉及税款 {cases['tax_at_stake_yuan'].fillna(0).sum() / 1e4:,.1f} 万元。案件在桌面处理（通知、立案、水量核定、手续指导），"
        "不占用现场核查力量。</p>"
    )
    verified = cases[cases["kind"] == "tax_verification"]
    if len(verified):
        parts.append(
            f"<p>水量核定 {len(verified):,} 件（纳税人·季度），核定水量合计 {verified['verified_m3'].sum() / 1e4:,.1f} 万m³，"
            f"申报少于核定的部分应补税款约 {verified['tax_at_stake_yuan'].fillna(0).sum() / 1e4:,.1f} 万元；核定依据："
            "有计量的按计量，无有效计量的按许可水量，均无的按计划用水量。</p>"
        )
    rows = [(k, [(a, float(n), CASE_COLOURS.get(code, "#718096"))])
            for (k, a, code), n in cases.assign(k=kind, a=action).groupby(["k", "a", "action"], sort=False).size().items()]
    parts += [stacked_bars_svg(rows, "cases", width=760),
              _legend([(CASE_ACTION_CN[c], CASE_COLOURS[c]) for c in CASE_COLOURS if c in set(cases["action"])])]
    by_kind = cases.assign(类型=kind, 处理措施=action).groupby(["类型", "处理措施"], sort=False).agg(
        案件数=("case_id", "size"), 涉及水量=("volume_at_stake_m3", lambda v: v.fillna(0).sum() / 1e4),
        # kinds with no tax figure (enforcement, notices) show a dash, not a measured 0.0
        涉及税款=("tax_at_stake_yuan", lambda v: v.sum() / 1e4 if v.notna().any() else float("nan")),
    ).reset_index().rename(columns={"涉及水量": "涉及水量（万m³）", "涉及税款": "涉及税款（万元）"})
    parts.append(_table(by_kind))
    parts.append("<h3>按区县</h3>")
    by_district = pd.crosstab(cases["district"].replace("", "（未知）"), kind)
    by_district["合计"] = by_district.sum(axis=1)
    parts.append(_table(by_district.sort_values("合计", ascending=False).astype(int).reset_index().rename(columns={"district": "区县"})))
    parts.append(f"<h3>涉及水量最大的{min(top, len(cases))}件</h3>")
    largest = cases.sort_values("volume_at_stake_m3", ascending=False, na_position="last").head(top)
    parts.append(_table(pd.DataFrame({
        "类型": largest["kind"].map(CASE_KIND_CN).fillna(largest["kind"]), "单位": largest["name"], "区县": largest["district"],
        "期间": largest["period"], "证据与处理措施": largest["evidence_text"],
    })))
    return parts


def _alert_sections(alerts: pd.DataFrame, top: int = 30) -> list[str]:
    parts = ["<h2>预警按类型与级别</h2>"]
    if alerts.empty:
        return parts + ["<p>本期无预警。</p>"]
    counts = alerts.groupby(["kind", "level"]).size()
    levels = sorted(set(alerts["level"]), key=lambda lv: LEVEL_ORDER.get(lv, 0), reverse=True)
    rows = [(_kind(k), [(_level(lv), float(counts.get((k, lv), 0)), LEVEL_COLOURS.get(lv, "#718096")) for lv in levels])
            for k in counts.index.get_level_values(0).unique()]
    by_kind = counts.rename("数量").reset_index()
    parts += [
        stacked_bars_svg(rows, "alerts", width=760),
        _legend([(_level(lv), LEVEL_COLOURS.get(lv, "#718096")) for lv in levels]),
        _table(pd.DataFrame({"类型": by_kind["kind"].map(_kind), "级别": by_kind["level"].map(_level),
                             "数量": by_kind["数量"].astype(int)})),
        "<h2>预警按区县</h2>",
    ]
    by_district = pd.crosstab(alerts["district"].replace("", "（未知）"), alerts["kind"].map(_kind))
    by_district["合计"] = by_district.sum(axis=1)
    parts.append(_table(by_district.sort_values("合计", ascending=False).astype(int).reset_index().rename(columns={"district": "区县"})))
    parts.append(f"<h2>重点预警（前{min(top, len(alerts))}条）</h2>")
    ranked = alerts.assign(_rank=alerts["level"].map(LEVEL_ORDER).fillna(0))
    ranked = ranked.sort_values(["_rank", "volume_at_stake_m3"], ascending=[False, False]).head(top)
    parts.append(_table(pd.DataFrame({
        "类型": ranked["kind"].map(_kind), "级别": ranked["level"].map(_level), "单位": ranked["name"],
        "区县": ranked["district"], "期间": ranked["period"], "内容": ranked["message"],
    })))
    return parts


def _quota_section(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, rules: RuleSettings) -> list[str]:
    usage = quota_usage(tables, None, as_of, rules)
    usage = usage[usage["basis"] == "permit"]
    year = int(usage["year"].iloc[0]) if len(usage) else (as_of - pd.Timedelta(days=1)).year
    parts = [f"<h2>{year}年许可水量使用分布</h2>"]
    if usage.empty:
        return parts + ["<p>无有效许可。</p>"]
    edges = [-1, rules.quota_yellow, rules.quota_orange, rules.quota_red, float("inf")]
    counts = pd.cut(usage["share"], edges, right=False).value_counts(sort=False).to_numpy().astype(int)
    labels = [f"低于{rules.quota_yellow:.0%}", f"{rules.quota_yellow:.0%}至{rules.quota_orange:.0%}",
              f"{rules.quota_orange:.0%}至{rules.quota_red:.0%}", f"达到或超过{rules.quota_red:.0%}"]
    rows = [(label, [("许可证", float(n), colour)]) for label, n, colour in zip(labels, counts, BAND_COLOURS)]
    n_renewed = _renewed_in_force(usage, tables["permits"])
    renewed = f"（其中 {n_renewed:,} 本已延续，年累计取水计入延续后的许可证）" if n_renewed else ""
    parts += [
        stacked_bars_svg(rows, "quota", width=760),
        _table(pd.DataFrame({"年累计取水/年度许可水量": labels, "许可证数": counts})),
        f"<p>有效许可证 {len(usage) + n_renewed:,} 本{renewed}，年累计取水占许可水量的中位数为 {usage['share'].median():.0%}。</p>",
    ]
    return parts


def _renewed_in_force(usage: pd.DataFrame, permits: pd.DataFrame) -> int:
    """Valid permits whose year counts in their renewal's row (``quota_usage``'s ``renewed_from``)."""
    replaced = usage["renewed_from"].fillna("").str.split("、").explode()
    status = permits.drop_duplicates("permit_id").set_index("permit_id")["status"]
    return int((replaced[replaced != ""].map(status) == "valid").sum())


def _rights_section(matches: pd.DataFrame, top: int = 30) -> list[str]:
    parts = ["<h2>水权交易潜在撮合</h2>"]
    if matches.empty:
        return parts + ["<p>本期无可撮合的出让方与受让方。</p>"]
    shown = matches.head(top)
    return parts + [
        f"<p>撮合 {len(matches):,} 对，合计 {matches['volume_m3'].sum():,.0f} m³。</p>",
        _table(pd.DataFrame({
            "出让方": shown["seller_name"], "受让方": shown["buyer_name"], "水源": shown["source"].map(lambda s: code_label("src", s)),
            "区县": shown["district"], "出让方富余（m³）": shown["surplus_m3"], "受让方缺口（m³）": shown["shortfall_m3"],
            "建议交易量（m³）": shown["volume_m3"],
        })),
    ]


# -- sections the pipeline adds ---------------------------------------------------------------------


def profile_section(profiles: pd.DataFrame, snapshot: pd.DataFrame | None = None) -> tuple[str, str]:
    """The profiles people look at first: the city's water balance month by month, and how the entities'
    12-month balance ratio (discharge / (supply + metered abstraction)) spreads within each industry section."""
    monthly = profiles.groupby("month")[["supply_m3", "abstraction_m3", "discharge_m3"]].sum() / 1e4
    months = [m.strftime("%Y-%m") for m in monthly.index]
    names = {"supply_m3": "自来水供水", "abstraction_m3": "计量取水", "discharge_m3": "排水"}
    lines = [(c, names[c], [float(v) for v in monthly[c]], SERIES_COLOURS[c]) for c in names]
    parts = [
        f"<h3>全市月度水量平衡（{profiles['uscc'].nunique():,} 家单位）</h3>",
        monthly_chart_svg(months, lines, None, None, {"unit": "万m³", "title": "全市月度水量"}),
        _legend([(names[c], SERIES_COLOURS[c]) for c in names]),
    ]
    if snapshot is not None and len(snapshot) and "balance_ratio_12m" in snapshot.columns:
        data = snapshot[["industry_section", "balance_ratio_12m"]].dropna()
        g = data.groupby("industry_section")["balance_ratio_12m"]
        spread = pd.DataFrame({"企业数": g.size(), "25%分位": g.quantile(0.25), "中位数": g.median(),
                               "75%分位": g.quantile(0.75), "90%分位": g.quantile(0.9),
                               "超过1.5的企业": g.apply(lambda r: int((r > 1.5).sum()))})
        spread = spread[spread["企业数"] >= 10].sort_values("企业数", ascending=False).head(12)
        spread.index = [f"{SECTIONS_CN.get(str(c), '')}（{c}）" for c in spread.index]
        parts += [
            "<h3>各行业门类近12个月水量平衡比（排水 ÷（供水+计量取水））</h3>",
            _table(spread.rename_axis("行业门类（GB/T 4754）").reset_index()),
            f"<p>近12个月排水量超过供水与取水量之和1.5倍的企业 {(data['balance_ratio_12m'] > 1.5).sum():,} 家"
            f"（共 {len(data):,} 家有数据）。</p>",
        ]
    return "企业用水画像", "".join(parts)


def backtest_section(backtest, detail_href: str | None = None) -> tuple[str, str]:
    """Ranking precision at the officers' capacity per cut-off, against the naive rule and random picks.
    A window with fewer than MIN_POSITIVES violations has no precision to report: it says so."""
    k = backtest.capacity_k
    col = f"precision_at_{k}"
    metrics = backtest.metrics
    parts = [f"<p>按各回测截点之前的数据排序，统计截点之后核查窗口内前{k}条线索的查实率；窗口内违规少于{MIN_POSITIVES}起时，"
             "查实率不能说明排序好坏，不予列出。</p>"]
    rows, measured = [], 0
    for (cutoff, target), part in metrics.groupby(["cutoff", "target"], sort=True):
        by = part.set_index("scorer")
        positives = int(by["positives"].max()) if "positives" in by else 0
        ok = positives >= MIN_POSITIVES and col in by
        measured += ok
        value = (lambda s: f"{by.loc[s, col]:.2f}" if ok and s in by.index and pd.notna(by.loc[s, col]) else "—")
        rows.append({"回测截点": pd.Timestamp(cutoff).strftime("%Y-%m"), "目标": code_label("target", target),
                     "窗口内违规": positives, "模型": value("model"), "简单规则": value("naive"), "随机抽查": value("random"),
                     "说明": "" if ok else f"违规不足{MIN_POSITIVES}起，无法衡量"})
    parts.append(_table(pd.DataFrame(rows)))
    if not measured:
        parts.append("<p><b>本次回测的核查窗口内违规太少，排序效果尚无法衡量；这不是零分。</b>"
                     "随着现场核查结论积累，下次训练将给出可衡量的结果。</p>")
    if detail_href:
        parts.append(f'<p class="note">详细回测报告（中英对照）：<a href="{html.escape(detail_href)}">{html.escape(detail_href)}</a></p>')
    return "模型回测", "".join(parts)
