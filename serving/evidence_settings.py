"""Limits of the evidence officers attach to leads (declared here, light to import; the root settings compose
them as ``settings.evidence``, e.g. ``WATERWATCH_EVIDENCE__MAX_BYTES``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EvidenceSettings(BaseModel):
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="largest photo or PDF an officer may attach")
    max_per_lead: int = Field(40, ge=1, description="files one lead may hold")
