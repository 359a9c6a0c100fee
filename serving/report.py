"""The run report: one self-contained HTML page a supervisor can open offline or mail.

No CDN, no external files: charts are matplotlib PNGs embedded as base64.
Chart labels stay ASCII (servers rarely have a CJK font, and missing glyphs
print as boxes); Chinese names and messages go in the HTML tables.
Later stages (e.g. backtests) append their own sections through ``extra_sections``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from models.cases import ACTION_CN as CASE_ACTION_CN, KIND_CN as CASE_KIND_CN  # noqa: E402
from models.rules import LEVEL_ORDER, quota_usage  # noqa: E402
from models.settings import RuleSettings  # noqa: E402

KIND_CN = {
    "quota": "超许可/超计划预警",
    "quota_projection": "超量趋势预警",
    "renewal": "许可延续提醒",
    "expired_permit": "过期/注销许可取水",
    "unpermitted": "无证取水",
    "tax_mismatch": "税务申报不一致",
    "source_prevention": "源头管控",
}
LEVEL_COLOURS = {
    "red": "#d62728",
    "orange": "#ff7f0e",
    "yellow": "#e3c800",
    "warning": "#9467bd",
    "reminder_60": "#1f77b4",
    "reminder_90": "#aec7e8",
    "notice": "#7f7f7f",
}
_CSS = """
body{font-family:"Microsoft YaHei","PingFang SC","Noto Sans CJK SC",sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 8px}
th{background:#f3f3f3}td.n{text-align:right}.kpi{display:inline-block;margin:0 2em .5em 0}
.kpi b{display:block;font-size:1.6em}img{max-width:100%}
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>无</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):  # a display table of a few dozen rows
        cells = []
        for v in values:
            if isinstance(v, float):
                cells.append(f'<td class="n">{v:,.1f}</td>' if pd.notna(v) else "<td></td>")
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                cells.append(f'<td class="n">{v:,}</td>')
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _alerts_chart(alerts: pd.DataFrame) -> str:
    counts = alerts.groupby(["kind", "level"]).size().unstack(fill_value=0)
    levels = sorted(counts.columns, key=lambda lv: LEVEL_ORDER.get(lv, 0), reverse=True)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    counts[levels].plot.barh(stacked=True, ax=ax, color=[LEVEL_COLOURS.get(lv, "#999") for lv in levels], width=0.7)
    ax.set_xlabel("alerts")
    ax.set_ylabel("")
    ax.set_title("Alerts by kind and level")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def _quota_chart(usage: pd.DataFrame, rules: RuleSettings) -> str:
    share = (usage["share"] * 100).clip(upper=200)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(share, bins=40, range=(0, 200), color="#4c78a8")
    for value, colour in ((rules.quota_yellow, "#e3c800"), (rules.quota_orange, "#ff7f0e"), (rules.quota_red, "#d62728")):
        ax.axvline(value * 100, color=colour, linestyle="--", linewidth=1)
    ax.set_xlabel("year-to-date abstraction, % of annual permit quota (capped at 200)")
    ax.set_ylabel("permits")
    ax.set_title(f"Quota use per permit (n={len(usage)})")
    return _png(fig)


def _sections(extra) -> list[tuple[str, str]]:
    if not extra:
        return []
    if isinstance(extra, Mapping):
        return [(str(k), str(v)) for k, v in extra.items()]
    out = []
    for item in extra if isinstance(extra, Sequence) and not isinstance(extra, str) else [extra]:
        out.append((str(item[0]), str(item[1])) if isinstance(item, tuple) else ("", str(item)))
    return out


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
    usage = quota_usage(tables, None, as_of, rules)
    usage = usage[usage["basis"] == "permit"]
    year = int(usage["year"].iloc[0]) if len(usage) else (as_of - pd.Timedelta(days=1)).year

    parts = [
        f"<h1>WaterWatch 监管检查报告（数据截至 {(as_of - pd.Timedelta(days=1)).date().isoformat()}）</h1>",
        '<div class="kpis">',
        f'<span class="kpi"><b>{len(alerts):,}</b>预警总数</span>',
        f'<span class="kpi"><b>{int((alerts["audience"] == "user").sum()):,}</b>发送用户短信</span>',
        f'<span class="kpi"><b>{int((alerts["audience"] == "bureau").sum()):,}</b>移交执法核查</span>',
        f'<span class="kpi"><b>{alerts["volume_at_stake_m3"].fillna(0).sum() / 10_000:,.1f}</b>涉及水量（万m³）</span>',
        f'<span class="kpi"><b>{alerts["tax_at_stake_yuan"].fillna(0).sum() / 10_000:,.1f}</b>涉及税款（万元）</span>',
        f'<span class="kpi"><b>{len(matches):,}</b>水权交易撮合</span>',
        "</div>",
    ]
    if cases is not None:
        parts += cases_section(cases)
    parts.append("<h2>预警按类型与级别</h2>")
    if len(alerts):
        by_kind = alerts.groupby(["kind", "level"]).size().rename("数量").reset_index()
        by_kind.insert(0, "类型", by_kind["kind"].map(KIND_CN).fillna(by_kind["kind"]))
        by_kind["数量"] = by_kind["数量"].astype(int)
        parts += [_alerts_chart(alerts), _table(by_kind.rename(columns={"kind": "代码", "level": "级别"}))]
        parts.append("<h2>预警按区县</h2>")
        by_district = pd.crosstab(alerts["district"].replace("", "（未知）"), alerts["kind"].map(KIND_CN).fillna(alerts["kind"]))
        by_district["合计"] = by_district.sum(axis=1)
        by_district = by_district.sort_values("合计", ascending=False).astype(int).reset_index().rename(columns={"district": "区县"})
        parts.append(_table(by_district))
    else:
        parts.append("<p>本期无预警。</p>")

    parts.append(f"<h2>{year}年许可水量使用分布</h2>")
    if len(usage):
        bands = pd.cut(usage["share"], [-1, rules.quota_yellow, rules.quota_orange, rules.quota_red, float("inf")], right=False)
        band_counts = bands.value_counts(sort=False)
        labels = [
            f"< {rules.quota_yellow:.0%}",
            f"{rules.quota_yellow:.0%}-{rules.quota_orange:.0%}",
            f"{rules.quota_orange:.0%}-{rules.quota_red:.0%}",
            f"≥ {rules.quota_red:.0%}",
        ]
        parts += [
            _quota_chart(usage, rules),
            _table(pd.DataFrame({"年累计/许可水量": labels, "许可证数": band_counts.to_numpy().astype(int)})),
            f"<p>许可证 {len(usage):,} 本，中位使用率 {usage['share'].median():.0%}。</p>",
        ]
    else:
        parts.append("<p>无有效许可。</p>")

    parts.append("<h2>重点预警（前30条）</h2>")
    if len(alerts):
        top = alerts.assign(_rank=alerts["level"].map(LEVEL_ORDER).fillna(0))
        top = top.sort_values(["_rank", "volume_at_stake_m3"], ascending=[False, False]).head(30)
        parts.append(_table(top[["kind", "level", "uscc", "name", "district", "period", "message"]]))

    parts.append("<h2>水权交易潜在撮合</h2>")
    if len(matches):
        parts.append(f"<p>撮合 {len(matches):,} 对，合计 {matches['volume_m3'].sum():,.0f} m³。</p>")
        parts.append(_table(matches.head(30)))
    else:
        parts.append("<p>本期无可撮合的出让方与受让方。</p>")

    for title, body in _sections(extra_sections):
        if title:
            parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(body)

    page = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>WaterWatch 报告 {as_of.date().isoformat()}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def cases_section(cases: pd.DataFrame, top: int = 20) -> list[str]:
    """Documented breaches: cases by kind with the action each needs, by district, and the largest ones."""
    parts = ["<h2>案件：已有记录证实的违规</h2>"]
    if cases.empty:
        return parts + ["<p>本期无案件。</p>"]
    kind = cases["kind"].map(CASE_KIND_CN).fillna(cases["kind"])
    parts.append(
        f"<p>案件 {len(cases):,} 件（按单位与处理措施归并预警），涉及水量 {cases['volume_at_stake_m3'].fillna(0).sum() / 1e4:,.1f} 万m³，"
        f"涉及税款 {cases['tax_at_stake_yuan'].fillna(0).sum() / 1e4:,.1f} 万元。案件在桌面处理（通知、立案、水量核定、手续指导），"
        "不占用现场核查力量。</p>"
    )
    by_kind = cases.assign(类型=kind, 处理措施=cases["action"].map(CASE_ACTION_CN).fillna(cases["action"])).groupby(
        ["类型", "处理措施"], sort=False).agg(
        案件数=("case_id", "size"), 涉及水量万m3=("volume_at_stake_m3", lambda v: v.fillna(0).sum() / 1e4),
        涉及税款万元=("tax_at_stake_yuan", lambda v: v.fillna(0).sum() / 1e4),
    ).reset_index().rename(columns={"涉及水量万m3": "涉及水量（万m³）", "涉及税款万元": "涉及税款（万元）"})
    parts.append(_table(by_kind))
    parts.append("<h3>按区县</h3>")
    by_district = pd.crosstab(cases["district"].replace("", "（未知）"), kind)
    by_district["合计"] = by_district.sum(axis=1)
    parts.append(_table(by_district.sort_values("合计", ascending=False).astype(int).reset_index().rename(columns={"district": "区县"})))
    parts.append(f"<h3>涉及水量最大的{top}件</h3>")
    largest = cases.sort_values("volume_at_stake_m3", ascending=False, na_position="last").head(top)
    parts.append(_table(pd.DataFrame({
        "类型": largest["kind"].map(CASE_KIND_CN).fillna(largest["kind"]), "单位": largest["name"], "区县": largest["district"],
        "期间": largest["period"], "证据与处理措施": largest["evidence_text"],
    })))
    return parts


def profile_section(profiles: pd.DataFrame, snapshot: pd.DataFrame | None = None) -> tuple[str, str]:
    """The profiles people look at first: the city's water balance month by month, and how the entities'
    12-month balance ratio (discharge / (supply + metered abstraction)) spreads within each industry section."""
    monthly = profiles.groupby("month")[["supply_m3", "abstraction_m3", "discharge_m3"]].sum() / 1e4
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for column, colour, label in (("supply_m3", "#1f77b4", "public supply"), ("abstraction_m3", "#2ca02c", "metered abstraction"),
                                  ("discharge_m3", "#d62728", "discharge")):
        ax.plot(monthly.index, monthly[column], color=colour, label=label, linewidth=1.6)
    ax.set_ylabel("10,000 m³ per month")
    ax.set_title(f"City water balance, {len(profiles['uscc'].unique()):,} entities")
    ax.legend(fontsize=8)
    parts = [_png(fig)]
    if snapshot is not None and len(snapshot) and "balance_ratio_12m" in snapshot.columns:
        data = snapshot[["industry_section", "balance_ratio_12m"]].dropna()
        sections = data["industry_section"].value_counts()
        sections = sections[sections >= 10].index[:12]
        if len(sections):
            fig, ax = plt.subplots(figsize=(7, 3.4))
            ax.boxplot([data.loc[data["industry_section"] == s, "balance_ratio_12m"].clip(upper=5) for s in sections],
                       tick_labels=list(sections), showfliers=True, flierprops={"markersize": 2})
            ax.axhline(1.0, color="#d62728", linestyle="--", linewidth=1)
            ax.set_ylabel("12-month balance ratio (capped at 5)")
            ax.set_xlabel("industry section (GB/T 4754)")
            ax.set_title("Discharge / (supply + abstraction) by industry")
            parts.append(_png(fig))
        over = (data["balance_ratio_12m"] > 1.5).sum()
        parts.append(f"<p>近12个月排水量超过供水与取水量之和1.5倍的企业 {over:,} 家（共 {len(data):,} 家有数据）。</p>")
    return "企业用水画像 Profiles", "".join(parts)
