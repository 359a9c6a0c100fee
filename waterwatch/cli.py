"""The one command line: each command is a stage of the pipeline.

    synth -> ingest (validate + link) -> profile -> check -> train -> score -> publish -> serve
    pipeline runs every stage in order from a data drop into an output folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from waterwatch.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="WaterWatch: find illegal water abstraction.")
users_app = typer.Typer(help="Manage console and API users.")
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
    from features.synth import SynthConfig, generate_city

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
    try:
        summary = run_ingest(data, workspace, settings, as_of=as_of)
    except Exception as exc:  # noqa: BLE001 - turned into a clear message below
        _handle(exc)
    _print_summary(summary)


def _handle(exc: Exception) -> None:
    from features.ingest import IngestError

    if isinstance(exc, IngestError):
        _fail(str(exc))
    raise exc


def _print_summary(summary: dict) -> None:
    typer.echo(f"{'table':<12}{'read':>10}{'accepted':>10}{'quarantined':>12}")
    for name, row in summary.items():
        typer.echo(f"{name:<12}{row['read']:>10}{row['accepted']:>10}{row['quarantined']:>12}")
        if row["read"] != row["accepted"] + row["quarantined"]:
            _fail(f"{name}: rows read != accepted + quarantined", code=1)


@app.command()
def pipeline(
    data: Path = typer.Option(..., help="data drop folder"),
    out: Path = typer.Option(..., help="output folder for the run's results"),
    as_of: Optional[str] = typer.Option(None, help="YYYY-MM-DD; default: first day after the drop's last month"),
    trials: Optional[int] = typer.Option(None, help="Optuna trials for training (default from settings)"),
) -> None:
    """Run every stage in order from a drop into OUT."""
    from waterwatch.pipeline import run_pipeline

    settings = _settings()
    try:
        result = run_pipeline(data, out, settings, as_of=as_of, trials=trials)
    except Exception as exc:  # noqa: BLE001
        _handle(exc)
    _print_summary(result["ingest_summary"])
    typer.echo(f"results in {out.resolve()}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
