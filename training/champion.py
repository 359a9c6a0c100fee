"""The champion a workspace serves and the registry's ``champion`` alias kept in agreement.

Training moves the alias on merit (``training.registry.decide``) and writes ``champion.joblib``, the file scoring
reads. A data scientist who rolls back (the new model misbehaves in the field) makes an earlier version the
champion with ``waterwatch champion --workspace WS --version N --reason "..."`` (``make_champion``): the alias
moves, who and why are recorded as the version's ``promotion`` tag (the training run's own decision stays the
run's tag), ``champion.joblib`` is written from that version's registered model (refused when the model's feature
columns are not the workspace snapshot's) and ``models/model.json`` describes it, so that the next ``score`` serves
it and ``publish`` records it. A run scored before keeps its own model: ``score`` names a kept copy of the bundle it
scored with (``training.artifacts.keep_scored``), never ``champion.joblib``, as the run's ``artifact``.
``registry_champion`` tells scoring what the alias points to, or why it cannot be read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from training import registry
from training.artifacts import (ModelBundle, champion_path, load_bundle, models_dir, save_bundle,
                                workspace_relative)

LOG = logging.getLogger("waterwatch.training")


class ChampionError(ValueError):
    """A refusal the user can act on; the message says what is wrong and what to do."""


@dataclass
class VersionRow:
    """One registered version as ``waterwatch champion`` lists it."""

    version: str
    objective: str
    as_of: str
    promotion: str
    champion: bool  # the registry's alias points here
    served: bool  # the workspace's champion.joblib holds this version


def connect(settings):
    """The registry the settings point at (``training.registry.connect``, artifacts beside the embedded store), as
    ``train`` connects to it."""
    ms = settings.model
    uri = settings.resolved_tracking_uri()
    default_root = settings.mlflow_tracking_uri is None and str(uri).startswith("sqlite:")
    return registry.connect(uri, ms.registered_model_name,
                            artifact_root=(settings.home / "mlartifacts") if default_root else None)


def served_version(workspace: Path | str) -> str | None:
    """The version the workspace's ``champion.joblib`` holds, None when there is none."""
    path = champion_path(workspace)
    return load_bundle(path).version if path.exists() else None


def registered_versions(client, name: str) -> list:
    """Every version of the registered model, newest first (none when the model is not registered)."""
    found, token = [], None
    while True:
        page = client.search_model_versions(f"name = '{name}'", page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            break
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def alias_version(client, name: str) -> str | None:
    """The version the ``champion`` alias points to (None: the model is not registered or has no champion)."""
    current = registry.champion_version(client, name)
    return None if current is None else str(current.version)


def version_rows(client, name: str, workspace: Path | str) -> list[VersionRow]:
    champion, served = alias_version(client, name), served_version(workspace)
    rows = []
    for v in registered_versions(client, name):
        tags = v.tags or {}
        rows.append(VersionRow(str(v.version), tags.get(registry.OBJECTIVE_TAG, ""), tags.get(registry.AS_OF_TAG, ""),
                               tags.get(registry.PROMOTION_TAG, ""), str(v.version) == champion,
                               str(v.version) == served))
    return rows


def workspace_features(workspace: Path | str, settings=None) -> list[str]:
    """The model input columns of the workspace's snapshot at its as-of, as training splits them
    (``training.backtest.split_snapshot``): read from the saved snapshot's schema when the profile stage saved
    it for this as-of, else from the snapshot built here."""
    import pyarrow.dataset as ds

    from features.profiles import SNAPSHOT_META, entity_snapshot
    from features.workspace import Workspace
    from training.backtest import split_snapshot

    ws = Workspace(workspace)
    as_of = ws.as_of()
    if ws.has("profiles", "snapshot") and ws.manifest().get("profiles_as_of") == as_of.date().isoformat():
        empty = ds.dataset(ws.table_path("profiles", "snapshot"), format="parquet").schema.empty_table().to_pandas()
        empty = empty.drop(columns=["uscc"], errors="ignore")
    else:
        from training.train import load_inputs, profiles_at_as_of

        tables, links, as_of = load_inputs(ws.root, settings)
        empty = entity_snapshot(profiles_at_as_of(ws.root, tables, links, as_of), tables, as_of).head(0)
    return list(split_snapshot(empty, SNAPSHOT_META)[0].columns)


def _registered_version(client, name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        known = [str(v.version) for v in registered_versions(client, name)]
        raise ChampionError(f"model {name} has no version {version} in this registry "
                            f"(registered versions: {', '.join(reversed(known)) or 'none'})") from None


def registered_bundle(client, name: str, version) -> ModelBundle:
    """A registered version's model as the bundle scoring reads: the fitted model, its signature's input columns
    (in order) and what the registry knows of it (version, as-of, run, params, when its run ended)."""
    import mlflow.models
    import mlflow.sklearn

    registry._quiet()
    uri = f"models:/{name}/{version.version}"
    signature = mlflow.models.get_model_info(uri).signature
    features = list(signature.inputs.input_names()) if signature is not None else []
    if not features:
        raise ChampionError(f"model {name} version {version.version} does not record its feature columns "
                            "(no signature): it cannot be served")
    run = client.get_run(version.run_id) if version.run_id else None
    ended = run.info.end_time if run is not None else None
    meta = {"version": str(version.version), "run_id": version.run_id, "registered_model": name,
            "as_of": (version.tags or {}).get(registry.AS_OF_TAG),
            "trained_at": None if ended is None else
            datetime.fromtimestamp(ended / 1000, timezone.utc).isoformat(timespec="seconds"),
            "params": registry.version_params(version), "exported_from_registry": True}
    return ModelBundle(mlflow.sklearn.load_model(uri), features, meta)


def check_features(bundle: ModelBundle, expected: list[str], name: str) -> None:
    """Refuse a model whose feature columns are not the workspace snapshot's (scoring would read a column it lacks
    as missing and never read one it was not fitted on, silently)."""
    missing = [c for c in bundle.features if c not in expected]
    extra = [c for c in expected if c not in bundle.features]
    if missing or extra:
        shown = lambda cols: ", ".join(cols[:8]) + (f" and {len(cols) - 8} more" if len(cols) > 8 else "")  # noqa: E731
        raise ChampionError(
            f"model {name} version {bundle.version}'s feature columns do not match this workspace's snapshot"
            + (f"; the workspace lacks {shown(missing)}" if missing else "")
            + (f"; the model was not fitted on {shown(extra)}" if extra else "")
            + ": it cannot score this workspace (retrain, or choose a version fitted on these features)")


@dataclass
class Switch:
    """What ``make_champion`` did: the version now champion, the one the alias left, the tag it recorded."""

    version: str
    previous: str | None
    served_before: str | None
    note: str
    path: Path


def make_champion(client, name: str, version, reason: str, by: str, workspace: Path | str,
                  settings=None) -> Switch:
    """Make a registered version the champion by hand (``client``: ``registry.connect``'s, whose store MLflow then
    loads models from): checked first (it exists, its model records feature columns
    that are the workspace snapshot's), then the alias moved, who and why recorded as the version's ``promotion``
    tag, ``champion.joblib`` written from the registered model and ``model.json`` rewritten to describe it."""
    if not reason or not reason.strip():
        raise ChampionError("say why with --reason: it is recorded on the version for whoever looks next")
    found = _registered_version(client, name, str(version))
    bundle = registered_bundle(client, name, found)
    check_features(bundle, workspace_features(workspace, settings), name)
    previous, served_before = alias_version(client, name), served_version(workspace)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    note = (f"made champion by hand by {by} at {when}"
            + (f" (alias was on v{previous})" if previous and previous != bundle.version else "")
            + f": {reason.strip()}")
    client.set_model_version_tag(name, bundle.version, registry.PROMOTION_TAG, note)
    registry.promote(client, name, bundle.version)
    bundle.metadata["promotion"] = note
    path = save_bundle(bundle, champion_path(workspace))
    _write_summary(client, workspace, bundle, found, previous, note, path)
    LOG.info("model %s version %s is the champion (%s)", name, bundle.version, note)
    return Switch(bundle.version, previous, served_before, note, path)


def _write_summary(client, workspace, bundle: ModelBundle, version, previous: str | None, note: str, path: Path) -> None:
    """``models/model.json`` (what ``score`` copies beside the leads and ``publish`` records) for the new champion:
    the registry's facts of it, the decision by hand, and which version the workspace trained last."""
    out = models_dir(workspace) / "model.json"
    last = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    tags = version.tags or {}
    objective = tags.get(registry.OBJECTIVE_TAG)
    try:
        objective = round(float(objective), 6) if objective is not None else None
    except ValueError:  # "not measured (...)"
        objective = None
    meta = bundle.metadata
    summary: dict[str, Any] = {
        "version": bundle.version, "trained_at": meta["trained_at"], "as_of": meta["as_of"], "run_id": meta["run_id"],
        "promoted": True, "promotion": note, "champion_version": bundle.version,
        "previous_champion_version": previous, "objective": objective, "params": meta["params"],
        "backtest": _headline_metrics(client, version.run_id), "artifact": workspace_relative(path, workspace),
        "exported_from_registry": True, "registered_model": meta["registered_model"],
        "last_trained_version": last.get("version"),
    }
    out.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def _headline_metrics(client, run_id: str | None) -> dict[str, float]:
    """The backtest means a model.json shows (``training.train.headline``), read back from the version's run."""
    from training.train import HEADLINE

    if not run_id:
        return {}
    run = client.get_run(run_id)
    cap = run.data.params.get("capacity_k")
    names = set(HEADLINE) | ({f"precision_at_{cap}", f"lift_vs_naive_at_{cap}", f"lift_vs_random_at_{cap}"}
                             if cap else set())
    out = {}
    for key, value in run.data.metrics.items():
        head, _, metric = key.rpartition(".")
        if metric.endswith("_mean") and metric.removesuffix("_mean") in names:
            out[f"{head}.{metric.removesuffix('_mean')}"] = round(value, 4)
        elif metric == "steadiness_at_capacity":
            out[key] = round(value, 4)
    return out


def registry_champion(tracking_uri: str, name: str) -> tuple[str | None, str | None]:
    """What the registry's ``champion`` alias points to: (version, None); (None, None) when the registry is
    reachable but the model has no champion there; (None, why) when the registry cannot be read (an embedded
    store that does not exist is not created here)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    registry._quiet()
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        return None, f"no MLflow store at {tracking_uri.removeprefix('sqlite:///')}"
    try:
        with registry.impatient_http():
            client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None, None
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    except Exception as exc:  # noqa: BLE001 - a server down, a refused connection, a broken store: all unreachable
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    version = (model.aliases or {}).get(registry.CHAMPION)
    return (None if version is None else str(version)), None


def scoring_champion(bundle: ModelBundle, workspace: Path | str, tracking_uri: str, name: str) -> None:
    """Refuse (``ChampionError``) to score with a ``champion.joblib`` that is not the registry's champion; when the
    registry cannot be read, say so in the log and let scoring go on with the file."""
    champion, problem = registry_champion(tracking_uri, name)
    if problem is not None:
        LOG.warning("the model registry at %s cannot be read (%s): scoring with %s (version %s) without checking it "
                    "is the registry's champion", tracking_uri, problem, champion_path(workspace), bundle.version)
        return
    if champion is None:
        LOG.warning("the registry at %s has no champion of model %s: scoring with %s (version %s)", tracking_uri,
                    name, champion_path(workspace), bundle.version)
        return
    if champion != bundle.version:
        raise ChampionError(
            f"the registry's champion of {name} is version {champion} but {champion_path(workspace)} holds version "
            f"{bundle.version}: run `waterwatch champion --workspace {Path(workspace)} --version {champion} "
            f"--reason \"...\"` to serve version {champion} (or --version {bundle.version} to move the alias back), "
            "then score again")
