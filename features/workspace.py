"""The workspace: one folder of Parquet files per pipeline stage, plus a manifest.

Layout (every stage overwrites its own folder whole, so re-running is idempotent)::

    <ws>/manifest.json           source hashes, row counts, as-of, code version
    <ws>/typed/<table>.parquet   accepted rows, typed per the contract
    <ws>/quarantine/quarantine.parquet
    <ws>/ingest_summary.json     {table: {read, accepted, quarantined}}
    <ws>/linked/linkage.parquet  account -> entity links; review.parquet
    <ws>/profiles/profiles.parquet
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd


def code_version() -> str:
    """Installed package version plus the git commit when run from a checkout."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("waterwatch")
    except PackageNotFoundError:
        ver = "0+unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{ver}+{commit}" if commit else ver


class Workspace:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def stage(self, name: str) -> Path:
        return self.root / name

    def reset_stage(self, name: str) -> Path:
        """Empty a stage folder so that a re-run never leaves stale files behind."""
        path = self.stage(name)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    # -- tables -----------------------------------------------------------
    def table_path(self, stage: str, name: str) -> Path:
        return self.stage(stage) / f"{name}.parquet"

    def has(self, stage: str, name: str) -> bool:
        return self.table_path(stage, name).exists()

    def read(self, stage: str, name: str) -> pd.DataFrame:
        path = self.table_path(stage, name)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; run the stage that writes '{stage}' first")
        return pd.read_parquet(path)

    def write(self, stage: str, name: str, frame: pd.DataFrame) -> Path:
        path = self.table_path(stage, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        return path

    def require_typed(self) -> None:
        """Raise, saying what to run, when ingest has not written the required typed tables."""
        from features.contract import TABLES

        missing = [name for name, spec in TABLES.items() if not spec.optional and not self.has("typed", name)]
        if missing:
            raise FileNotFoundError(
                f"{self.stage('typed')} has no {', '.join(missing)}: run `waterwatch ingest` into this workspace first"
            )

    def typed_tables(self) -> dict[str, pd.DataFrame]:
        """All accepted department tables (optional ones absent from the drop are empty frames)."""
        from features.contract import TABLES
        from features.ingest import empty_typed

        self.require_typed()
        return {
            name: self.read("typed", name) if self.has("typed", name) else empty_typed(spec)
            for name, spec in TABLES.items()
        }

    def quarantine(self, table: str | None = None) -> pd.DataFrame | None:
        """Ingest's quarantine rows (of ``table`` only, if given), or None before ingest has run."""
        path = self.table_path("quarantine", "quarantine")
        if not path.exists():
            return None
        rows = pd.read_parquet(path)
        return rows if table is None else rows[rows["table"] == table].reset_index(drop=True)

    # -- manifest ---------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        if self.manifest_path.exists():
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {}

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        data = self.manifest()
        data.update(fields)
        data["code_version"] = code_version()
        data["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest_path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        return data

    def as_of(self) -> pd.Timestamp:
        value = self.manifest().get("as_of")
        if not value:
            raise ValueError(f"{self.manifest_path} has no as_of; run ingest first")
        return pd.Timestamp(value)
