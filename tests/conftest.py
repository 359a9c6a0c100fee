"""Shared fixtures. Measured numbers reported by tests are printed in pytest's terminal summary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ../shared beside the repository, or WATERWATCH_SHARED (a worktree elsewhere)
SHARED = Path(os.environ.get("WATERWATCH_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SAMPLE_DROP = SHARED / "contract" / "sample-city"
ADBENCH_DIR = SHARED / "benchmarks" / "adbench"

_MEASUREMENTS: list[str] = []


@pytest.fixture(scope="session")
def sample_drop() -> Path:
    if not SAMPLE_DROP.is_dir():
        pytest.skip(f"shared sample drop not found at {SAMPLE_DROP}")
    return SAMPLE_DROP


@pytest.fixture(scope="session")
def small_city_run(tmp_path_factory) -> Path:
    """One 600-entity generated city (seed 5) through every stage of the pipeline, with two backtest cut-offs
    and no tuning: ``drop/``, ``out/`` (what ``waterwatch publish`` reads) and ``var/`` (its home: the MLflow
    registry). Run once per session for the modules that publish, serve and retrain on a real run; they read
    it, and a test that writes to a run works on a copy (``copy_run``)."""
    from synth import SynthConfig, generate_city
    from waterwatch.pipeline import run_pipeline
    from waterwatch.settings import ModelSettings, Settings

    root = tmp_path_factory.mktemp("small-city-run")
    settings = Settings(home=root / "var", show_progress=False, model=ModelSettings(backtest_cutoffs=2, optuna_trials=0))
    generate_city(SynthConfig(entities=600, seed=5), root / "drop")
    run_pipeline(root / "drop", root / "out", settings, trials=0)
    return root


@pytest.fixture(scope="session")
def mlflow_schema(tmp_path_factory):
    """The path of an empty SQLite tracking store with MLflow's schema, made on first call by MLflow's own set-up of
    an empty database (its whole alembic history: seconds each time, the same schema every time); None if that
    set-up moved."""
    import functools

    @functools.cache
    def made() -> Path | None:
        import sqlalchemy

        try:
            from mlflow.store.db.utils import _initialize_tables
        except ImportError:
            return None
        path = tmp_path_factory.mktemp("mlflow-schema") / "mlflow.db"
        engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        return path

    return made


@pytest.fixture
def migrated_mlflow(mlflow_schema, monkeypatch):
    """A new SQLite tracking store that ``training.registry.connect`` opens starts as a copy of ``mlflow_schema``
    rather than migrating from nothing: MLflow finds its schema current and sets the store up as a new one
    (default experiment, artifact locations). What is logged, and every score, is the same."""
    import shutil

    from training import registry

    connect = registry.connect

    def connect_to_copy(tracking_uri: str, *args, **kwargs):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if tracking_uri.startswith("sqlite:///") and not path.exists() and mlflow_schema() is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mlflow_schema(), path)
        return connect(tracking_uri, *args, **kwargs)

    monkeypatch.setattr(registry, "connect", connect_to_copy)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory) -> Path:
    """A migrated SQLite store with test_security's run and staff, made once per module: there, each SQLite test's
    ``store`` is a copy of it (migrating, publishing and adding the staff again is the same work each time)."""
    from serving.store import upgrade_database
    from test_security import Store

    root = tmp_path_factory.mktemp("security-store")
    upgrade_database(f"sqlite:///{root / 'store.db'}")
    Store(f"sqlite:///{root / 'store.db'}", root).close()  # closed: SQLite's write-ahead log is in the file
    return root / "store.db"


def copy_run(run: Path, to: Path) -> Path:
    """A writable copy of a pipeline run's ``out/`` and ``var/`` (the registry's artifacts stay where the run
    logged them: MLflow records their location in its database)."""
    import shutil

    for name in ("out", "var"):
        shutil.copytree(run / name, to / name)
    return to


@pytest.fixture
def report_metric(request):
    """Record a measured number so that it shows in the summary of a plain `pytest -q` run. It travels as a
    user property of the test's report, so that it reaches the summary from a pytest-xdist worker too."""

    def _report(line: str) -> None:
        request.node.user_properties.append(("measured", line))

    return _report


def pytest_runtest_logreport(report):
    """Collect the measured lines (in the main process: xdist replays the workers' reports there)."""
    if report.when == "teardown":
        _MEASUREMENTS.extend(value for key, value in report.user_properties if key == "measured")


def pytest_collection_modifyitems(config, items):
    """On a pytest-xdist worker (``make test``: whole modules per worker), the modules with slow tests go first:
    the long ones start at once and the short ones fill the end, so that neither worker idles at the end."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)  # stable: file order otherwise kept


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("measured")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)
