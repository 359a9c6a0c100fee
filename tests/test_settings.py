"""Settings per layer: each layer declares its own, the root composes them and alone reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from features.settings import LinkageSettings
from models.settings import RuleSettings
from training.settings import ModelSettings
from waterwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("features", "models", "training", "serving")


def _imports_and_env_reads(path: Path) -> tuple[set[str], list[int]]:
    """Modules a file imports, and the lines where it reads os.environ or calls os.getenv."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules, env_lines = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
        elif isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            env_lines.append(node.lineno)
    return modules, env_lines


# training/registry.py saves and restores the two variables MLflow itself exports (it reads no setting there)
ENV_ALLOWED = {ROOT / "training" / "registry.py"}


def test_no_layer_imports_the_composition_root_or_reads_the_environment():
    checked = 0
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            modules, env_lines = _imports_and_env_reads(path)
            assert not [m for m in modules if m.split(".")[0] == "waterwatch"], f"{path} imports waterwatch"
            if path not in ENV_ALLOWED:
                assert not env_lines, f"{path} reads the environment on lines {env_lines}"
            checked += 1
    assert checked > 40  # every layer's modules were read


def test_the_root_composes_the_layer_settings():
    s = Settings()
    assert isinstance(s.linkage, LinkageSettings)
    assert isinstance(s.rules, RuleSettings)
    assert isinstance(s.model, ModelSettings)
    # each Settings has its own sub-objects: changing one does not change the defaults of the next
    s.model.backtest_cutoffs = 2
    assert Settings().model.backtest_cutoffs == ModelSettings().backtest_cutoffs


def test_the_environment_is_read_once_at_construction(monkeypatch):
    monkeypatch.setenv("WATERWATCH_RULES__QUOTA_RED", "1.25")
    monkeypatch.setenv("WATERWATCH_LINKAGE__ACCEPT_SCORE", "93")
    monkeypatch.setenv("WATERWATCH_MODEL__EXPLORATION_SHARE", "0.2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    s = Settings()
    assert (s.rules.quota_red, s.linkage.accept_score, s.model.exploration_share) == (1.25, 93.0, 0.2)
    assert s.resolved_tracking_uri() == "http://mlflow.example:5000"
    monkeypatch.setenv("WATERWATCH_RULES__QUOTA_RED", "2.0")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert s.rules.quota_red == 1.25  # a later change of the environment is not seen
    assert s.resolved_tracking_uri() == "http://mlflow.example:5000"
    assert Settings(mlflow_tracking_uri="http://other:5000").resolved_tracking_uri() == "http://other:5000"


def test_settings_touch_no_disk(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "not" / "yet"
    s = Settings(home=home)
    assert s.resolved_database_url() == f"sqlite:///{(home / 'waterwatch.db').resolve()}"
    assert s.resolved_tracking_uri() == f"sqlite:///{(home / 'mlflow.db').resolve()}"
    assert not (tmp_path / "not").exists()


def test_the_sqlite_store_makes_its_own_folder(tmp_path):
    from serving.store import open_store

    home = tmp_path / "fresh" / "home"
    engine, _ = open_store(Settings(home=home).resolved_database_url())
    engine.dispose()
    assert (home / "waterwatch.db").exists()


@pytest.mark.parametrize("cls", [LinkageSettings, RuleSettings, ModelSettings])
def test_every_layer_setting_is_described(cls):
    undocumented = [n for n, f in cls.model_fields.items() if not f.description and n not in ("random_state", "registered_model_name")]
    assert not undocumented, undocumented


def test_mlflow_telemetry_is_off_unless_the_bureau_allows_it():
    """MLflow 3 phones an outside address with usage telemetry by default; the composition root turns it off."""
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("MLFLOW_DISABLE_TELEMETRY", "PYTEST_CURRENT_TEST")}
    code = "import waterwatch, os; print(os.environ.get('MLFLOW_DISABLE_TELEMETRY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "true"
    env["MLFLOW_DISABLE_TELEMETRY"] = "false"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "false"
