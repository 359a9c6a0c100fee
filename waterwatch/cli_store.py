"""The store a command reads or writes: the one the service uses, or a clear refusal (exit 2)."""

from __future__ import annotations

from pathlib import Path

import typer

from waterwatch.settings import Settings


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def shown_url(url: str) -> str:
    """A database URL fit to print: without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def existing_store(settings: Settings, need_run: bool = True):
    """The session factory of the store the settings point at, refusing with a clear line (exit 2) when
    there is no store there, a database that is not a WaterWatch store (no tables, or another application's
    migrations), or (``need_run``) one that holds no published run: then the command would read or write a
    different store from the service's (another WATERWATCH_HOME or WATERWATCH_DATABASE_URL). Says on stderr
    which store it uses; migrates an older WaterWatch schema as the service would."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect, make_url, select, text

    from serving.store import MIGRATIONS_DIR, Run, make_engine, open_store

    url = settings.resolved_database_url()
    where = (f"(WATERWATCH_HOME={settings.home}; the service uses the store its WATERWATCH_HOME or "
             "WATERWATCH_DATABASE_URL points at: set the same here)")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        fail(f"no store at {parsed.database} {where}")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            version = (conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                       if "alembic_version" in inspect(conn).get_table_names() else None)
    finally:
        engine.dispose()
    if version is None:
        fail(f"the database {shown_url(url)} holds no WaterWatch store {where}")
    known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
    if version not in known:
        fail(f"the database {shown_url(url)} is at schema revision {version!r}, which is not WaterWatch's "
              f"(another application's database, or a newer WaterWatch) {where}")
    _, sessions = open_store(url)
    if need_run:
        with sessions() as session:
            if session.scalar(select(Run.run_id).limit(1)) is None:
                fail(f"the store at {shown_url(url)} holds no published run: publish one with "
                      f"`waterwatch publish --out OUT` {where}")
    typer.echo(f"store: {shown_url(url)}", err=True)
    return sessions
