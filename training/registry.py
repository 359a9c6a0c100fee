"""MLflow tracking and the model registry: every run logged, the ``champion`` alias moved only on merit.

The champion is whatever version the alias points to. Its hyper-parameters are kept as a
version tag so that the next training run can re-run them through *its own* backtest (same
data, same cut-offs) instead of comparing numbers measured on different data.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CHAMPION = "champion"
PARAMS_TAG = "risk_params"
OBJECTIVE_TAG = "backtest_objective"
AS_OF_TAG = "as_of"
PROMOTION_TAG = "promotion"

log = logging.getLogger(__name__)


@dataclass
class Registered:
    run_id: str
    version: str
    model_uri: str


def _quiet() -> None:
    """MLflow is chatty (pickle warnings, git probes, emoji links); training output should stay readable."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def connect(tracking_uri: str, experiment: str, artifact_root: Path | None = None):
    """Point MLflow at ``tracking_uri`` and make sure the experiment exists (artifacts beside the
    SQLite store by default rather than under whatever directory we were started from)."""
    import mlflow

    _quiet()
    if tracking_uri.startswith("sqlite:///"):  # the embedded store: its folder may not exist yet
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # MLflow also exports the URI to the environment, where Settings would later mistake it for the
    # user's choice (a second workspace in the same process would log into the first one's store)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        location = Path(artifact_root).resolve().as_uri() if artifact_root is not None else None
        client.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    global _EXPERIMENT
    _EXPERIMENT = experiment
    return client


_EXPERIMENT: str | None = None  # the experiment ``connect`` last pointed MLflow at


def _active_experiment_name() -> str:
    """The experiment runs are logged to: the one ``connect`` chose, else MLflow's default."""
    return _EXPERIMENT or "Default"


@contextmanager
def impatient_http():
    """A tracking server that does not answer is said at once: MLflow's client otherwise retries for minutes. Sets
    MLflow's own variables for the calls inside (it reads them per request), unless the user set them."""
    chosen = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    added = [k for k in chosen if k not in os.environ]
    os.environ.update({k: chosen[k] for k in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def champion_version(client, name: str):
    """The version the ``champion`` alias points to, or None (no registry entry or no alias yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def version_params(version) -> dict[str, Any]:
    raw = (version.tags or {}).get(PARAMS_TAG)
    return json.loads(raw) if raw else {}


def _param_value(v: Any) -> Any:
    return v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v, default=str)


def _log_dataset(dataset: pd.DataFrame, source: str | None, name: str | None, targets: str | None) -> None:
    """The training table as the active run's dataset input (context ``training``)."""
    import mlflow
    import mlflow.data

    with warnings.catch_warnings():  # MLflow's notes on resolving a local path and on integer columns
        warnings.simplefilter("ignore", UserWarning)
        data = mlflow.data.from_pandas(dataset, source=source, name=name, targets=targets,
                                       digest=dataset_digest(dataset))
        schema = dataset_schema(dataset)
        if schema is not None:  # else MLflow infers it (and gives none when it cannot)
            data.__dict__["schema"] = schema  # PandasDataset.schema is a cached_property
        mlflow.log_input(data, context="training")


def dataset_schema(df: pd.DataFrame):
    """MLflow's schema of a table (``mlflow.types.utils._infer_schema``), a column at a time: a numeric
    column's type comes from its dtype and it is required when it holds no missing value, the same answers
    MLflow gets with a Python step per value (millions of values at province scale); text columns go
    through MLflow's own inference. None where MLflow's inference fails."""
    from mlflow.types.schema import ColSpec, Schema
    from mlflow.types.utils import _infer_pandas_column, _infer_required

    try:
        specs = []
        for name in df.columns:
            col = df[name]
            fast = col.dtype.kind in "biufmM" and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype)
            required = not bool(col.isna().any()) if fast else _infer_required(col)
            specs.append(ColSpec(type=_infer_pandas_column(col), name=name, required=required))
        return Schema(specs)
    except Exception:
        return None


def dataset_digest(df: pd.DataFrame) -> str:
    """``mlflow.data.digest_utils.compute_pandas_digest`` without its ``type`` of every value of the table:
    a column holds only ``str`` values only if its dtype is object (or pandas' string dtype), so only those
    columns are looked at value by value."""
    from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest

    trimmed = df.head(MAX_ROWS)
    text = [c for c in df.columns if df[c].dtype.kind == "O" or isinstance(df[c].dtype, pd.StringDtype)]
    strings = pd.Index([c for c in df.columns if len(df) == 0 or (c in text and all(type(v) is str for v in df[c]))])
    numeric = trimmed.select_dtypes(include=[np.number]).columns
    trimmed = trimmed[strings.union(numeric)]
    return get_normalized_md5_digest([pd.util.hash_pandas_object(trimmed).values, np.int64(len(df))]
                                     + [str(x).encode() for x in df.columns])


def _tag_version(client, name: str, version: str, risk_params: Mapping[str, Any], objective: float,
                 as_of: str | None) -> None:
    """What promotion reads back from a version: its params, its backtest objective and its as-of."""
    client.set_model_version_tag(name, version, PARAMS_TAG, json.dumps(dict(risk_params), default=str))
    shown = f"{objective:.6f}" if np.isfinite(objective) else "not measured (too few verdicts)"
    client.set_model_version_tag(name, version, OBJECTIVE_TAG, shown)
    if as_of:
        client.set_model_version_tag(name, version, AS_OF_TAG, as_of)


def log_run(
    *,
    name: str,
    params: Mapping[str, Any],
    risk_params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts_dir: Path,
    model,
    X_example: pd.DataFrame,
    objective: float,
    tags: Mapping[str, str] | None = None,
    as_of: str | None = None,
    run_name: str | None = None,
    started_ms: int | None = None,
    dataset: pd.DataFrame | None = None,
    dataset_name: str | None = None,
    dataset_source: str | None = None,
    dataset_targets: str | None = None,
) -> Registered:
    """One MLflow run: params, metrics, the report folder (backtest tables, charts, report) as artifacts, the
    training data as the run's dataset input, the model with its signature, registered as a new version of
    ``name`` (tagged with its params and backtest objective).

    ``run_name``: what the run is called in the UI (the stage and as-of, e.g. ``train 2026-10``);
    ``started_ms``: when the stage began (epoch milliseconds), so that the run's duration is the stage's, not
    the few seconds of logging; ``dataset``: the training table (features and label), logged with
    ``mlflow.log_input`` under ``dataset_name`` from ``dataset_source`` (a path or URI), context ``training``."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    _quiet()
    client = mlflow.MlflowClient()
    experiment_id = mlflow.get_experiment_by_name(_active_experiment_name()).experiment_id
    created = client.create_run(experiment_id, start_time=started_ms, tags=dict(tags or {}), run_name=run_name)
    with mlflow.start_run(run_id=created.info.run_id) as run:
        if dataset is not None:
            _log_dataset(dataset, dataset_source, dataset_name, dataset_targets)
        mlflow.log_params({k: _param_value(v) for k, v in params.items()})
        clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        mlflow.log_metrics(clean)
        mlflow.log_artifacts(str(artifacts_dir), artifact_path="backtest")
        example = X_example.head(50)
        signature = infer_signature(example, model.predict_proba(example))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",  # other systems get probabilities, not a 0/1 cut
            registered_model_name=name,
            pip_requirements=["scikit-learn", "lightgbm", "pandas", "numpy"],
        )
        version = str(info.registered_model_version)
        _tag_version(client, name, version, risk_params, objective, as_of)
        return Registered(run.info.run_id, version, info.model_uri)


def decide(client, name: str, registered: Registered, promoted: bool, reason: str) -> None:
    """Move the alias to the new version when it won, and say why it moved or not as the ``promotion`` tag of the
    run and of the version (beside the run's ``tuning`` tag): the registry itself tells why."""
    client.set_tag(registered.run_id, PROMOTION_TAG, reason)
    client.set_model_version_tag(name, registered.version, PROMOTION_TAG, reason)
    if promoted:
        promote(client, name, registered.version)


def promote(client, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, str(version))


def load_registered_model(name: str, alias: str = CHAMPION):
    """The fitted model behind an alias (needs the tracking server or store to be reachable)."""
    import mlflow.sklearn

    _quiet()
    return mlflow.sklearn.load_model(f"models:/{name}@{alias}")


def signature_columns(name: str, alias: str = CHAMPION) -> list[str]:
    """The input columns, in order, recorded in a registered model's signature."""
    import mlflow.models

    info = mlflow.models.get_model_info(f"models:/{name}@{alias}")
    return list(info.signature.inputs.input_names()) if info.signature is not None else []


def promotion(objective: float, champion_objective: float, as_of: str, champion_as_of: str,
              champion: str) -> tuple[bool, str]:
    """Whether a candidate replaces the champion, and why. A measured win promotes; a tie promotes only a refit on
    newer data (the same recipe on more of what is known). Without a measured comparison (too few verdicts) nothing
    says either is better, so only a fit on data as new as the champion's or newer takes over: a model trained on
    an older drop never replaces one trained on a newer drop without a measured win."""
    if np.isfinite(objective) and np.isfinite(champion_objective):
        tie = abs(objective - champion_objective) <= 1e-9
        if objective > champion_objective + 1e-9:
            return True, f"objective {objective:.4f} beats champion v{champion}'s {champion_objective:.4f}"
        if tie and champion_as_of and as_of > champion_as_of:
            return True, f"objective ties champion v{champion}'s on newer data (as-of {as_of} > {champion_as_of})"
        return False, (f"objective {objective:.4f} does not beat champion v{champion}'s {champion_objective:.4f}"
                       + (f" and the data are not newer (as-of {as_of}, champion's {champion_as_of or 'unknown'})"
                          if tie else ""))
    if not champion_as_of:
        return False, f"no measured objective, and champion v{champion}'s as-of is not recorded"
    if as_of >= champion_as_of:
        return True, (f"no measured objective; data as new as champion v{champion}'s or newer "
                      f"(as-of {as_of} >= {champion_as_of})")
    return False, f"no measured objective; older data than champion v{champion}'s (as-of {as_of} < {champion_as_of})"
