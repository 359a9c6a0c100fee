"""The one command line: each command is a stage of the pipeline.

    synth -> ingest (validate + link) -> profile -> check -> train -> score -> publish -> serve
    pipeline runs every stage in order from a data drop into an output folder.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import click
import typer
import typer.core

# pandera imports pyspark.pandas whenever pyspark is installed (the Spark engine), which warns about pandas 3;
# our Spark path does not use pyspark.pandas
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

from waterwatch.settings import Settings  # noqa: E402

class _ClearErrors(typer.core.TyperGroup):
    """Every command reports the errors a user can fix as one line with exit code 2, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - sorted by _handle
            _handle(exc)


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_ClearErrors,
                  help="WaterWatch: find illegal water abstraction.")
users_app = typer.Typer(help="Manage console and API users.", cls=_ClearErrors)
app.add_typer(users_app, name="users")


def _settings() -> Settings:
    return Settings()


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def synth(
    out: Path = typer.Option(..., help="folder for the generated drop"),
    entities: int = typer.Option(2000, help="number of registered entities"),
    months: int = typer.Option(36, help="months of monthly data"),
    seed: int = typer.Option(0, help="random seed"),
    end_month: str = typer.Option("2026-10", help="last month of data, YYYY-MM"),
    tampering_share: float = typer.Option(None, help="override the share of violations that are meter tampering"),
) -> None:
    """Generate a contract-conformant city drop with planted violations and truth files."""
    from synth import SynthConfig, generate_city

    config = SynthConfig(entities=entities, months=months, seed=seed, end_month=end_month)
    if tampering_share is not None:
        config = config.with_tampering_share(tampering_share)
    counts = generate_city(config, out)
    typer.echo(json.dumps(counts, ensure_ascii=False))
    typer.echo(f"drop written to {out}")


@app.command()
def ingest(
    data: Path = typer.Option(..., help="data drop folder (CSV or Parquet per the contract)"),
    workspace: Path = typer.Option(..., help="workspace folder"),
    as_of: Optional[str] = typer.Option(None, help="YYYY-MM-DD; default: first day after the drop's last month"),
) -> None:
    """Validate every table, quarantine bad rows, link accounts to entities."""
    from waterwatch.pipeline import run_ingest

    settings = _settings()
    summary = run_ingest(data, workspace, settings, as_of=as_of)
    _print_summary(summary)


def _handle(exc: Exception) -> None:
    """Errors a user can fix (a bad drop, a missing stage, a bad argument) become one clear line and exit 2."""
    from features.ingest import IngestError

    if isinstance(exc, (IngestError, FileNotFoundError, ValueError)):
        _fail(str(exc))
    raise exc


def _print_summary(summary: dict) -> None:
    typer.echo(f"{'table':<12}{'read':>10}{'accepted':>10}{'quarantined':>12}")
    for name, row in summary.items():
        typer.echo(f"{name:<12}{row['read']:>10}{row['accepted']:>10}{row['quarantined']:>12}")
        if row["read"] != row["accepted"] + row["quarantined"]:
            _fail(f"{name}: rows read != accepted + quarantined", code=1)


@app.command()
def link(workspace: Path = typer.Option(..., help="workspace folder (after ingest)")) -> None:
    """Re-link supply and discharge accounts to registered entities."""
    from features.workspace import Workspace
    from waterwatch.pipeline import run_link

    links = run_link(Workspace(workspace), _settings())
    typer.echo(links["status"].value_counts().to_string())


@app.command()
def profile(workspace: Path = typer.Option(..., help="workspace folder (after ingest)")) -> None:
    """Build the monthly enterprise profiles as of the workspace's as-of date."""
    from features.workspace import Workspace
    from waterwatch.pipeline import run_profiles

    profiles = run_profiles(Workspace(workspace), _settings())
    typer.echo(f"{len(profiles):,} entity-months, {profiles['uscc'].nunique():,} entities")


@app.command()
def check(workspace: Path = typer.Option(..., help="workspace folder (after ingest)")) -> None:
    """Run the deterministic supervision checks; write alerts, cases, water-rights matches and new outbox messages."""
    from features.workspace import Workspace
    from waterwatch.pipeline import run_checks

    result = run_checks(Workspace(workspace), _settings())
    alerts = result["alerts"]
    typer.echo(alerts.groupby(["kind", "level"]).size().to_string() if len(alerts) else "no alerts")
    cases = result["cases"]
    typer.echo(cases.groupby(["kind", "action"]).size().to_string() if len(cases) else "no cases")
    typer.echo(f"{len(result['water_rights'])} water-rights matches, {len(result['outbox'])} new messages")


@app.command()
def train(
    workspace: Path = typer.Option(..., help="workspace folder (after ingest)"),
    trials: Optional[int] = typer.Option(None, help="Optuna trials (default from settings)"),
    labels: list[Path] = typer.Option([], help="extra inspection files, e.g. from export-labels"),
) -> None:
    """Backtest, tune and register a risk model; promote it only if it beats the champion."""
    from features.workspace import Workspace
    from waterwatch.pipeline import run_train

    result = run_train(Workspace(workspace), _settings(), trials=trials, extra_labels=labels)
    verdict = "promoted to champion" if result.promoted else f"champion stays {result.champion_version}"
    typer.echo(f"model version {result.version}: objective {result.objective:.3f}; {verdict}")
    typer.echo(f"backtest report: {result.report_path}")


@app.command()
def score(
    workspace: Path = typer.Option(..., help="workspace folder (after train)"),
    out: Path = typer.Option(..., help="leads CSV to write"),
) -> None:
    """Score every registered entity with the champion model and write the ranked leads."""
    from features.workspace import Workspace
    from waterwatch.pipeline import run_score

    leads = run_score(Workspace(workspace), _settings())
    out.parent.mkdir(parents=True, exist_ok=True)
    leads.to_csv(out, index=False)
    typer.echo(f"{len(leads):,} entities scored -> {out}")


@app.command()
def publish(out: Path = typer.Option(..., help="a pipeline run's output folder")) -> None:
    """Load a run's scores, leads, alerts and outbox into the store, keeping recorded verdicts."""
    from serving.publish import publish_run
    from serving.store import open_store

    settings = _settings()
    _, sessions = open_store(settings.resolved_database_url())
    counts = publish_run(out, sessions, settings)
    typer.echo(json.dumps(counts, ensure_ascii=False, default=str))


@app.command("export-labels")
def export_labels(out: Path = typer.Option(..., help="CSV or Parquet file for the inspection labels")) -> None:
    """Write the verdicts recorded in the field as an inspections table for the next training."""
    from serving.labels import export_labels as export
    from serving.store import open_store

    settings = _settings()
    _, sessions = open_store(settings.resolved_database_url())
    with sessions() as session:
        n = export(session, out)
    typer.echo(f"{n} verdicts -> {out}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port"),
    publish_out: Optional[Path] = typer.Option(None, "--publish", help="publish this run folder first"),
) -> None:
    """Start the API and the web console."""
    import uvicorn

    from waterwatch.service import build_app

    settings = _settings()
    if publish_out is not None:
        publish(publish_out)
    app_ = build_app(settings)
    typer.echo(f"控制台 console: http://{host}:{port}/login   API docs: http://{host}:{port}/docs")
    if not settings.production:
        from sqlalchemy import select

        from serving.auth import DEMO_PASSWORD
        from serving.store import User

        with app_.state.sessions() as session:
            officers = session.execute(select(User.username, User.district).where(User.role == "officer")).all()
        typer.echo(f"demo logins (password {DEMO_PASSWORD}): supervisor, analyst, admin; officers: "
                   + ", ".join(f"{name} ({district})" for name, district in officers[:12]))
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="login name"),
    role: str = typer.Option(..., help="officer, supervisor, analyst or admin"),
    district: Optional[str] = typer.Option(None, help="the officer's district"),
    password: Optional[str] = typer.Option(
        None, help="password; asked for when omitted", prompt=True, hide_input=True, confirmation_prompt=True
    ),
    api_key: bool = typer.Option(False, help="also issue an API key (printed once) for a system account"),
) -> None:
    """Create a console/API user."""
    from serving.auth import create_api_key, create_user
    from serving.store import open_store

    settings = _settings()
    _, sessions = open_store(settings.resolved_database_url())
    try:
        with sessions() as session, session.begin():
            create_user(session, username, password or None, role, district, production=settings.production)
            key = create_api_key(session, username) if api_key else None
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"user {username} ({role}{', ' + district if district else ''}) created")
    if key:
        typer.echo(f"API key (shown once): {key}")


@app.command()
def pipeline(
    data: Path = typer.Option(..., help="data drop folder"),
    out: Path = typer.Option(..., help="output folder for the run's results"),
    as_of: Optional[str] = typer.Option(None, help="YYYY-MM-DD; default: first day after the drop's last month"),
    trials: Optional[int] = typer.Option(None, help="Optuna trials for training (default from settings)"),
) -> None:
    """Run every stage in order from a drop into OUT (a province drop: every city, one model, a summary)."""
    from waterwatch.pipeline import run_pipeline
    from waterwatch.province import province_cities, run_province

    settings = _settings()
    if province_cities(data):
        result = run_province(data, out, settings, as_of=as_of, trials=trials)
        typer.echo(result["summary"].to_string(index=False))
        typer.echo(f"province results in {out.resolve()} (province.html; cities/<city>/ per city)")
        return
    result = run_pipeline(data, out, settings, as_of=as_of, trials=trials)
    _print_summary(result["ingest_summary"])
    typer.echo(f"results in {out.resolve()}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
