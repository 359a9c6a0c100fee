"""One settings object for the whole platform.

Read once at the edge (CLI, service start-up) and passed down explicitly; no
module below reads the environment itself. Every field can be set with an
environment variable ``WATERWATCH_<FIELD>`` (nested: ``WATERWATCH_RULES__QUOTA_RED``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LinkageSettings(BaseModel):
    """Thresholds of the account-to-entity linker (scores are rapidfuzz 0-100)."""

    accept_score: float = Field(90.0, description="fuzzy score at or above which a link is accepted")
    review_score: float = Field(75.0, description="fuzzy score at or above which a candidate goes to review")
    ambiguity_margin: float = Field(4.0, description="best minus second-best score below this is ambiguous")


class RuleSettings(BaseModel):
    """Thresholds of the deterministic supervision checks."""

    quota_yellow: float = 0.80
    quota_orange: float = 0.90
    quota_red: float = 1.00
    renewal_first_days: int = 90
    renewal_second_days: int = 60
    tax_tolerance: float = 0.05
    tax_rate_groundwater_yuan: float = 3.0
    tax_rate_surface_yuan: float = 1.0
    source_prevention_days: int = 90
    rights_surplus_share: float = 0.60
    rights_surplus_months: int = 24
    sms_segment_chars: int = 70
    tax_red_share: float = 0.20
    projection_min_months: int = 3
    enforcement_lookback_months: int = 12
    cancelled_recent_months: int = 3
    bureau_name: str = "德州市水利局"


class ModelSettings(BaseModel):
    """Training and scoring."""

    random_state: int = 0
    optuna_trials: int = 30
    backtest_cutoffs: int = 3
    officer_capacity_k: int = 100
    exploration_share: float = 0.10
    registered_model_name: str = "waterwatch-risk"


class Settings(BaseSettings):
    """Everything configurable, with embedded defaults that need no services."""

    model_config = SettingsConfigDict(env_prefix="WATERWATCH_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(Path("var"), description="where the embedded default keeps its files")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under home")
    mlflow_tracking_uri: str | None = Field(None, description="default: SQLite store under home; MLFLOW_TRACKING_URI also works")
    production: bool = Field(False, description="refuses default passwords and demo users")
    secret_key: str = Field("dev-only-secret-never-use-in-production", description="signs login tokens")
    token_minutes: int = 8 * 60
    show_progress: bool = True

    linkage: LinkageSettings = LinkageSettings()
    rules: RuleSettings = RuleSettings()
    model: ModelSettings = ModelSettings()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'waterwatch.db').resolve()}"

    def resolved_tracking_uri(self) -> str:
        import os

        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"
