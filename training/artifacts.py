"""The model as a joblib file, so that scoring needs neither MLflow nor the training code's state."""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

MODEL_FILE = "risk_model.joblib"
CHAMPION_FILE = "champion.joblib"
SCORED_DIR = "scored"  # under models/: the bundles runs were scored with, one file per version and content
TEXT_COLUMNS = ("industry_code",)  # model input kept as text (peer groups); see training.backtest


@dataclass
class ModelBundle:
    """A fitted model with the feature columns it was fitted on, in order, and what we know about it
    (version, trained_at, as_of, params, backtest metrics, run_id)."""

    model: Any
    features: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unregistered"))

    def matrix(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        """The snapshot's model columns in the training order; a feature the data no longer has is missing (NaN).
        The numeric columns are converted to float in one step (a column that does not hold numbers is an error
        naming it), the text columns kept as text."""
        from models.numerics import float_matrix

        numeric = [c for c in self.features if c not in TEXT_COLUMNS]
        values = float_matrix(snapshot.reindex(columns=numeric), numeric)
        frame = pd.DataFrame(values, columns=numeric, index=snapshot.index)
        for column in self.features:
            if column in TEXT_COLUMNS:
                text = snapshot[column] if column in snapshot.columns else pd.Series(pd.NA, index=snapshot.index)
                frame[column] = text.astype("str")
        return frame[self.features]

    def predict(self, snapshot: pd.DataFrame) -> pd.Series:
        """Risk of every row of a snapshot-like frame (the model's columns by name; others ignored)."""
        if getattr(self.model, "fitted_on_frame_", False) and len(snapshot) <= 64:
            # a few rows (the service's one-row scoring): straight to the named-column block, no DataFrame copy
            from models.detectors import NamedColumns
            from models.numerics import float_matrix

            numeric = [c for c in self.features if c not in TEXT_COLUMNS]
            values = float_matrix(snapshot.reindex(columns=numeric), numeric)
            text = {c: (snapshot[c].tolist() if c in snapshot.columns else [None] * len(snapshot))
                    for c in self.features if c in TEXT_COLUMNS}
            risk = self.model.predict_proba(NamedColumns(values, numeric, text))[:, 1]
        else:
            risk = self.model.predict_proba(self.matrix(snapshot))[:, 1]
        return pd.Series(risk, index=snapshot.index, name="risk_score")

    def _records_block(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray, dict[str, list]]:
        numeric = [c for c in self.features if c not in TEXT_COLUMNS]
        position = {name: j for j, name in enumerate(numeric)}
        block = np.full((len(rows), len(numeric)), np.nan)
        text: dict[str, list] = {c: [None] * len(rows) for c in self.features if c in TEXT_COLUMNS}
        for i, row in enumerate(rows):
            for name, value in row.items():
                if name in text:
                    if value is not None and not isinstance(value, str):
                        raise FeatureTypeError(name, i, "text")
                    text[name][i] = value
                    continue
                j = position.get(name)
                if j is None:
                    raise UnknownFeatureError(sorted(set(row) - set(self.features)), i)
                if value is None:
                    continue
                if isinstance(value, (str, bytes, bool)):
                    raise FeatureTypeError(name, i)
                block[i, j] = value
        return numeric, block, text

    def records_matrix(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """The model columns of feature dicts another system sends (name -> number, text for TEXT_COLUMNS;
        None or left out = unknown). A value of the wrong type (text or a boolean for a numeric feature, anything
        but text for a text one) raises ``FeatureTypeError``, a name the model was not fitted on
        ``UnknownFeatureError`` (a misspelt name would otherwise silently count as unknown), each naming the row."""
        numeric, block, text = self._records_block(rows)
        frame = pd.DataFrame(block, columns=numeric)
        for name, values in text.items():
            frame[name] = np.array(values, dtype=object)
        return frame[self.features]

    def predict_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Risk of feature dicts (see ``records_matrix``): the same number as ``predict`` on the same values, by a
        path that builds no DataFrame when the model reads named columns itself (RiskModel): the fast path of
        one-row scoring."""
        from models.detectors import NamedColumns

        if not getattr(self.model, "fitted_on_frame_", False):
            return self.model.predict_proba(self.records_matrix(rows))[:, 1]
        numeric, block, text = self._records_block(rows)
        return self.model.predict_proba(NamedColumns(block, numeric, text))[:, 1]


class FeatureTypeError(ValueError):
    """A feature came with a value of the wrong type: ``expected`` is "number" or "text"."""

    def __init__(self, feature: str, row: int, expected: str = "number"):
        super().__init__(f"feature {feature!r} must be {'a number' if expected == 'number' else 'text'} (row {row})")
        self.feature, self.row, self.expected = feature, row, expected


class UnknownFeatureError(ValueError):
    """Feature names the model was not fitted on (``features``, sorted), in row ``row``."""

    def __init__(self, features: list[str], row: int):
        super().__init__(f"unknown features {features} (row {row})")
        self.features, self.row = features, row


def models_dir(workspace: Path | str) -> Path:
    return Path(workspace) / "models"


def save_bundle(bundle: ModelBundle, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    joblib.dump(bundle, tmp, compress=3)
    tmp.replace(path)  # atomic: a scorer never reads half a file
    return path


def load_bundle(path: Path | str, data: bytes | None = None) -> ModelBundle:
    """The bundle in ``path``, or in ``data`` (that file's bytes, already read) when given."""
    bundle = joblib.load(Path(path) if data is None else io.BytesIO(data))
    if not isinstance(bundle, ModelBundle):
        raise TypeError(f"{path} does not hold a WaterWatch model bundle")
    return bundle


def champion_path(workspace: Path | str) -> Path:
    return models_dir(workspace) / CHAMPION_FILE


def load_champion(workspace: Path | str) -> ModelBundle:
    return read_champion(workspace)[0]


def read_champion(workspace: Path | str) -> tuple[ModelBundle, bytes]:
    """``champion.joblib`` and its bytes, read once: the bundle is the one those bytes hold even when a training
    or a rollback rewrites the file meanwhile, so that ``keep_scored`` keeps the very model that scored."""
    path = champion_path(workspace)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run `waterwatch train` first")
    data = path.read_bytes()
    return load_bundle(path, data), data


def bundle_digest(data: bytes) -> str:
    """The digest of a bundle file's bytes that its kept copy's name carries (``scored_name``)."""
    return hashlib.sha256(data).hexdigest()[:16]


def scored_name(version: str, data: bytes) -> str:
    """The file name a bundle is kept under in ``models/scored/``: its version and a digest of its bytes (the same
    name is the same model, whichever workspace holds it)."""
    version = re.sub(r"[^0-9A-Za-z._-]+", "_", version)
    return f"champion-v{version}-{bundle_digest(data)}.joblib"


def keep_scored(workspace: Path | str, bundle: ModelBundle, data: bytes) -> Path:
    """The bundle a run was scored with (``data``: its file's bytes), kept as ``models/scored/champion-v<version>-
    <digest>.joblib``: named by its content, so never rewritten (the same bundle lands on the same name). The run's
    ``model.json`` names this file, not ``champion.joblib``, which the next training or rollback rewrites: the
    service then serves the model that ranked the run's leads, however the champion moved since. A copy already
    there has its time set to now: the file's time is the last time it scored (``training.scored_copies`` keeps
    the most recent)."""
    path = models_dir(workspace) / SCORED_DIR / scored_name(bundle.version, data)
    if path.exists():
        os.utime(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a service never reads half a file
    return path


def workspace_relative(path: Path | str, workspace: Path | str) -> str:
    """``path`` as a run's ``model.json`` names it: relative to the workspace, with ``/`` (``..`` when it lies
    outside, as a province city's run names the province workspace's copy), so that moving the workspace with its
    run keeps the name right; absolute only where no relative path leads there (another drive)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(workspace).resolve())).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def artifact_path(artifact: str, workspace: Path | str) -> Path:
    """The file a ``model.json``'s ``artifact`` names: a relative name against the workspace it is relative to;
    an absolute one (runs scored before names were relative) as it is."""
    path = Path(artifact)
    return path if path.is_absolute() else Path(workspace) / path
