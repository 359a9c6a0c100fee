"""Where a published run's model file is, however its folder moved since.

A run's ``model.json`` names the bundle that scored it (``artifact``) relative to the run's workspace
(``models/scored/champion-v<version>-<digest>.joblib``; a province city's run names the province workspace's copy
with ``..``). ``publish`` records where that workspace was (``workspace``: its path, and the same relative to the
home folder), and the service looks for the file in the workspace found from its current home first, then at the
recorded path: a deployment moved whole (home, run folders and workspaces together, another WATERWATCH_HOME) keeps
serving its models. Runs published before names were relative name an absolute path, read as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

WORKSPACE_KEY = "workspace"  # in a published run's model_info: {"path": ..., "from_home": ...}


def run_workspace(out: Path, home: Path | None) -> dict[str, str]:
    """What ``publish`` records of the run folder's workspace (``OUT/workspace``, the folder ``artifact`` is
    relative to): its absolute path and, given the publisher's home, its path relative to that home."""
    path = (Path(out) / "workspace").resolve()
    found = {"path": str(path)}
    if home is not None:
        try:
            found["from_home"] = Path(os.path.relpath(path, Path(home).resolve())).as_posix()
        except ValueError:  # another drive: only the absolute path leads there
            pass
    return found


def recorded(info: dict[str, Any], out: Path, home: Path | None) -> dict[str, Any]:
    """The run's model.json as the store keeps it: with where its workspace is when ``artifact`` is relative."""
    artifact = info.get("artifact")
    if not artifact or Path(str(artifact)).is_absolute():
        return info
    return {**info, WORKSPACE_KEY: run_workspace(out, home)}


def candidates(meta: dict[str, Any], home: Path | None = None) -> list[Path]:
    """Where a published run's model file may be, in the order the service tries them (see the module's doc)."""
    artifact = meta.get("artifact")
    if not artifact:
        return []
    path = Path(str(artifact))
    if path.is_absolute():
        return [path]
    where = meta.get(WORKSPACE_KEY) or {}
    bases = []
    if home is not None and where.get("from_home"):
        bases.append(Path(home).resolve() / where["from_home"])
    if where.get("path"):
        bases.append(Path(where["path"]))
    found = list(dict.fromkeys(os.path.normpath(base / path) for base in bases))
    return [Path(p) for p in found]


def model_file(meta: dict[str, Any], home: Path | None = None) -> tuple[Path | None, str | None]:
    """The run's model file, or None and why not."""
    artifact = meta.get("artifact")
    if not artifact:
        return None, "the published run names no model artifact"
    tried = candidates(meta, home)
    for path in tried:
        if path.exists():
            return path, None
    if not tried:
        return None, (f"the published run names {artifact} relative to its workspace but the store does not record "
                      "where that workspace is: publish the run again (`waterwatch publish --out OUT`)")
    if Path(str(artifact)).is_absolute():
        return None, f"FileNotFoundError: {artifact} does not exist"
    return None, (f"{artifact} is in none of the places the run's workspace was looked for "
                  f"({', '.join(str(p) for p in tried)}): publish the run again from where its folder is now "
                  "(`waterwatch publish --out OUT`)")


def lost_copy(meta: dict[str, Any], home: Path | None = None) -> str | None:
    """Why a run naming a kept copy relative to its workspace may not be published: the folder of kept copies is
    there but the file is not (pruned: no run in the store named it). None when it is found, when no such folder is
    (a run folder copied or moved without its workspace: published as before, the service says why it has no
    model), or when the run names an absolute path (runs scored before names were relative)."""
    artifact = meta.get("artifact")
    if not artifact or Path(str(artifact)).is_absolute():
        return None
    if model_file(meta, home)[0] is not None:
        return None
    folders = [str(p.parent) for p in candidates(meta, home) if p.parent.is_dir()]
    return f"not in {', '.join(folders)}" if folders else None


def hold_runs(session) -> None:
    """Hold the store's runs for this transaction: a publish's run row waits until it ends, and it waits for a
    publish that wrote one. A prune reads the runs and removes copies under it, so a copy is never removed while a
    run naming it commits; a publish after the prune finds its copy gone (``lost_copy``) and refuses."""
    from sqlalchemy import text

    from serving.store import begin_write

    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE runs IN SHARE MODE"))  # conflicts with a publish's insert or update
    else:
        begin_write(session)  # SQLite: the database's write lock


def published_names(session) -> set[str]:
    """The file names of the models every run in the store names (a kept copy's name is its model: version and
    digest), for ``training.scored_copies.prune_scored``. Every run, not only the live ones: a run published
    again is live again, with the model its row names."""
    from sqlalchemy import select

    from serving.store import Run
    from training.scored_copies import artifact_name

    names = (artifact_name((info or {}).get("artifact")) for info in session.scalars(select(Run.model_info)))
    return {name for name in names if name}
