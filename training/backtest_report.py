"""What a backtest looks like to a person: charts of precision@k per cut-off beside the baselines, the score
distribution and feature importance, and the HTML page the training run logs beside them.

The page shows counts as whole numbers (a mean or a random list's expectation of a count to one decimal), a metric
that could not be measured as "not measured" and any other missing value as a dash, explained under its table: never
a NaN, never a 0.000 standing in for nothing. It comes in English for data scientists (``backtest.html``) and in
Chinese for the bureau's staff (``backtest.zh.html``: Chinese headings, labels and notes with the English beside them,
the same numbers). The charts are PNGs with English text in both: drawing Chinese would need a CJK font on the
server that trains; the Chinese page says under each chart what it shows."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from training import backtest_zh as zh
from training.backtest import MIN_LABELS, TARGETS, BacktestResult, Cutoff, order_of


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def charts(result: BacktestResult, cutoffs: Sequence[Cutoff], final_scores: pd.Series | None = None) -> dict[str, bytes]:
    """PNG bytes: precision@k per cut-off with baselines, score distribution, feature importance."""
    return {name: _png(fig) for name, fig in figures(result, cutoffs, final_scores).items()}


def figures(result: BacktestResult, cutoffs: Sequence[Cutoff], final_scores: pd.Series | None = None) -> dict:
    """The charts as matplotlib figures (the caller closes them), each axis labelled with its unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict = {}
    targets = [t for t in TARGETS if t in set(result.metrics["target"])]
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4), squeeze=False)
    kmax = max(200, 2 * result.capacity_k)
    for ax, tname in zip(axes[0], targets):
        for i, cut in enumerate(cutoffs):
            keep = cut.evaluated
            target = (cut.found if tname == "inspected" else cut.truth).to_numpy()[keep]
            ks = np.arange(1, min(kmax, keep.sum()) + 1)
            for sname, style in (("model", "-"), ("naive", ":")):
                s = result.scores[cut.cutoff].to_numpy()[keep] if sname == "model" else cut.naive.to_numpy()[keep]
                hits = np.cumsum(target[order_of(s.astype(float))])[: len(ks)]
                ax.plot(ks, hits / ks, style, color=f"C{i}", label=f"{sname} {cut.cutoff:%Y-%m}")
            ax.axhline(target.mean(), color=f"C{i}", lw=0.6, ls="--")
        ax.axvline(result.capacity_k, color="red", lw=0.8, ls="--")
        ax.set(title=f"precision@k ({tname})\nsolid model, dotted naive, dashed random",
               xlabel="k (length of the list, entities)", ylabel="precision (share of the top k, 0–1)", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    out["precision_at_k.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    last = cutoffs[-1]
    s = result.scores[last.cutoff]
    groups = {"never visited": last.y == -1, "clean": last.y == 0, "violation": last.y == 1}
    for name, mask in groups.items():
        if mask.any():
            ax.hist(s[mask], bins=40, alpha=0.6, density=True, label=name)
    if final_scores is not None:
        ax.hist(final_scores, bins=40, histtype="step", density=True, color="black", label="final model")
    ax.set(title=f"risk score distribution (cut-off {last.cutoff:%Y-%m})",
           xlabel="risk score (probability of a violation, 0–1)", ylabel="density (per unit of score; area 1 per group)")
    ax.legend(fontsize=7)
    out["score_distribution.png"] = fig

    if result.importance is not None and len(result.importance):
        top = result.importance.sort_values().tail(20)
        shares = bool(np.isclose(result.importance.sum(), 1.0))  # RiskModel: shares of LightGBM's total gain
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
        ax.barh(top.index, top.to_numpy() * (100 if shares else 1))
        ax.set(title="feature importance (final model)", ylabel="feature",
               xlabel="importance (% of the total split gain)" if shares else "importance (as the model reports it)")
        out["feature_importance.png"] = fig
    return out


def model_importance(model, columns: Sequence[str]) -> pd.Series | None:
    """Whatever importance the model exposes (RiskModel or a LightGBM inside it)."""
    if getattr(model, "classifier_", True) is None:  # no LightGBM yet: its "importance" would be made up
        return None
    imp = getattr(model, "feature_importances_", None)
    names = list(getattr(model, "feature_names_in_", columns))
    if imp is None or len(imp) != len(names):
        return None
    return pd.Series(np.asarray(imp, dtype=float), index=names)


def _measured(result: BacktestResult, lang: str = "en") -> str:
    value = result.steadiness("inspected")
    if np.isfinite(value):
        return f"{value:.3f}"
    counts = ", ".join(f"{int(n)}" for n in result.positives("inspected").tolist())
    if lang == "zh":
        return f"未能衡量：各截点之后的核查分别查实 {counts} 起隐蔽型违法，每个窗口少于 {MIN_LABELS} 起"
    return (f"not measured: the inspections after the cut-offs found {counts} hidden-type violation(s), fewer than "
            f"{MIN_LABELS} per window")


COUNTS = {"entities", "positives", "flagged", "verified", "false_discoveries", "truth_false_discoveries"}
PAGES = {"en": "backtest.html", "zh": "backtest.zh.html"}  # the two editions, side by side, linking each other
NOT_MEASURED = {"en": "not measured", "zh": "未能衡量"}
_CSS = ("body{font-family:sans-serif;margin:1em auto;max-width:1400px;padding:0 1em}.scroll{max-width:100%;overflow-x:auto}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%;height:auto}.note{color:#555;font-size:13px}")
_CSS_ZH = ("body{font-family:'Microsoft YaHei','PingFang SC','Noto Sans CJK SC','Noto Sans SC',sans-serif}"
           ".en{color:#666;font-weight:normal;font-size:.85em}td{white-space:nowrap}")


def _is_count(name: str) -> bool:
    return name.removesuffix("_mean").removesuffix("_std") in COUNTS or name.startswith("labelled_at_")


def _cell(name: str, v, missing: str) -> str:
    if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return missing
    if isinstance(v, pd.Timestamp):
        return f"{v:%Y-%m-%d}"
    if isinstance(v, (int, np.integer, float, np.floating)) and not isinstance(v, (bool, np.bool_)):
        if _is_count(name):  # a count is whole; a mean or an expected count gets one decimal
            return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"
        return f"{v:.3f}"
    return str(v)


def _table(frame: pd.DataFrame, missing: str, lang: str = "en") -> str:
    """The frame's cells as the page shows them; in Chinese, a header row of Chinese names above the column names,
    codes in words beside the code, the numbers as in English."""
    shown = pd.DataFrame({c: [_cell(str(c), v, missing) for v in frame[c]] for c in frame.columns})
    if lang == "zh":
        for c in shown.columns:
            shown[c] = [zh.value(str(c), v) for v in shown[c]]
        if "group" in shown.columns and "dimension" in frame.columns:
            shown["group"] = [zh.group(d, g) for d, g in zip(frame["dimension"].astype(str), shown["group"])]
        shown.columns = pd.MultiIndex.from_tuples([(zh.column(str(c)), str(c)) for c in shown.columns])
    return f"<div class='scroll'>{shown.to_html(index=False)}</div>"


def _say(lang: str, chinese: str, english: str) -> str:
    """A heading's words: English, or Chinese with the English beside it."""
    return english if lang == "en" else f"{chinese} <span class='en'>{english}</span>"


def _para(lang: str, chinese: str, english: str, css: str = "") -> str:
    """A paragraph: English, or the Chinese one followed by the English one."""
    cls = f" class='{css}'" if css else ""
    if lang == "en":
        return f"<p{cls}>{english}</p>"
    return f"<p{cls}>{chinese}</p><p class='en{' ' + css if css else ''}'>{english}</p>"


def _head(result: BacktestResult, title: str, lang: str) -> list[str]:
    """The page's head, the link to the other edition, its title and what the targets and steadiness mean."""
    other, cap = ("zh" if lang == "en" else "en"), result.capacity_k
    return [
        f"<!DOCTYPE html><html lang=\"{'en' if lang == 'en' else 'zh-CN'}\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>",
        f"<style>{_CSS}{_CSS_ZH if lang == 'zh' else ''}</style></head><body>",
        f"<p class='note'><a href=\"{PAGES[other]}\" lang=\"{'zh-CN' if other == 'zh' else 'en'}\">"
        f"{'中文版' if other == 'zh' else 'English'}</a></p>",
        f"<h1>{title}</h1>",
        _para(lang,
              f"工作量k（执法人员一期能核查的企业数）= {cap}。目标：<b>核查结论</b>＝截点当日及之后的现场核查查实的"
              f"隐蔽型违法（未核查的企业按未查实计，所以是下限；窗口内少于{MIN_LABELS}起时不予衡量）；<b>评估真值</b>＝"
              "生成数据中植入的隐蔽型违法，仅用于评估。截点之前已查实的企业不参与排序。随机抽查取精确的期望值。",
              f"Operating k (officers' capacity) = {cap}. Targets: <b>inspected</b> = hidden-type violations found by "
              f"inspections on or after the cut-off (unvisited entities count as misses: a lower bound; not measured when "
              f"a window holds fewer than {MIN_LABELS}); <b>truth</b> = planted hidden-type violations, "
              "evaluation only. Entities confirmed before a cut-off are left out. Random = exact expectation."),
        _para(lang, f"稳定性（按核查结论，前{cap}条查实率的均值减标准差）：{_measured(result, 'zh')}",
              f"Steadiness (mean − std of precision@{cap}, inspected): {_measured(result)}"),
    ]


def _charts(pngs: dict[str, bytes], lang: str) -> list[str]:
    """Each chart under its heading (in Chinese, with a note saying what its English text shows)."""
    parts = []
    for name, data in pngs.items():
        stem = name[:-4]
        parts.append(f"<h2>{_say(lang, zh.CHARTS.get(stem, stem), stem.replace('_', ' '))}</h2>")
        if lang == "zh" and stem in zh.CHART_NOTES:
            parts.append(f"<p class='note'>{zh.CHART_NOTES[stem]}</p>")
        parts.append(f"<img src='data:image/png;base64,{base64.b64encode(data).decode()}'>")
    if pngs and "feature_importance.png" not in pngs:
        parts.append(f"<h2>{_say(lang, '特征重要性', 'feature importance')}</h2>" + _para(
            lang, "未能衡量：最终模型没有监督部分（没有已知违法可供学习），任何特征都没有增益。",
            "not measured: the final model has no supervised part (no "
            "known violation to learn from), so no feature carries any gain."))
    return parts


def report_html(result: BacktestResult, pngs: dict[str, bytes], title: str, extra: dict | None = None,
                lang: str = "en") -> str:
    """The backtest page: ``lang`` "en" (the data scientists') or "zh" (the bureau's: Chinese headings, labels and
    notes with the English beside them, the same numbers and charts)."""
    if lang not in PAGES:
        raise ValueError(f"lang must be one of {sorted(PAGES)}, not {lang!r}")
    cap = result.capacity_k
    summary = result.summary()
    cols = [c for c in summary.columns if any(c.startswith(p) for p in (f"precision_at_{cap}", "precision_at_100", "recall_at_100",
                                                                          f"labelled_at_{cap}", "average_precision", f"lift_vs_naive_at_{cap}"))]
    per_cut = result.metrics[["cutoff", "target", "scorer"] + [c for c in result.metrics.columns if c.startswith(("positives", "precision_at", "recall_at", "labelled_at", "average_precision", "lift"))]]
    missing = NOT_MEASURED[lang]
    not_measured = _para(
        lang,
        f"未能衡量：窗口内目标违法少于{MIN_LABELS}起（核查结论），一起也没有（召回率、平均精确率），对比方法一起也没查到"
        "（提升），或可衡量的截点不足两个（标准差）。计数为整家企业；计数的均值或随机抽查的期望值保留一位小数。",
        f"not measured: the window held fewer than {MIN_LABELS} violations of the target "
        "(inspected), none at all (recall, average precision), the baseline found none (lift), or fewer "
        "than two cut-offs were measured (std). Counts are whole entities; a mean of counts or the random "
        "list's expected count has one decimal.", "note")
    parts = _head(result, title, lang)
    if extra:
        parts.append("<ul>" + "".join(f"<li>{_say(lang, zh.FACTS.get(k, k), k) if k in zh.FACTS else k}: {v}</li>"
                                      for k, v in extra.items()) + "</ul>")
    parts += [f"<h2>{_say(lang, '各回测截点的均值与标准差', 'Mean and std over cut-offs')}</h2>",
              _table(summary[cols].reset_index(), missing, lang), not_measured]
    parts += [f"<h2>{_say(lang, '各回测截点', 'Per cut-off')}</h2>", _table(per_cut, missing, lang), not_measured]
    parts += _charts(pngs, lang)
    if len(result.audit):
        audit_heading = _say(lang, f"前{cap}条名单的审计（各截点合并）", f"Audit of the list at k = {cap} (pooled over cut-offs)")
        parts += [f"<h2>{audit_heading}</h2>",
                  _table(result.audit, "—", lang),
                  _para(lang, "— ：未计算：按核查结论的误报率需要该组有列入名单且有核查结论的企业，按评估真值的误报率需要"
                              "该组有列入名单的企业。",
                        "— : not computed: fdr_vs_verdicts needs a flagged entity of the group with a verdict, "
                        "fdr_vs_truth a flagged entity.", "note")]
    parts.append("</body></html>")
    return "\n".join(parts)
