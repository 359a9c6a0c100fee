# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # WaterWatch diagnostics: scores, calibration, reasons, audit
#
# Reads a trained workspace (`WATERWATCH_NB_WORKSPACE`, with `WATERWATCH_NB_HOME` for the
# MLflow store). Without one, it generates a small city and trains it first (no tuning).

# %% tags=["parameters"]
import os
import tempfile
from pathlib import Path

WORKSPACE = os.environ.get("WATERWATCH_NB_WORKSPACE", "")
HOME = os.environ.get("WATERWATCH_NB_HOME", "")
ENTITIES = int(os.environ.get("WATERWATCH_NB_ENTITIES", "1500"))

# %%
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

ROOT = Path.cwd() if (Path.cwd() / "training").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

from features.workspace import Workspace
from waterwatch.settings import Settings

if not WORKSPACE:
    from features.ingest import ingest
    from features.linkage import link_accounts
    from synth import SynthConfig, generate_city
    from training.train import train

    work = Path(tempfile.mkdtemp(prefix="waterwatch-diag-"))
    generate_city(SynthConfig(entities=ENTITIES, seed=6), work / "drop")
    WORKSPACE, HOME = work / "workspace", work / "var"
    ingest(work / "drop", Workspace(WORKSPACE))
    tables = Workspace(WORKSPACE).typed_tables()
    links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], Settings().linkage)
    Workspace(WORKSPACE).write("linked", "linkage", links)
    train(Path(WORKSPACE), Settings(home=Path(HOME), show_progress=False), trials=0)
settings = Settings(home=Path(HOME or "var"), show_progress=False)
ws = Workspace(WORKSPACE)

# %% [markdown]
# ## Leads from the champion

# %%
from serving.scoring import score

leads = score(ws.root, settings)
print(f"{len(leads):,} entities scored with model version {leads['model_version'].iloc[0]}")
leads.head(10)[["rank", "uscc", "name", "district", "risk_score", "reasons"]]

# %% [markdown]
# ## Score distribution
# Most entities should sit low, with a thin tail: the officers' capacity is a small share of the city.

# %%
cap = settings.model.officer_capacity_k
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(leads["risk_score"], bins=50)
ax.axvline(leads["risk_score"].iloc[min(cap, len(leads)) - 1], color="red", ls="--", label=f"rank {cap}")
ax.set(xlabel="risk score", ylabel="entities", yscale="log")
ax.legend()
plt.show()

# %% [markdown]
# ## Calibration on the latest backtest cut-off
# The model is re-fitted with the champion's parameters on labels known before the latest
# cut-off, and its scores are compared with what inspections found afterwards (only entities
# with a verdict). A score is a ranking first; calibration says how far to read it as odds.

# %%
from features.profiles import SNAPSHOT_META  # noqa: F401  (profiles must be importable here)
from training.artifacts import load_champion
from training.backtest import build_cutoffs, risk_model_fit_predict
from training.train import load_inputs

bundle = load_champion(ws.root)
tables, links, as_of = load_inputs(ws.root, settings)
cut = build_cutoffs(tables, links, as_of, 1)[0]
s = risk_model_fit_predict(bundle.metadata.get("params", {}), settings.model.random_state)(cut)
verdicted = cut.verdict.to_numpy() & cut.evaluated
frame = pd.DataFrame({"score": s[verdicted], "violation": cut.found.to_numpy()[verdicted]})
if len(frame) >= 10:
    frame["bin"] = pd.qcut(frame["score"], q=min(5, frame["score"].nunique()), duplicates="drop")
    calib = frame.groupby("bin", observed=True).agg(mean_score=("score", "mean"), violation_rate=("violation", "mean"),
                                                     entities=("score", "size"))
else:
    calib = frame
calib

# %%
if len(frame) >= 10:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(calib["mean_score"], calib["violation_rate"], "o-")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    ax.set(xlabel="mean score", ylabel="violation rate among verified", title=f"cut-off {cut.cutoff:%Y-%m}")
    plt.show()

# %% [markdown]
# ## Reasons
# Which reasons does the top of the list carry? Officers read them before a visit.

# %%
top = leads.head(cap)
reason_counts = top["reasons"].str.split("；").explode().str.replace(r"[0-9.,%]+", "#", regex=True).value_counts()
reason_counts.head(15)

# %% [markdown]
# ## Audit of the list at the operating k
# From the last training run: flag rate and false-discovery rate (against verdicts) by
# district, industry section and size band, pooled over the backtest cut-offs.

# %%
audit_path = ws.root / "models" / "backtest" / "audit.csv"
audit = pd.read_csv(audit_path) if audit_path.exists() else pd.DataFrame()
audit.sort_values(["dimension", "flag_rate"], ascending=[True, False]) if len(audit) else audit

# %%
flag_share = pd.concat(
    {"list": leads.head(cap)["district"].value_counts(normalize=True),
     "city": leads["district"].value_counts(normalize=True)}, axis=1
).fillna(0.0)
flag_share.assign(ratio=lambda d: d["list"] / d["city"].replace(0, np.nan)).sort_values("ratio", ascending=False)
