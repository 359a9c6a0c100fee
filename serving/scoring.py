"""Scoring: the champion model over the entity snapshot at the workspace's as-of, as ranked leads.

The ranking is city-wide and complete. Which leads enter the officers' queues (the top of
each district plus a random exploration share, with the probability of entry recorded) is
decided when a run is published: ``serving.queue.build_queue``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.workspace import Workspace
from training.artifacts import ModelBundle, load_champion

LEAD_COLUMNS = ["rank", "uscc", "name", "district", "industry_code", "risk_score", "reasons", "model_version"]
REASON_SEPARATOR = "；"


def snapshot_at_as_of(workspace: Path | str, settings=None) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The entity snapshot at the workspace's as-of: the one the profile stage saved for that as-of, else built
    from the saved (or rebuilt) profiles."""
    from features.profiles import entity_snapshot
    from training.train import load_inputs, profiles_at_as_of

    ws = Workspace(workspace)
    as_of = ws.as_of()
    if ws.has("profiles", "snapshot") and ws.manifest().get("profiles_as_of") == as_of.date().isoformat():
        return ws.read("profiles", "snapshot").set_index("uscc"), as_of
    tables, links, as_of = load_inputs(ws.root, settings)
    return entity_snapshot(profiles_at_as_of(ws.root, tables, links, as_of), tables, as_of), as_of


def score(
    workspace: Path | str, settings, bundle: ModelBundle | None = None, reasons_for: int | None = None
) -> pd.DataFrame:
    """Leads: every registered, non-deregistered entity once, rank 1 = highest risk, with reasons.

    ``reasons_for`` limits the (slower) explanations to the first ranks; None explains every entity,
    since exploration can put any of them in an officer's queue.
    """
    from models.reasons import explain

    bundle = bundle if bundle is not None else load_champion(workspace)
    snapshot, as_of = snapshot_at_as_of(workspace, settings if hasattr(settings, "linkage") else None)
    X = bundle.matrix(snapshot)
    risk = bundle.model.predict_proba(X)[:, 1]
    order = np.lexsort((snapshot.index.to_numpy(dtype=str), -risk))
    X = X.iloc[order]
    explained = np.zeros(len(X), dtype=bool)
    explained[: len(X) if reasons_for is None else reasons_for] = True
    reasons = np.full(len(X), "", dtype=object)
    if explained.any():
        reasons[explained] = [REASON_SEPARATOR.join(r) for r in explain(bundle.model, X[explained], top=3)]
    meta = snapshot.iloc[order]
    leads = pd.DataFrame(
        {
            "rank": np.arange(1, len(X) + 1),
            "uscc": meta.index.astype("str"),
            "name": meta["name"].to_numpy(),
            "district": meta["district"].to_numpy(),
            "industry_code": meta["industry_code"].to_numpy(),
            "risk_score": risk[order],
            "reasons": pd.array(reasons, dtype="str"),
            "model_version": bundle.version,
        }
    )
    return leads[LEAD_COLUMNS]
