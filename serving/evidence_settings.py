"""Limits of the evidence officers attach to leads (declared here, light to import; the root settings compose
them as ``settings.evidence``, e.g. ``WATERWATCH_EVIDENCE__MAX_BYTES``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

# the upload route's own body limit (a multipart body: the file plus the form's few fields); the service's
# general body limit is far smaller, so that only this route takes photos
UPLOAD_BODY_LIMIT = 32 * 1024 * 1024
FORM_OVERHEAD = 64 * 1024


class EvidenceSettings(BaseModel):
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=UPLOAD_BODY_LIMIT - FORM_OVERHEAD,
                           description="largest photo or PDF an officer may attach")
    max_per_lead: int = Field(40, ge=1, description="files one lead may hold")
