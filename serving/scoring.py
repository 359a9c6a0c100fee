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
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from features.workspace import Workspace
from training.artifacts import ModelBundle, read_champion

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
    """Entities (upper-case USCC) with a violation on record: an inspection of the drop dated before the as-of
    found one. Their violation is no longer hidden, so the ranking of undiscovered violations puts them last.
    A visit on or after the as-of is not known yet (a replay at an earlier as-of must rank the violators it
    found later as it would have then)."""
    if not ws.has("typed", "inspections"):
        return set()
    inspections = ws.read("typed", "inspections")
    if not {"uscc", "outcome", "inspected_on"} <= set(inspections.columns):
        return set()
    found = inspections["outcome"].astype("str").str.strip() == "violation"
    found &= pd.to_datetime(inspections["inspected_on"], errors="coerce") < ws.as_of()
    return set(inspections.loc[found, "uscc"].dropna().astype("str").str.strip().str.upper())


def snapshot_chunks(workspace: Path | str, settings=None, chunk_rows: int = 250_000):
    """The snapshot at as-of, a chunk of at most ``chunk_rows`` entities at a time: the partitions an
    engine run saved, read one by one, or the snapshot in slices."""
    import pyarrow.parquet as pq

    parts = saved_parts(workspace)
    if parts:
        for part in parts:
            pf = pq.ParquetFile(part)
            for batch in pf.iter_batches(batch_size=chunk_rows):
                yield pa_table(batch, pf).to_pandas().set_index("uscc")
        return
    yield from _slices(snapshot_at_as_of(workspace, settings)[0], chunk_rows)


def _slices(snapshot: pd.DataFrame, chunk_rows: int):
    for start in range(0, max(len(snapshot), 1), chunk_rows):
        yield snapshot.iloc[start : start + chunk_rows]


def pa_table(batch, pf):
    """A record batch as a table with the file's pandas metadata (so dtypes come back as written)."""
    import pyarrow as pa

    return pa.Table.from_batches([batch]).replace_schema_metadata(pf.schema_arrow.metadata)


def score(
    workspace: Path | str, settings, bundle: ModelBundle | None = None, reasons_for: int | None = None,
    cases: pd.DataFrame | None = None, chunk_rows: int = 250_000, workers: int = 1, parallel_from: int | None = None,
) -> pd.DataFrame:
    """Leads: every registered, non-deregistered entity once, rank 1 = highest risk, with reasons (Chinese,
    joined by REASON_SEPARATOR) and reason codes (JSON list of {code, value, unit, text_zh, text_en}).

    ``reasons_for`` limits the (slower) explanations to the first ranks; None explains every entity,
    since exploration can put any of them in an officer's queue. ``cases``: the run's cases (case track), for
    ``documented_breach``; by default the check stage's (``<ws>/checks/cases``), else the snapshot's evidence.
    Entities are scored ``chunk_rows`` at a time, so memory is bounded by a chunk and the leads; scores do
    not depend on the batch (the model's arithmetic is row by row, ``tests/test_determinism.py``), so the
    leads equal an unchunked run's. ``workers`` > 1 scores and explains the saved partitions of a run of at least
    ``parallel_from`` entities (default PARALLEL_ROWS) in that many processes at once (when every entity is
    explained; the same leads).
    """
    bundle = bundle if bundle is not None else served_champion(workspace, settings)
    settings_arg = settings if hasattr(settings, "linkage") else None
    ws = Workspace(workspace)
    if cases is None and ws.has("checks", "cases"):  # the case track's own list, written by the check stage
        cases = ws.read("checks", "cases")
    parts = saved_parts(workspace) if reasons_for is None and workers > 1 else []
    if len(parts) > 1 and sum(pq_rows(p) for p in parts) >= (PARALLEL_ROWS if parallel_from is None else parallel_from):
        return _score_in_processes(workspace, bundle, cases, parts, chunk_rows, workers)
    chunks = _chunk_source(workspace, settings_arg, chunk_rows)  # scored, then explained: the snapshot built once
    scored = [_scored(bundle, chunk, cases) for chunk in chunks()]
    meta = pd.concat([m for m, _ in scored], ignore_index=True)
    risk = np.concatenate([r for _, r in scored]) if scored else np.zeros(0)
    known = meta["uscc"].str.upper().isin(recorded_violations(ws)).to_numpy()
    order = np.lexsort((meta["uscc"].to_numpy(dtype=str), -risk, known))  # the leads' order (_leads)
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    wanted = rank < (len(order) if reasons_for is None else reasons_for)
    reasons, codes = _explain(chunks, bundle, wanted)
    return _leads(bundle, meta, risk, reasons, codes, known)


def served_champion(workspace: Path | str, settings) -> ModelBundle:
    """The workspace's ``champion.joblib``, refused (``training.champion.ChampionError``, naming the command that
    fixes it) when the registry's ``champion`` alias points to another version: someone moved the alias by hand
    (a rollback in MLflow's UI) and the workspace would otherwise go on serving the model it replaced. Refused
    rather than loaded from the registry here: ``waterwatch champion --version N`` checks that version's feature
    columns against the workspace, records who made it the champion and why, and rewrites ``model.json`` so that
    ``publish`` records the model that scored; scoring itself stays a stage that reads only the workspace. When the
    registry cannot be read (a tracking server down) the file is used and the log says so."""
    return checked_champion(workspace, settings)[0]


def checked_champion(workspace: Path | str, settings) -> tuple[ModelBundle, bytes]:
    """``served_champion`` and the bytes of the file it was read from (``training.artifacts.keep_scored`` keeps
    them as the run's model)."""
    from training.champion import scoring_champion

    bundle, data = read_champion(workspace)
    if hasattr(settings, "resolved_tracking_uri") and hasattr(settings, "model"):
        scoring_champion(bundle, workspace, settings.resolved_tracking_uri(), settings.model.registered_model_name)
    return bundle, data


def _scored(bundle: ModelBundle, chunk: pd.DataFrame, cases: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """A chunk's lead columns and its risk."""
    meta = pd.DataFrame({
        "uscc": chunk.index.astype("str"), "name": chunk["name"].to_numpy(), "district": chunk["district"].to_numpy(),
        "industry_code": chunk["industry_code"].to_numpy(),
        "documented_breach": documented_breaches(chunk, cases).to_numpy(dtype=bool),
    })
    return meta, bundle.model.predict_proba(bundle.matrix(chunk))[:, 1]


def _leads(bundle: ModelBundle, meta: pd.DataFrame, risk: np.ndarray, reasons: np.ndarray, codes: np.ndarray,
           known: np.ndarray) -> pd.DataFrame:
    """The leads in rank order. A violation an inspection already recorded (``known``) is discovered: the entity
    is the case track's, and the field visits of the ranking go first to entities whose violation no record shows
    (its score stays as it is), so they come last; then by risk, ties by uscc."""
    meta["documented_breach"] = meta["documented_breach"].to_numpy(dtype=bool) | known
    order = np.lexsort((meta["uscc"].to_numpy(dtype=str), -risk, known))
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


def _chunk_source(workspace: Path | str, settings, chunk_rows: int):
    """``chunks()`` gives the snapshot at as-of chunk by chunk (``snapshot_chunks``), as often as it is called: the
    saved partitions are read again each time (memory stays a chunk), a snapshot built here (no profile stage ran:
    the notebooks' path) or saved whole is made once and sliced each time."""
    if saved_parts(workspace):
        return lambda: snapshot_chunks(workspace, settings, chunk_rows)
    snapshot, _ = snapshot_at_as_of(workspace, settings)
    return lambda: _slices(snapshot, chunk_rows)


def _explain(chunks, bundle: ModelBundle, wanted: np.ndarray):
    """Reasons (joined Chinese sentences) and reason codes (JSON) of the wanted rows, chunk by chunk in
    snapshot order (``chunks()``: ``_chunk_source``); the rest get empty reasons and ``[]``."""
    reasons = np.full(len(wanted), "", dtype=object)
    codes = np.full(len(wanted), "[]", dtype=object)
    if not wanted.any():
        return reasons, codes

    def explained(start: int, chunk: pd.DataFrame):
        rows = np.flatnonzero(wanted[start : start + len(chunk)])
        return start + rows, (_reasons(bundle, chunk.iloc[rows]) if len(rows) else ([], []))

    def put(done) -> None:
        at, (why, code) = done.result()
        if len(at):
            reasons[at], codes[at] = why, code

    # EXPLAIN_AHEAD chunks at once in threads: LightGBM's SHAP values (most of the time, multi-threaded, without
    # the GIL) of one overlap the Python of another's sentences; each chunk's reasons are its own
    pending: deque = deque()
    start = 0
    with ThreadPoolExecutor(EXPLAIN_AHEAD) as pool:
        for chunk in chunks():
            pending.append(pool.submit(explained, start, chunk))
            start += len(chunk)
            if len(pending) >= EXPLAIN_AHEAD:
                put(pending.popleft())
        while pending:
            put(pending.popleft())
    return reasons, codes


EXPLAIN_AHEAD = 2  # chunks explained at once (memory: that many chunks)


def _reasons(bundle: ModelBundle, part: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The reasons (joined Chinese sentences) and reason codes (JSON) of every row of a snapshot slice."""
    from models.reasons import explain_reasons

    # the model's columns plus the snapshot columns the sentences quote
    frame = pd.concat([bundle.matrix(part), part.drop(columns=bundle.features, errors="ignore")], axis=1)
    found = explain_reasons(bundle.model, frame, top=3)
    return ([REASON_SEPARATOR.join(r.text_zh for r in rs) for rs in found],
            [json.dumps([r.as_dict() for r in rs], ensure_ascii=False) for rs in found])


# -- several processes --------------------------------------------------------------------------

PARALLEL_ROWS = 100_000  # below this, starting the processes costs more than they save
_WORKER: dict = {}


def saved_parts(workspace: Path | str) -> list[Path]:
    """The partitions of the snapshot at as-of that an engine run saved (none: the snapshot is built here)."""
    ws = Workspace(workspace)
    folder = ws.table_path("profiles", "snapshot")
    if not (folder.is_dir() and ws.manifest().get("profiles_as_of") == ws.as_of().date().isoformat()):
        return []
    return sorted(folder.glob("part-*.parquet"))


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _start_worker(bundle: ModelBundle, cases: pd.DataFrame | None) -> None:
    from models import risk

    risk.PREDICT_THREADS = 1  # the processes share the cores (predictions do not depend on the thread count)
    _WORKER.update(bundle=bundle, cases=cases)


def _score_part(part: Path, chunk_rows: int) -> tuple[pd.DataFrame, np.ndarray, list[str], list[str]]:
    """One saved partition scored and explained (in a worker process)."""
    import pyarrow.parquet as pq

    bundle, cases = _WORKER["bundle"], _WORKER["cases"]
    metas, risks, reasons, codes = [], [], [], []
    pf = pq.ParquetFile(part)
    for batch in pf.iter_batches(batch_size=chunk_rows):
        chunk = pa_table(batch, pf).to_pandas().set_index("uscc")
        meta, risk = _scored(bundle, chunk, cases)
        why, code = _reasons(bundle, chunk)
        metas.append(meta), risks.append(risk), reasons.extend(why), codes.extend(code)
    return pd.concat(metas, ignore_index=True), np.concatenate(risks), reasons, codes


def _score_in_processes(workspace, bundle: ModelBundle, cases, parts: list[Path], chunk_rows: int,
                        workers: int) -> pd.DataFrame:
    """Every saved partition scored and explained in ``workers`` processes, the answers in partition order:
    the leads ``score`` gives in one process (each row's risk and reasons are its own)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(workers, len(parts)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(bundle, cases)) as pool:
        done = list(pool.map(_score_part, parts, [chunk_rows] * len(parts)))
    meta = pd.concat([d[0] for d in done], ignore_index=True)
    risk = np.concatenate([d[1] for d in done])
    reasons = np.array([r for d in done for r in d[2]], dtype=object)
    codes = np.array([c for d in done for c in d[3]], dtype=object)
    known = meta["uscc"].str.upper().isin(recorded_violations(Workspace(workspace))).to_numpy()
    return _leads(bundle, meta, risk, reasons, codes, known)
