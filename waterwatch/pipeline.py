"""Wires the layers together, stage by stage. The only module that imports every layer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from features.ingest import ingest
from features.workspace import Workspace
from waterwatch.settings import Settings


def progress_factory(settings: Settings):
    """A tqdm wrapper when progress is wanted, else None (stages accept either)."""
    if not settings.show_progress:
        return None
    from tqdm.auto import tqdm

    return tqdm


def run_ingest(data: Path, workspace: Path, settings: Settings, as_of: str | None = None) -> dict:
    ws = Workspace(workspace)
    summary = ingest(data, ws, as_of=as_of, progress=progress_factory(settings))
    return summary


def run_pipeline(data: Path, out: Path, settings: Settings, as_of: str | None = None, trials: int | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ws = Workspace(out / "workspace")
    summary = run_ingest(data, ws.root, settings, as_of=as_of)
    (out / "ingest_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shutil.copyfile(ws.stage("quarantine") / "quarantine.csv", out / "quarantine.csv")
    return {"ingest_summary": summary, "workspace": ws.root}
