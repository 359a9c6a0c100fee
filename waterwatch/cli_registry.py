"""``waterwatch champion``: the registered versions and which one is served, and a rollback by hand.

Registered on the one app in ``waterwatch.cli``; the registry logic is ``training.champion``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from waterwatch.cli_store import fail
from waterwatch.settings import Settings


def _who() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def _client(settings: Settings):
    """The registry the settings point at (the one ``train`` registers in), or a clear refusal."""
    from training.champion import connect

    uri = settings.resolved_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        fail(f"no MLflow registry at {uri.removeprefix('sqlite:///')} (WATERWATCH_HOME={settings.home}): run "
             "`waterwatch train` first, or point WATERWATCH_MLFLOW_TRACKING_URI at the registry training used")
    try:
        return connect(settings)
    except Exception as exc:  # noqa: BLE001 - a server down or a broken store: one line, not a traceback
        fail(f"the MLflow registry at {uri} cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


def _short(objective: str) -> str:
    return "not measured" if objective.startswith("not measured") else objective


def _list(client, name: str, workspace: Path, uri: str) -> None:
    from training.champion import version_rows

    rows = version_rows(client, name, workspace)
    typer.echo(f"registry {uri}, model {name}")
    if not rows:
        fail(f"no registered version of model {name} in this registry: run `waterwatch train` first")
    typer.echo(f"{'version':>7}  {'alias':<10}{'champion.joblib':<17}{'objective':<14}{'as-of':<12}promotion")
    for r in rows:
        typer.echo(f"{r.version:>7}  {'champion' if r.champion else '':<10}{'holds it' if r.served else '':<17}"
                   f"{_short(r.objective) or '-':<14}{r.as_of or '-':<12}{r.promotion or '-'}")
    champion = next((r.version for r in rows if r.champion), None)
    served = next((r.version for r in rows if r.served), None)
    if champion is not None and champion != served:
        typer.secho(f"warning: the alias points to version {champion} but {workspace / 'models' / 'champion.joblib'} "
                    f"holds {served or 'no registered version'}: `waterwatch score` refuses until you run `waterwatch "
                    f"champion --workspace {workspace} --version {champion} --reason \"...\"`",
                    fg=typer.colors.YELLOW, err=True)


def champion(
    workspace: Path = typer.Option(..., help="workspace folder (after train)"),
    version: Optional[int] = typer.Option(None, "--version", help="make this registered version the champion"),
    reason: Optional[str] = typer.Option(None, help="why (required with --version); recorded on the version"),
    by: Optional[str] = typer.Option(None, help="who decides (default: your login name); recorded with the reason"),
) -> None:
    """The registered model versions and which one is served; --version N makes version N the champion (a rollback).

    Lists every version (objective, as-of, why promoted; which one the registry's champion alias points to and
    which one the workspace's champion.joblib holds). With --version N --reason "...": the alias moves, who and why are recorded on the version, and champion.joblib and
    model.json are written from that registered version, so that the next `score` serves it."""
    from training.champion import make_champion

    settings = Settings()
    name = settings.model.registered_model_name
    if version is None:
        if reason is not None or by is not None:
            fail("--reason and --by go with --version N (the version to make the champion)")
        _list(_client(settings), name, workspace, settings.resolved_tracking_uri())
        return
    if not reason or not reason.strip():
        fail("--version needs --reason \"...\": why this version becomes the champion is recorded on it")
    done = make_champion(_client(settings), name, version, reason, by or _who(), workspace, settings)
    moved = f" (the alias was on version {done.previous})" if done.previous and done.previous != done.version else ""
    typer.echo(f"version {done.version} is now the champion of {name}{moved}")
    typer.echo(f"{done.path} now holds version {done.version} (it held {done.served_before or 'nothing'}); "
               f"`waterwatch score` serves it from now on")
    typer.echo(f"recorded on version {done.version}: {done.note}")


def prune_scored(
    workspace: Path = typer.Option(..., help="workspace folder (after score)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be removed"),
    keep: Optional[int] = typer.Option(None, min=1, help="copies used last to keep beside the others (default "
                                                         "WATERWATCH_MODEL__SCORED_COPIES_KEPT)"),
) -> None:
    """Remove the kept copies of scored models (models/scored/) that no run published to the store names, that
    the workspace's model.json and champion.joblib do not hold and that are not among the last used; `score`
    does this after each run. Nothing is removed when the store cannot be read."""
    from features.workspace import Workspace
    from waterwatch.scored_models import prune_scored_models, summary

    settings = Settings()
    pruned, store = prune_scored_models(Workspace(workspace), settings, dry_run=dry_run, keep_recent=keep)
    for name, why in sorted(pruned.kept.items()):
        typer.echo(f"keep    {name}: {'; '.join(why)}")
    for path in pruned.removed:
        typer.echo(f"{'would remove' if dry_run else 'removed'} {path.name}")
    if pruned.skipped:
        fail(f"nothing removed: {store}; point WATERWATCH_HOME or WATERWATCH_DATABASE_URL at the service's store")
    typer.echo(summary(pruned, store, dry_run))
