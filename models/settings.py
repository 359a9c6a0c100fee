"""Settings of the models layer, declared beside the code that reads them.

The composition root (``waterwatch.settings.Settings``) holds one and fills it from the environment
(``WATERWATCH_RULES__QUOTA_RED=1.0``); code here only receives it as an argument.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class RuleSettings(BaseModel):
    """Thresholds of the deterministic supervision checks (``models.rules``), the SMS outbox
    (``models.notifications``) and the case track (``models.cases``)."""

    quota_yellow: float = Field(0.80, description="year-to-date share of the quota or plan for a yellow warning")
    quota_orange: float = Field(0.90, description="... for an orange warning")
    quota_red: float = Field(1.00, description="... for red: the quota or plan is used up")
    quota_year_across_renewal: bool = Field(
        False, description="a renewal (延续) carries the year's use and prorated quota of the permit it replaced, as one "
        "right; off: each permit's own year against its own annual quota (the permit basis the province platform and "
        "../shared/evaluation colour by)")
    renewal_first_days: int = Field(90, description="first renewal reminder, days before expiry")
    renewal_second_days: int = Field(60, description="second renewal reminder, days before expiry")
    tax_tolerance: float = Field(0.05, description="declared vs metered difference accepted (share of metered)")
    tax_red_share: float = Field(0.20, description="difference above which a tax mismatch is red")
    tax_rate_groundwater_yuan: float = Field(3.0, description="default tax per m³ of groundwater")
    tax_rate_surface_yuan: float = Field(1.0, description="default tax per m³ of surface water")
    source_prevention_days: int = Field(90, description="approvals or construction starts this recent are checked")
    rights_surplus_share: float = Field(0.60, description="a seller used below this share of its monthly quota ...")
    rights_surplus_months: int = Field(24, description="... in every one of these last months")
    sms_segment_chars: int = Field(70, description="characters per SMS segment")
    projection_min_months: int = Field(3, description="months of the year before a run-rate projection warns")
    enforcement_lookback_months: int = Field(12, description="months of use an enforcement check looks back")
    cancelled_recent_months: int = Field(3, description="months of use on a revoked or cancelled permit that count")
    bureau_name: str = Field("德州市水利局", description="the bureau that signs user messages")
