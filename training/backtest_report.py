"""What a backtest looks like to a person: charts of precision@k per cut-off beside the baselines, the score
distribution and feature importance, and the HTML page the training run logs beside them."""

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
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
        ax.set(title=f"precision@k ({tname}; solid model, dotted naive, dashed random)", xlabel="k", ylabel="precision", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    out["precision_at_k.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    last = cutoffs[-1]
    s = result.scores[last.cutoff]
    groups = {"never visited": last.y == -1, "clean": last.y == 0, "violation": last.y == 1}
    for name, mask in groups.items():
        if mask.any():
            ax.hist(s[mask], bins=40, alpha=0.6, density=True, label=name)
    if final_scores is not None:
        ax.hist(final_scores, bins=40, histtype="step", density=True, color="black", label="final model")
    ax.set(title=f"risk score distribution (cut-off {last.cutoff:%Y-%m})", xlabel="risk score")
    ax.legend(fontsize=7)
    out["score_distribution.png"] = _png(fig)

    if result.importance is not None and len(result.importance):
        top = result.importance.sort_values().tail(20)
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
        ax.barh(top.index, top.to_numpy())
        ax.set(title="feature importance (final model)")
        out["feature_importance.png"] = _png(fig)
    return out


def model_importance(model, columns: Sequence[str]) -> pd.Series | None:
    """Whatever importance the model exposes (RiskModel or a LightGBM inside it)."""
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


def report_html(result: BacktestResult, pngs: dict[str, bytes], title: str, extra: dict | None = None) -> str:
    cap = result.capacity_k
    summary = result.summary()
    cols = [c for c in summary.columns if any(c.startswith(p) for p in (f"precision_at_{cap}", "precision_at_100", "recall_at_100",
                                                                          f"labelled_at_{cap}", "average_precision", f"lift_vs_naive_at_{cap}"))]
    per_cut = result.metrics[["cutoff", "target", "scorer"] + [c for c in result.metrics.columns if c.startswith(("precision_at", "recall_at", "labelled_at", "average_precision", "lift"))]]
    parts = [
        f"<html><head><meta charset='utf-8'><title>{title}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>Operating k (officers' capacity) = {cap}. Targets: <b>inspected</b> = hidden-type violations found by inspections on or "
        f"after the cut-off (unvisited entities count as misses: a lower bound; not measured when a window holds fewer "
        f"than {MIN_LABELS}); <b>truth</b> = planted hidden-type violations, "
        "evaluation only. Entities confirmed before a cut-off are left out. Random = exact expectation.</p>",
        f"<p>Steadiness (mean − std of precision@{cap}, inspected): {_measured(result)}</p>",
    ]
    if extra:
        parts.append("<ul>" + "".join(f"<li>{k}: {v}</li>" for k, v in extra.items()) + "</ul>")
    parts += ["<h2>Mean and std over cut-offs</h2>",
              summary[cols].to_html(float_format=lambda v: f"{v:.3f}", na_rep="not measured")]
    parts += ["<h2>Per cut-off</h2>", per_cut.to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                                       na_rep="not measured")]
    for name, data in pngs.items():
        parts.append(f"<h2>{name[:-4].replace('_', ' ')}</h2><img src='data:image/png;base64,{base64.b64encode(data).decode()}'>")
    if len(result.audit):
        parts += [f"<h2>Audit of the list at k = {cap} (pooled over cut-offs)</h2>",
                  result.audit.to_html(index=False, float_format=lambda v: f"{v:.3f}")]
    parts.append("</body></html>")
    return "\n".join(parts)
