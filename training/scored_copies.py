"""The copies of scored models a workspace keeps (``models/scored/``), pruned to those a run may still need.

``score`` keeps the bundle it scored with (``training.artifacts.keep_scored``): every score with a new champion
adds a file, which nothing removed. ``prune_scored`` removes the copies no run needs any more and keeps

- every copy a run in the store names (``published``, by file name: a name is a version and a digest of the
  bytes, so the same name is the same model whichever workspace holds it). The service loads it while that run is
  live, and again when the run is published again; a run whose copy was removed would answer predict with 503.
  When the store could not be read (``published`` None) nothing is removed;
- the copy the workspace's ``models/model.json`` names (its latest score: what its next ``publish`` records);
- the copy of the current ``champion.joblib`` (the next score would write it again);
- the ``keep_recent`` copies used last (a file's time is the last score with it: ``keep_scored`` sets it), for runs
  scored into other folders and not published yet.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from training.artifacts import SCORED_DIR, bundle_digest, champion_path, models_dir

LOG = logging.getLogger("waterwatch.training")


@dataclass
class Pruned:
    """What ``prune_scored`` removed (or, on a dry run, would remove) and why each other copy stays."""

    removed: list[Path] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)  # file name -> the reasons it stays
    skipped: str | None = None  # why nothing was removed at all


def artifact_name(artifact: str | None) -> str | None:
    """The file name a ``model.json``'s ``artifact`` names, however it is written (relative, absolute, with ``\\``)."""
    if not artifact:
        return None
    return PurePosixPath(str(artifact).replace("\\", "/")).name or None


def scored_copies(workspace: Path | str) -> list[Path]:
    """The kept copies, most recently used first (ties by name)."""
    folder = models_dir(workspace) / SCORED_DIR
    if not folder.is_dir():
        return []
    found = [(p.stat().st_mtime, p) for p in folder.glob("champion-v*.joblib") if p.is_file()]
    return [p for _, p in sorted(found, key=lambda item: (-item[0], item[1].name))]


def _workspace_names(workspace: Path | str) -> str | None:
    path = models_dir(workspace) / "model.json"
    try:
        return artifact_name(json.loads(path.read_text(encoding="utf-8")).get("artifact"))
    except (OSError, ValueError, AttributeError):
        return None


def _champion_digest(workspace: Path | str) -> str | None:
    path = champion_path(workspace)
    return bundle_digest(path.read_bytes()) if path.exists() else None


def prune_scored(workspace: Path | str, published: set[str] | None, keep_recent: int,
                 dry_run: bool = False) -> Pruned:
    """Remove the kept copies nothing above needs (``dry_run``: only say which); each removal is logged."""
    copies = scored_copies(workspace)
    if published is None:
        return Pruned(kept={p.name: ["the store could not be read"] for p in copies},
                      skipped="the store could not be read: no copy a published run may name is removed")
    latest, digest = _workspace_names(workspace), _champion_digest(workspace)
    done = Pruned()
    for i, path in enumerate(copies):
        why = [reason for reason, holds in (
            ("a published run names it", path.name in published),
            ("the workspace's model.json names it", path.name == latest),
            ("it holds champion.joblib's model", digest is not None and path.name.endswith(f"-{digest}.joblib")),
            (f"among the {keep_recent} used last", i < keep_recent),
        ) if holds]
        if why:
            done.kept[path.name] = why
            continue
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:  # another prune took it meanwhile
                continue
            LOG.info("removed %s: no published run, no recent score and not the champion names it", path)
        done.removed.append(path)
    return done
