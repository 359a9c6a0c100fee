"""The Chinese words of the backtest page's Chinese edition (``backtest_report.report_html(..., lang="zh")``): the
bureau's staff read Chinese, its data scientists the metric names of ``metrics.csv`` and MLflow, so every Chinese
name has the English one beside it. The metric words are the console's (``serving.i18n``, ``serving.report``),
written here again because training does not import serving."""

from __future__ import annotations

TARGETS = {"inspected": "核查结论", "truth": "评估真值"}
SCORERS = {"model": "模型", "naive": "简单规则", "random": "随机抽查"}
DIMENSIONS = {"district": "区县", "industry_section": "行业门类", "size_band": "企业规模"}
SIZE_BANDS = {"micro": "微型", "small": "小型", "medium": "中型", "large": "大型", "unknown": "未知"}
_VALUES = {"target": TARGETS, "scorer": SCORERS, "dimension": DIMENSIONS}
_STEMS = (("precision_at_", "前{k}条查实率"), ("recall_at_", "前{k}条召回率"),
          ("labelled_at_", "前{k}条中有核查结论的企业数"), ("lift_vs_naive_at_", "前{k}条相对简单规则的提升"),
          ("lift_vs_random_at_", "前{k}条相对随机抽查的提升"))
COLUMNS = {
    "cutoff": "回测截点", "target": "目标", "scorer": "排序方法", "entities": "企业数", "positives": "窗口内违法数",
    "average_precision": "平均精确率", "dimension": "维度", "group": "分组", "flagged": "列入名单",
    "verified": "列入名单且有核查结论", "false_discoveries": "核查未发现违法", "truth_false_discoveries": "真值无违法",
    "flag_rate": "列入比例", "fdr_vs_verdicts": "误报率（按核查结论）", "fdr_vs_truth": "误报率（按评估真值）",
}
SUFFIXES = {"_mean": "（均值）", "_std": "（标准差）"}
FACTS = {
    "as_of": "数据截止日", "cut-offs": "回测截点", "labelled entities at as_of (1/0)": "截止日有核查结论的企业（违法/未违法）",
    "objective (candidate)": "优化目标（候选模型）", "objective (champion, same backtest)": "优化目标（冠军模型，同一回测）",
    "tuning": "调参", "params": "参数",
}
CHARTS = {"precision_at_k": "前k条查实率", "score_distribution": "风险分数分布", "feature_importance": "特征重要性"}
CHART_NOTES = {  # the PNGs keep English text: a server needs no CJK font to draw them
    "precision_at_k": "横轴：名单长度k（家）；纵轴：前k条中查实的比例（0–1）。实线为模型，点线为简单规则，虚线为随机抽查的期望，"
                      "红色竖线为工作量k；每种颜色一个回测截点。",
    "score_distribution": "最后一个回测截点的风险分数（违法概率，0–1）按从未核查、未违法、违法分组的分布（每组面积为1）；"
                          "黑线为最终模型对全部企业的分数。",
    "feature_importance": "最终模型中各特征占全部分裂增益的百分比（前20个）。",
}


def column(name: str) -> str:
    """A column's Chinese name (``precision_at_20_mean`` -> 前20条查实率（均值）); the name itself when unknown."""
    base, suffix = name, ""
    for end, words in SUFFIXES.items():
        if name.endswith(end):
            base, suffix = name.removesuffix(end), words
    if base in COLUMNS:
        return COLUMNS[base] + suffix
    for stem, words in _STEMS:
        if base.startswith(stem):
            k = base[len(stem):]
            if k.endswith("pct"):  # a share of the list: 前1%查实率
                return words.format(k=k.replace("pct", "%")).replace("条", "") + suffix
            return words.format(k=k) + suffix
    return name


def value(column_name: str, v: str) -> str:
    """A code in a cell in words, its code beside it (核查结论 inspected); other cells as they are."""
    words = _VALUES.get(column_name, {}).get(v)
    return f"{words} {v}" if words else v


def group(dimension: str, v: str) -> str:
    """An audit group: a size band in words, its code beside it; districts and sections as they are."""
    return f"{SIZE_BANDS[v]} {v}" if dimension == "size_band" and v in SIZE_BANDS else v
