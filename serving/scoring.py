"""Scoring: the champion model over the entity snapshot at the workspace's as-of, as ranked leads.

The ranking is city-wide and complete, by the probability of an undiscovered hidden violation (a private
well, abstraction with no permit, a tampered meter). Which leads enter the officers' queues (the top of
each district plus a random exploration share, with the probability of entry recorded) is decided when a
run is published: ``serving.queue.build_queue``. ``documented_breach`` says that the case track holds a
documented breach of the entity (information only: it never raises the rank).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from features.workspace import Workspace
from training.artifacts import ModelBundle, load_champion

LEAD_COLUMNS = ["rank", "uscc", "name", "district", "industry_code", "risk_score", "reasons", "model_version",
                "reason_codes", "documented_breach"]
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


def documented_breaches(snapshot: pd.DataFrame, cases: pd.DataFrame | None = None) -> pd.Series:
    """Per entity: the case track holds an open documented breach. From the run's cases when given, else from
    the snapshot's own evidence columns (``models.detectors.documented_breach``)."""
    if cases is not None and "uscc" in cases.columns:
        open_cases = cases if "status" not in cases.columns else cases[cases["status"].fillna("open") == "open"]
        return pd.Series(snapshot.index.isin(open_cases["uscc"].astype("str")), index=snapshot.index)
    from models.detectors import documented_breach

    return documented_breach(snapshot)


def score(
    workspace: Path | str, settings, bundle: ModelBundle | None = None, reasons_for: int | None = None,
    cases: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Leads: every registered, non-deregistered entity once, rank 1 = highest risk, with reasons (Chinese,
    joined by REASON_SEPARATOR) and reason codes (JSON list of {code, value, unit, text_zh, text_en}).

    ``reasons_for`` limits the (slower) explanations to the first ranks; None explains every entity,
    since exploration can put any of them in an officer's queue. ``cases``: the run's cases (case track), for
    ``documented_breach``; by default the check stage's (``<ws>/checks/cases``), else the snapshot's evidence."""
    from models.reasons import explain_reasons

    bundle = bundle if bundle is not None else load_champion(workspace)
    snapshot, as_of = snapshot_at_as_of(workspace, settings if hasattr(settings, "linkage") else None)
    ws = Workspace(workspace)
    if cases is None and ws.has("checks", "cases"):  # the case track's own list, written by the check stage
        cases = ws.read("checks", "cases")
    X = bundle.matrix(snapshot)
    risk = bundle.model.predict_proba(X)[:, 1]
    order = np.lexsort((snapshot.index.to_numpy(dtype=str), -risk))
    ranked = snapshot.iloc[order]
    explained = np.zeros(len(ranked), dtype=bool)
    explained[: len(ranked) if reasons_for is None else reasons_for] = True
    reasons = np.full(len(ranked), "", dtype=object)
    codes = np.full(len(ranked), "[]", dtype=object)
    if explained.any():
        # the model's columns plus the snapshot columns the sentences quote
        frame = pd.concat([bundle.matrix(ranked[explained]), ranked[explained].drop(columns=bundle.features,
                                                                                     errors="ignore")], axis=1)
        found = explain_reasons(bundle.model, frame, top=3)
        reasons[explained] = [REASON_SEPARATOR.join(r.text_zh for r in rs) for rs in found]
        codes[explained] = [json.dumps([r.as_dict() for r in rs], ensure_ascii=False) for rs in found]
    leads = pd.DataFrame(
        {
            "rank": np.arange(1, len(ranked) + 1),
            "uscc": ranked.index.astype("str"),
            "name": ranked["name"].to_numpy(),
            "district": ranked["district"].to_numpy(),
            "industry_code": ranked["industry_code"].to_numpy(),
            "risk_score": risk[order],
            "reasons": pd.array(reasons, dtype="str"),
            "model_version": bundle.version,
            "reason_codes": pd.array(codes, dtype="str"),
            "documented_breach": documented_breaches(ranked, cases).to_numpy(dtype=bool),
        }
    )
    return leads[LEAD_COLUMNS]
