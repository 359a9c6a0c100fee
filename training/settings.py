"""Settings of the training layer, declared beside the code that reads them.

The composition root (``waterwatch.settings.Settings``) holds one and fills it from the environment
(``WATERWATCH_MODEL__OPTUNA_TRIALS=50``); code here only receives it as an argument.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelSettings(BaseModel):
    """Training and scoring."""

    random_state: int = 0
    optuna_trials: int = Field(30, description="Optuna trials per training run")
    backtest_cutoffs: int = Field(3, description="rolling cut-offs of the temporal backtest")
    officer_capacity_k: int = Field(100, description="leads the officers can check: precision is measured at the "
                                    "city's top k; a published queue gives each district k (serving.queue)")
    exploration_share: float = Field(0.10, description="share of each queue drawn at random from the rest")
    registered_model_name: str = "waterwatch-risk"
    backtest_sample_entities: int = Field(
        200_000, description="backtest and tuning on at most this many entities per cut-off (every inspected one "
        "kept, the rest a seeded sample); the final model is fitted on every entity"
    )
    scored_copies_kept: int = Field(
        3, ge=1, description="after each score, the copies of scored models (models/scored/) kept beside those a "
        "published run or the workspace's model.json names and the champion's: this many most recently used "
        "(runs scored but not yet published); the others are removed (training.scored_copies)"
    )
