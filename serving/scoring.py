"""Scoring: the champion model over the entity snapshot at the workspace's as-of, as ranked leads.

The ranking is city-wide and complete, by the probability of an undiscovered hidden violation (a private
well, abstraction with no permit, a tampered meter). Which leads enter the officers' queues (the top of
each district plus a random exploration share, with the probability of entry recorded) is decided when a
run is published: ``serving.queue.build_queue``. ``documented_breach`` says that the case track holds a
documented breach of the entity (information only: it never raises the rank). An entity whose violation an
inspection already recorded is no lead for what no record shows: it is flagged so and ranked after the others.
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
    from models.breaches import documented_breach

    return documented_breach(snapshot)


def recorded_violations(ws: Workspace) -> set[str]:
    """Entities (upper-case USCC) with a violation on record: an inspection of the drop found one. Their
    violation is no longer hidden, so the ranking of undiscovered violations puts them last."""
    if not ws.has("typed", "inspections"):
        return set()
    inspections = ws.read("typed", "inspections")
    if not {"uscc", "outcome"} <= set(inspections.columns):
        return set()
    found = inspections["outcome"].astype("str").str.strip() == "violation"
    return set(inspections.loc[found, "uscc"].dropna().astype("str").str.strip().str.upper())


def snapshot_chunks(workspace: Path | str, settings=None, chunk_rows: int = 250_000):
    """The snapshot at as-of, a chunk of at most ``chunk_rows`` entities at a time: the partitions an
    engine run saved, read one by one, or the snapshot in slices."""
    import pyarrow.parquet as pq

    ws = Workspace(workspace)
    folder = ws.table_path("profiles", "snapshot")
    saved = folder.is_dir() and ws.manifest().get("profiles_as_of") == ws.as_of().date().isoformat()
    if saved:
        for part in sorted(folder.glob("part-*.parquet")):
            pf = pq.ParquetFile(part)
            for batch in pf.iter_batches(batch_size=chunk_rows):
                yield pa_table(batch, pf).to_pandas().set_index("uscc")
        return
    snapshot, _ = snapshot_at_as_of(workspace, settings)
    for start in range(0, max(len(snapshot), 1), chunk_rows):
        yield snapshot.iloc[start : start + chunk_rows]


def pa_table(batch, pf):
    """A record batch as a table with the file's pandas metadata (so dtypes come back as written)."""
    import pyarrow as pa

    return pa.Table.from_batches([batch]).replace_schema_metadata(pf.schema_arrow.metadata)


def score(
    workspace: Path | str, settings, bundle: ModelBundle | None = None, reasons_for: int | None = None,
    cases: pd.DataFrame | None = None, chunk_rows: int = 250_000,
) -> pd.DataFrame:
    """Leads: every registered, non-deregistered entity once, rank 1 = highest risk, with reasons (Chinese,
    joined by REASON_SEPARATOR) and reason codes (JSON list of {code, value, unit, text_zh, text_en}).

    ``reasons_for`` limits the (slower) explanations to the first ranks; None explains every entity,
    since exploration can put any of them in an officer's queue. ``cases``: the run's cases (case track), for
    ``documented_breach``; by default the check stage's (``<ws>/checks/cases``), else the snapshot's evidence.
    Entities are scored ``chunk_rows`` at a time, so memory is bounded by a chunk and the leads; scores do
    not depend on the batch (the model's arithmetic is row by row, ``tests/test_determinism.py``), so the
    leads equal an unchunked run's.
    """
    bundle = bundle if bundle is not None else load_champion(workspace)
    settings_arg = settings if hasattr(settings, "linkage") else None
    ws = Workspace(workspace)
    if cases is None and ws.has("checks", "cases"):  # the case track's own list, written by the check stage
        cases = ws.read("checks", "cases")
    metas, risks = [], []
    for chunk in snapshot_chunks(workspace, settings_arg, chunk_rows):
        risks.append(bundle.model.predict_proba(bundle.matrix(chunk))[:, 1])
        metas.append(pd.DataFrame({
            "uscc": chunk.index.astype("str"), "name": chunk["name"].to_numpy(), "district": chunk["district"].to_numpy(),
            "industry_code": chunk["industry_code"].to_numpy(),
            "documented_breach": documented_breaches(chunk, cases).to_numpy(dtype=bool),
        }))
    meta = pd.concat(metas, ignore_index=True)
    risk = np.concatenate(risks) if risks else np.zeros(0)
    # a violation an inspection already recorded is discovered: the entity is the case track's, and the field
    # visits of the ranking go first to entities whose violation no record shows (its score stays as it is)
    known = meta["uscc"].str.upper().isin(recorded_violations(ws)).to_numpy()
    meta["documented_breach"] = meta["documented_breach"].to_numpy(dtype=bool) | known
    order = np.lexsort((meta["uscc"].to_numpy(dtype=str), -risk, known))
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    wanted = rank < (len(order) if reasons_for is None else reasons_for)
    reasons, codes = _explain(workspace, settings_arg, bundle, wanted, chunk_rows)
    meta = meta.iloc[order]
    leads = pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "uscc": meta["uscc"].to_numpy(),
            "name": meta["name"].to_numpy(),
            "district": meta["district"].to_numpy(),
            "industry_code": meta["industry_code"].to_numpy(),
            "risk_score": risk[order],
            "reasons": pd.array(reasons[order], dtype="str"),
            "model_version": bundle.version,
            "reason_codes": pd.array(codes[order], dtype="str"),
            "documented_breach": meta["documented_breach"].to_numpy(dtype=bool),
        }
    )
    return leads[LEAD_COLUMNS]


def _explain(workspace, settings, bundle: ModelBundle, wanted: np.ndarray, chunk_rows: int):
    """Reasons (joined Chinese sentences) and reason codes (JSON) of the wanted rows, chunk by chunk in
    snapshot order; the rest get empty reasons and ``[]``."""
    from models.reasons import explain_reasons

    reasons = np.full(len(wanted), "", dtype=object)
    codes = np.full(len(wanted), "[]", dtype=object)
    if not wanted.any():
        return reasons, codes
    start = 0
    for chunk in snapshot_chunks(workspace, settings, chunk_rows):
        rows = np.flatnonzero(wanted[start : start + len(chunk)])
        if len(rows):
            part = chunk.iloc[rows]
            # the model's columns plus the snapshot columns the sentences quote
            frame = pd.concat([bundle.matrix(part), part.drop(columns=bundle.features, errors="ignore")], axis=1)
            found = explain_reasons(bundle.model, frame, top=3)
            reasons[start + rows] = [REASON_SEPARATOR.join(r.text_zh for r in rs) for rs in found]
            codes[start + rows] = [json.dumps([r.as_dict() for r in rs], ensure_ascii=False) for rs in found]
        start += len(chunk)
    return reasons, codes
