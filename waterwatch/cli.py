"""The one command line: each command is a stage of the pipeline.

    synth -> ingest (validate + link) -> profile -> check -> train -> score -> publish -> serve
    pipeline runs every stage in order from a data drop into an output folder.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Optional

import click
import typer
import typer.core

from waterwatch.cli_registry import champion as _champion
from waterwatch.cli_registry import prune_scored as _prune_scored
from waterwatch.cli_store import existing_store as _existing_store
from waterwatch.cli_store import fail as _fail
from waterwatch.cli_store import shown_url as _shown_url
from waterwatch.settings import Settings


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


AS_OF_HELP = ("YYYY-MM-01, the first day of a month: only data of the months before it is used; at most (and by "
              "default) the first day after the drop's last month")


def _as_of(value: Optional[str]) -> Optional[str]:
    """--as-of refused before any data is read unless it is a month's first day (``features.as_of``); that it
    is not past the drop's data is checked at ingest."""
    if value is None:
        return None
    from features.as_of import parse_as_of

    try:
        return parse_as_of(value).date().isoformat()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def synth(
    out: Path = typer.Option(..., help="folder for the generated drop"),
    entities: int = typer.Option(2000, help="number of registered entities (all cities together)"),
    months: int = typer.Option(36, help="months of monthly data"),
    seed: int = typer.Option(0, help="random seed"),
    end_month: str = typer.Option("2026-10", help="last month of data, YYYY-MM"),
    file_format: str = typer.Option("csv", "--format", help="csv, parquet or mixed (a format per table)"),
    cities: int = typer.Option(1, help="cities of one province; more than 1 writes one sub-folder per city"),
    malformed_rows: int = typer.Option(0, help="rows to break on purpose (listed in malformed.csv)"),
    no_confounders: bool = typer.Option(False, "--no-confounders", help="no honest look-alikes (for comparisons)"),
    block_entities: int = typer.Option(25_000, help="entities generated and written at a time (bounds memory)"),
    tampering_share: float = typer.Option(None, help="override the share of violations that are meter tampering"),
) -> None:
    """Generate a contract-conformant city (or province) drop with planted violations and truth files."""
    from tqdm import tqdm

    from synth import Confounders, SynthConfig, generate_city, generate_province

    config = SynthConfig(
        entities=entities, months=months, seed=seed, end_month=end_month, file_format=file_format,
        malformed_rows=malformed_rows, block_entities=block_entities,
        **({"confounders": Confounders.none(), "preexisting_share": 0.0} if no_confounders else {}),
    )  # fmt: skip
    if tampering_share is not None:
        config = config.with_tampering_share(tampering_share)
    progress = (lambda it, **kw: tqdm(it, leave=False, **kw)) if entities > block_entities else None
    if cities > 1:
        counts = generate_province(config, cities, out, progress=progress)
    else:
        counts = generate_city(config, out, progress=progress)
    typer.echo(json.dumps(counts, ensure_ascii=False))
    typer.echo(f"drop written to {out}")


@app.command()
def ingest(
    data: Path = typer.Option(..., help="data drop folder (CSV or Parquet per the contract)"),
    workspace: Path = typer.Option(..., help="workspace folder"),
    as_of: Optional[str] = typer.Option(None, help=AS_OF_HELP, callback=_as_of),
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
    shown = "not measured" if math.isnan(result.objective) else f"{result.objective:.3f}"  # NaN: too few verdicts
    typer.echo(f"model version {result.version}: objective {shown}; {verdict} ({result.promotion})")
    typer.echo(f"backtest report: {result.report_path} (中文 {result.report_zh_path})")


@app.command()
def score(
    workspace: Path = typer.Option(..., help="workspace folder (after train)"),
    out: Path = typer.Option(..., help="leads CSV to write (model.json is written beside it)"),
) -> None:
    """Score every registered entity with the champion model; write the ranked leads and, beside them, the
    model.json that `publish` records as the run's model; then remove the kept copies of scored models that no
    published run, recent score or the champion names (as `prune-scored` does)."""
    from features.workspace import Workspace
    from waterwatch.pipeline import run_score, write_model_info
    from waterwatch.scored_models import prune_scored_models, summary

    ws, settings = Workspace(workspace), _settings()
    leads = run_score(ws, settings, prune=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    leads.to_csv(out, index=False)
    info = write_model_info(ws, out.parent)
    version = leads["model_version"].iloc[0] if len(leads) else None
    typer.echo(f"{len(leads):,} entities scored by model version {version} -> {out}"
               + (f"; model details -> {info}" if info else ""))
    typer.echo(summary(*prune_scored_models(ws, settings)))


app.command("champion")(_champion)  # waterwatch/cli_registry.py: the registry's champion and a rollback by hand
app.command("prune-scored")(_prune_scored)  # waterwatch/cli_registry.py: the kept copies of scored models


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

    settings = _settings()
    sessions = _existing_store(settings)
    with sessions() as session:
        n = export(session, out)
    typer.echo(f"{n} verdicts from {_shown_url(settings.resolved_database_url())} -> {out}")


@app.command()
def send(
    watch: float = typer.Option(0.0, help="keep sending, one pass every N seconds (0: one pass and exit)"),
    limit: Optional[int] = typer.Option(None, help="messages per pass (default sms.batch_size)"),
    city: Optional[str] = typer.Option(None, help="in a store a province's cities share: this city's messages "
                                                  "only, e.g. 德州市 (default: every city's)"),
) -> None:
    """Send the SMS outbox's due messages through the configured sender (a file under the home folder, or the
    city's gateway with WATERWATCH_SMS__SENDER=http), with retries and backoff; then ask for delivery reports.
    A province city's messages are signed by their own city's bureau (as their run wrote them) unless
    WATERWATCH_SMS__SIGNATURE names one."""
    import time as _time

    from sqlalchemy import func, select

    from serving.sms import sender_from, signature_of
    from serving.sms.dispatch import of_city, poll_deliveries, send_due
    from serving.store import OutboxMessage, Run

    settings = _settings()
    sessions = _existing_store(settings)
    only = ()
    if city is not None:
        with sessions() as session:
            cities = sorted(c for c in session.scalars(select(Run.city).distinct()) if c is not None)
        if city not in cities:
            _fail(f"no run of {city} in this store (its cities: {', '.join(cities) or 'none'})")
        only = of_city(city)
    sender = sender_from(settings)
    where = getattr(sender, "url", None) or getattr(sender, "path", "")
    configured = getattr(settings.sms, "signature", None)
    signed = f"signature 【{signature_of(settings)}】" + ("" if configured else " (a province city's messages keep their own city's)")
    typer.echo(f"sender {sender.name} ({where}), {signed}"
               + ("" if city is None else f", {city}'s messages only"))
    while True:
        sent = send_due(sessions, sender, settings.sms, limit=limit, where=only)
        polled = poll_deliveries(sessions, sender, where=only)
        with sessions() as session:
            waiting = session.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.status == "queued", *only)) or 0
        typer.echo(f"sent {sent.sent}, retrying {sent.retrying}, failed {sent.failed}; delivered "
                   f"{polled.delivered}, undeliverable {polled.undeliverable}; still queued {waiting}")
        if watch <= 0:
            break
        _time.sleep(watch)


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
    if settings.production:
        from serving.api.main import refuse_demo_logins

        refuse_demo_logins(app_.state.sessions)  # the service itself refuses too; this says it in one line
        if settings.sms.service_interval_seconds > 0 and settings.sms.service_city is not None:
            from sqlalchemy import select

            from serving.sms.service import service_city_problem
            from serving.store import Run

            with app_.state.sessions() as session:
                cities = set(session.scalars(select(Run.city).distinct()))
            problem = service_city_problem(settings.sms.service_city, cities)
            if problem and cities:  # as the service would refuse (an empty store: it warns and starts)
                _fail(problem)
    typer.echo(f"控制台 console: http://{host}:{port}/login   API docs: http://{host}:{port}/docs")
    if not settings.production:
        from serving.services.users import DEMO_PASSWORD

        typer.echo(f"demo logins (password {DEMO_PASSWORD}): supervisor, analyst, admin; officer1, officer2, … "
                   f"(one per district, in the order of the districts' names)")
    # httptools parses HTTP in C and uvloop runs the event loop (both from uvicorn[standard]): less server CPU a
    # request than the pure-Python h11 and asyncio (docs/measurements.md, "Benchmarks")
    uvicorn.run(app_, host=host, port=port, log_level="warning", http="httptools", loop="uvloop")


def _warn_unpublished_district(session, district: str | None, city: str | None) -> None:
    """A district the store cannot check yet (nothing published for the city): say so, on stderr."""
    from serving.services.users import known_districts

    if district and not known_districts(session, city):
        typer.secho(f"warning: no leads published{' for ' + city if city else ''} yet, so district {district!r} "
                    f"could not be checked; make sure it is spelt as the runs spell it", fg=typer.colors.YELLOW,
                    err=True)


def _users_store():
    """The service's store (users are created where the service will look for them; see ``_existing_store``)."""
    return _existing_store(_settings())


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="login name"),
    role: str = typer.Option(..., help="officer, supervisor, analyst or admin"),
    district: Optional[str] = typer.Option(None, help="the officer's district"),
    city: Optional[str] = typer.Option(None, help="the one city of a province's store the user works in"),
    password: Optional[str] = typer.Option(
        None, help="password; asked for when omitted", prompt=True, hide_input=True, confirmation_prompt=True
    ),
    api_key: bool = typer.Option(False, help="also issue an API key (printed once) for a system account"),
) -> None:
    """Create a console/API user. An officer's district must be one of the published leads' (of its city)."""
    from serving.services.users import create_api_key, create_user

    settings = _settings()
    with _users_store()() as session, session.begin():
        user = create_user(session, username, password or None, role, district, production=settings.production,
                           city=city, hash_cost=settings.auth.password_hash_cost)
        key = create_api_key(session, username) if api_key else None
        _warn_unpublished_district(session, user.district, user.city)
    typer.echo(f"user {username} ({role}{''.join(', ' + x for x in (user.city, user.district) if x)}) created")
    if key:
        typer.echo(f"API key (shown once): {key}")


@users_app.command("list")
def users_list() -> None:
    """Every user with role, city, district, whether active and how many API keys it holds."""
    from serving.services.users import list_users

    with _users_store()() as session:
        rows = list_users(session)
    typer.echo(f"{'user':<20}{'role':<12}{'district':<12}{'active':<8}{'keys':>5}  {'created':<12}city")
    for r in rows:  # the city last: the columns before it keep their places for scripts that read them
        typer.echo(f"{r.username:<20}{r.role:<12}{r.district or '-':<12}{'yes' if r.active else 'no':<8}{r.keys:>5}  "
                   f"{r.created_at:%Y-%m-%d}  {r.city or '-'}")


@users_app.command("deactivate")
def users_deactivate(username: str = typer.Argument(..., help="login name")) -> None:
    """Stop a user: its tokens, console sessions and API keys stop working at once, for good (the keys are
    revoked: a reactivated system account needs a new key)."""
    from serving.services.users import set_active

    with _users_store()() as session, session.begin():
        set_active(session, username, False)
    typer.echo(f"user {username} deactivated")


@users_app.command("reactivate")
def users_reactivate(username: str = typer.Argument(..., help="login name")) -> None:
    """Let a deactivated user log in again (earlier tokens and API keys stay revoked: `add-key` issues a new one)."""
    from serving.services.users import set_active

    with _users_store()() as session, session.begin():
        set_active(session, username, True)
    typer.echo(f"user {username} reactivated")


@users_app.command("set-city")
def users_set_city(
    username: str = typer.Argument(..., help="login name"),
    city: Optional[str] = typer.Argument(None, help="the one city of a province's store; omitted: every city"),
    district: Optional[str] = typer.Option(None, help="the officer's district in that city"),
) -> None:
    """Move a user to another city of a province's store (or to every city); counts from its next request."""
    from serving.services.users import set_city

    with _users_store()() as session, session.begin():
        user = set_city(session, username, city, district)
        _warn_unpublished_district(session, district and user.district, user.city)
    typer.echo(f"user {username} now works in {user.city or 'every city'}"
               f"{', district ' + user.district if user.district else ''}")


@users_app.command("set-password")
def users_set_password(
    username: str = typer.Argument(..., help="login name"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True, help="new password"),
) -> None:
    """A new password; the user's earlier tokens and sessions stop working."""
    from serving.services.users import set_password

    with _users_store()() as session, session.begin():
        settings = _settings()
        set_password(session, username, password, production=settings.production,
                     hash_cost=settings.auth.password_hash_cost)
    typer.echo(f"password of {username} changed")


@users_app.command("add-key")
def users_add_key(username: str = typer.Argument(..., help="login name"),
                  label: Optional[str] = typer.Option(None, help="what the key is for")) -> None:
    """Issue an API key for a (system) user; printed once."""
    from serving.services.users import create_api_key

    with _users_store()() as session, session.begin():
        key = create_api_key(session, username, label)
    typer.echo(f"API key (shown once): {key}")


@users_app.command("revoke-key")
def users_revoke_key(username: str = typer.Argument(..., help="login name"),
                     key_id: Optional[int] = typer.Option(None, help="only this key (default: all of the user's)")) -> None:
    """Revoke a user's API keys (all, or one by id); they stop working at once."""
    from serving.services.users import revoke_keys

    with _users_store()() as session, session.begin():
        n = revoke_keys(session, username, key_id)
    typer.echo(f"{n} API key(s) of {username} revoked")


@app.command()
def pipeline(
    data: Path = typer.Option(..., help="data drop folder"),
    out: Path = typer.Option(..., help="output folder for the run's results"),
    as_of: Optional[str] = typer.Option(None, help=AS_OF_HELP, callback=_as_of),
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
