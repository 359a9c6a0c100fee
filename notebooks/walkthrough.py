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
# # WaterWatch walkthrough: from a data drop to a champion model
#
# For data scientists who retrain the risk model. We explore a drop, train (temporal
# backtest, Optuna, MLflow), read the backtest, compare the new version with the champion
# and see how the `champion` alias moves.
#
# Parameters come from the environment so that the same notebook runs on a real drop or,
# by default, on a small generated city:
# `WATERWATCH_NB_DROP` (a drop folder), `WATERWATCH_NB_WORK` (where to write),
# `WATERWATCH_NB_ENTITIES`, `WATERWATCH_NB_TRIALS`.

# %% tags=["parameters"]
import os
import tempfile
from pathlib import Path

DROP = os.environ.get("WATERWATCH_NB_DROP", "")
WORK = Path(os.environ.get("WATERWATCH_NB_WORK") or tempfile.mkdtemp(prefix="waterwatch-nb-"))
ENTITIES = int(os.environ.get("WATERWATCH_NB_ENTITIES", "1500"))
TRIALS = int(os.environ.get("WATERWATCH_NB_TRIALS", "4"))

# %%
import json
import sys

import pandas as pd

ROOT = Path.cwd() if (Path.cwd() / "training").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

from features.ingest import ingest
from features.linkage import link_accounts
from features.workspace import Workspace
from training.train import train
from waterwatch.settings import Settings

settings = Settings(home=WORK / "var", show_progress=False)
if not DROP:
    from synth import SynthConfig, generate_city

    DROP = WORK / "drop"
    if not (DROP / "entities.csv").exists() and not (DROP / "entities.parquet").exists():
        generate_city(SynthConfig(entities=ENTITIES, seed=5), DROP)
DROP = Path(DROP)
ws = Workspace(WORK / "workspace")
print("drop:", DROP, " workspace:", ws.root, " MLflow:", settings.resolved_tracking_uri())

# %% [markdown]
# ## 1. Explore the drop
# Ingest validates every table against the contract; rows that break it are quarantined, never lost.

# %%
summary = ingest(DROP, ws)
pd.DataFrame(summary).T

# %%
tables = ws.typed_tables()
as_of = ws.as_of()
insp = tables["inspections"]
print(f"as of {as_of:%Y-%m}: {len(tables['entities']):,} entities, {len(insp):,} inspections")
insp["outcome"].value_counts()

# %% [markdown]
# Inspections are the only labels: most entities were never visited. "Never visited" is
# *unknown*, not clean. Supply and discharge accounts must be linked to registered entities
# before any profile can be built.

# %%
links = link_accounts(tables["entities"], tables["supply"], tables["discharge"], settings.linkage)
ws.write("linked", "linkage", links)
links.groupby(["source", "status"]).size().unstack(fill_value=0)

# %% [markdown]
# ## 2. Train
# Rolling cut-offs every six months: at each, features and labels use only data before it,
# and the list is judged on violations that inspections found afterwards. Optuna searches
# the model's parameters on that backtest; the final model is fitted on everything known.

# %%
first = train(ws.root, settings, trials=TRIALS)
print(f"version {first.version}, promoted: {first.promoted}, objective {first.objective:.3f}")

# %% [markdown]
# ## 3. Read the backtest
# Precision@k is what officers feel: of the k entities they can visit, how many are violators.
# `inspected` counts only violations confirmed by later inspections (unvisited leads count as
# misses, so it is a lower bound: see `labelled_at_k`). Baselines: random and the naive
# discharge/supply ratio, computed in the same run.

# %%
cap = settings.model.officer_capacity_k
summary = first.backtest.summary()
cols = [f"precision_at_{cap}_mean", f"precision_at_{cap}_std", f"recall_at_{cap}_mean", f"labelled_at_{cap}_mean",
        "average_precision_mean"]
summary[[c for c in cols if c in summary]]

# %%
from IPython.display import Image, display

for png in sorted((ws.root / "models" / "backtest").glob("*.png")):
    display(Image(filename=str(png)))

# %% [markdown]
# The audit: where does the list at the operating k fall, by district, industry section and
# size band, and how often did a verdict find a flagged entity clean?

# %%
first.backtest.audit.sort_values("flag_rate", ascending=False).head(15)

# %% [markdown]
# ## 4. Compare with the champion
# A second run with a different budget. The champion's parameters are re-run through this
# run's own backtest (same data, same cut-offs) and the alias moves only if the new version wins.

# %%
second = train(ws.root, settings, trials=max(1, TRIALS // 2))
print(json.dumps({k: second.summary[k] for k in ("version", "promoted", "champion_version", "objective",
                                                 "champion_objective")}, indent=2))

# %% [markdown]
# ## 5. Promote
# Training promotes on merit. A supervisor may still move the alias by hand (for instance
# to roll back); scoring follows `champion.joblib`, written when training promotes.

# %%
import mlflow

mlflow.set_tracking_uri(settings.resolved_tracking_uri())
client = mlflow.MlflowClient()
name = settings.model.registered_model_name
versions = client.search_model_versions(f"name='{name}'")
champ = client.get_model_version_by_alias(name, "champion")
pd.DataFrame(
    [{"version": v.version, "objective": v.tags.get("backtest_objective"), "champion": v.version == champ.version}
     for v in versions]
).sort_values("version")

# %%
from training.artifacts import load_champion

bundle = load_champion(ws.root)
print("champion.joblib holds version", bundle.version, "trained", bundle.metadata.get("trained_at"))
