"""The composition root's settings: one object for the whole platform, read once at the edge.

Each layer declares the typed settings its code needs next to that code
(``features.settings.LinkageSettings``, ``models.settings.RuleSettings``,
``training.settings.ModelSettings``); ``Settings`` composes them, adds what only the
edge needs (where the embedded files live, the store, the tracking server) and is the only
object that reads the environment: at construction, once, in the CLI or at service start-up.
Below it, functions receive the sub-object they need as an argument; nothing reads the
environment and nothing here touches the disk (the code that opens a SQLite file creates
its folder).

Every field can be set with ``WATERWATCH_<FIELD>`` (nested: ``WATERWATCH_RULES__QUOTA_RED``);
``MLFLOW_TRACKING_URI`` also sets the tracking server, as MLflow users expect.
"""

from __future__ import annotations

from pathlib import Path

from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.engine.base import EngineSettings

from features.settings import LinkageSettings
from models.settings import RuleSettings
from serving.evidence_settings import EvidenceSettings
from serving.settings import AuthSettings, ServingSettings
from serving.sms.settings import SmsSettings
from training.settings import ModelSettings

__all__ = ["Settings", "LinkageSettings", "RuleSettings", "ModelSettings", "AuthSettings", "ServingSettings"]


class CitySettings(BaseModel):
    """What differs between the cities of a province run (``Settings.cities``, keyed by the city's
    division code or folder, e.g. ``WATERWATCH_CITIES='{"371400": {"bureau_name": "德州市水利局"}}'``)."""

    bureau_name: str | None = Field(None, description="signs the city's SMS (default: <city>水利局)")
    tax_rate_groundwater_yuan: float | None = None
    tax_rate_surface_yuan: float | None = None
    districts: dict[str, str] = Field(default_factory=dict, description="district name -> division code")


class Settings(BaseSettings):
    """Everything configurable, with embedded defaults that need no services."""

    model_config = SettingsConfigDict(env_prefix="WATERWATCH_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(Path("var"), description="where the embedded default keeps its files")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under home")
    mlflow_tracking_uri: str | None = Field(None, description="MLflow tracking server; default SQLite under home")
    mlflow_env_tracking_uri: str | None = Field(
        None, validation_alias="MLFLOW_TRACKING_URI", description="MLflow's own variable, used when the field above is empty"
    )
    production: bool = Field(False, description="refuses default passwords and demo users")
    show_progress: bool = True

    engine: Literal["embedded", "duckdb", "spark", "memory"] = Field(
        "embedded", description="embedded (DuckDB, partitioned), spark (at spark_master), memory (pandas, one piece)"
    )
    spark_master: str | None = Field(None, description="Spark master URL, e.g. spark://host:7077; default local[2]")
    scale: EngineSettings = Field(default_factory=EngineSettings)
    cities: dict[str, CitySettings] = Field(default_factory=dict, description="per-city settings of a province run")

    # one settings object per layer, each declared beside the code that reads it
    linkage: LinkageSettings = Field(default_factory=LinkageSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)

    def resolved_database_url(self) -> str:
        """The store's URL: the configured one, else SQLite in home (the caller that opens it makes the folder)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'waterwatch.db').resolve()}"

    def resolved_tracking_uri(self) -> str:
        """MLflow's tracking URI: the configured one, else MLFLOW_TRACKING_URI, else SQLite in home."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if self.mlflow_env_tracking_uri:
            return self.mlflow_env_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"
