"""The model as a joblib file, so that scoring needs neither MLflow nor the training code's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

MODEL_FILE = "risk_model.joblib"
CHAMPION_FILE = "champion.joblib"
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
        """The snapshot's model columns in the training order; a feature the data no longer has is missing (NaN)."""
        frame = snapshot.reindex(columns=self.features)
        numeric = [c for c in self.features if c not in TEXT_COLUMNS]
        return frame.astype({c: "float64" for c in numeric})

    def predict(self, snapshot: pd.DataFrame) -> pd.Series:
        return pd.Series(self.model.predict_proba(self.matrix(snapshot))[:, 1], index=snapshot.index, name="risk_score")


def models_dir(workspace: Path | str) -> Path:
    return Path(workspace) / "models"


def save_bundle(bundle: ModelBundle, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    joblib.dump(bundle, tmp, compress=3)
    tmp.replace(path)  # atomic: a scorer never reads half a file
    return path


def load_bundle(path: Path | str) -> ModelBundle:
    bundle = joblib.load(Path(path))
    if not isinstance(bundle, ModelBundle):
        raise TypeError(f"{path} does not hold a WaterWatch model bundle")
    return bundle


def champion_path(workspace: Path | str) -> Path:
    return models_dir(workspace) / CHAMPION_FILE


def load_champion(workspace: Path | str) -> ModelBundle:
    path = champion_path(workspace)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run `waterwatch train` first")
    return load_bundle(path)
