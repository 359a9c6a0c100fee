"""Settings of the features layer, declared beside the code that reads them.

The composition root (``waterwatch.settings.Settings``) holds one of each and fills it from the
environment; code here only receives them as arguments.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class LinkageSettings(BaseModel):
    """Thresholds of the account-to-entity linker (``features.linkage``; scores are rapidfuzz 0-100)."""

    accept_score: float = Field(90.0, description="fuzzy score at or above which a link is accepted")
    review_score: float = Field(75.0, description="fuzzy score at or above which a candidate goes to review")
    ambiguity_margin: float = Field(4.0, description="best minus second-best score below this is ambiguous")
