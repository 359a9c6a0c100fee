"""What a backtest looks like to a person: charts of precision@k per cut-off beside the baselines, the score
distribution and feature importance, and the HTML page the training run logs beside them.

The page (English, for data scientists) shows counts as whole numbers (a mean or a random list's expectation
of a count to one decimal), a metric that could not be measured as "not measured" and any other missing value
as a dash, explained under its table: never a NaN, never a 0.000 standing in for nothing."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

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


def _measured(result: BacktestResult) -> str:
    value = result.steadiness("inspected")
    if np.isfinite(value):
        return f"{value:.3f}"
    counts = ", ".join(f"{int(n)}" for n in result.positives("inspected").tolist())
    return (f"not measured: the inspections after the cut-offs found {counts} hidden-type violation(s), fewer than "
            f"{MIN_LABELS} per window")


COUNTS = {"entities", "positives", "flagged", "verified", "false_discoveries", "truth_false_discoveries"}
_CSS = ("body{font-family:sans-serif;margin:1em auto;max-width:1400px;padding:0 1em}.scroll{max-width:100%;overflow-x:auto}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%;height:auto}.note{color:#555;font-size:13px}")


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


def _table(frame: pd.DataFrame, missing: str) -> str:
    shown = pd.DataFrame({c: [_cell(str(c), v, missing) for v in frame[c]] for c in frame.columns})
    return f"<div class='scroll'>{shown.to_html(index=False)}</div>"


def report_html(result: BacktestResult, pngs: dict[str, bytes], title: str, extra: dict | None = None) -> str:
    cap = result.capacity_k
    summary = result.summary()
    cols = [c for c in summary.columns if any(c.startswith(p) for p in (f"precision_at_{cap}", "precision_at_100", "recall_at_100",
                                                                          f"labelled_at_{cap}", "average_precision", f"lift_vs_naive_at_{cap}"))]
    per_cut = result.metrics[["cutoff", "target", "scorer"] + [c for c in result.metrics.columns if c.startswith(("positives", "precision_at", "recall_at", "labelled_at", "average_precision", "lift"))]]
    not_measured = (f"<p class='note'>not measured: the window held fewer than {MIN_LABELS} violations of the target "
                    "(inspected), none at all (recall, average precision), the baseline found none (lift), or fewer "
                    "than two cut-offs were measured (std). Counts are whole entities; a mean of counts or the random "
                    "list's expected count has one decimal.</p>")
    parts = [
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>Operating k (officers' capacity) = {cap}. Targets: <b>inspected</b> = hidden-type violations found by inspections on or "
        f"after the cut-off (unvisited entities count as misses: a lower bound; not measured when a window holds fewer "
        f"than {MIN_LABELS}); <b>truth</b> = planted hidden-type violations, "
        "evaluation only. Entities confirmed before a cut-off are left out. Random = exact expectation.</p>",
        f"<p>Steadiness (mean − std of precision@{cap}, inspected): {_measured(result)}</p>",
    ]
    if extra:
        parts.append("<ul>" + "".join(f"<li>{k}: {v}</li>" for k, v in extra.items()) + "</ul>")
    parts += ["<h2>Mean and std over cut-offs</h2>", _table(summary[cols].reset_index(), "not measured"), not_measured]
    parts += ["<h2>Per cut-off</h2>", _table(per_cut, "not measured"), not_measured]
    for name, data in pngs.items():
        parts.append(f"<h2>{name[:-4].replace('_', ' ')}</h2><img src='data:image/png;base64,{base64.b64encode(data).decode()}'>")
    if pngs and "feature_importance.png" not in pngs:
        parts.append("<h2>feature importance</h2><p>not measured: the final model has no supervised part (no "
                     "known violation to learn from), so no feature carries any gain.</p>")
    if len(result.audit):
        parts += [f"<h2>Audit of the list at k = {cap} (pooled over cut-offs)</h2>", _table(result.audit, "—"),
                  "<p class='note'>— : not computed: fdr_vs_verdicts needs a flagged entity of the group with a verdict, "
                  "fdr_vs_truth a flagged entity.</p>"]
    parts.append("</body></html>")
    return "\n".join(parts)
