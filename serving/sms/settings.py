"""Settings of SMS sending (declared next to the code that reads them; the root ``waterwatch.settings.Settings``
composes them as ``settings.sms`` and alone reads the environment, e.g. ``WATERWATCH_SMS__GATEWAY_URL``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class SmsSettings(BaseModel):
    """Which sender delivers the outbox, how to reach the gateway, and how hard to retry."""

    sender: Literal["file", "http"] = Field(
        "file", description="file: append each message to a JSON-lines file under the home folder (the embedded "
                            "default, nothing leaves the machine); http: the city's SMS gateway at gateway_url")
    file_path: Path | None = Field(None, description="the file sender's file; default <home>/sms/sent.jsonl")
    gateway_url: str | None = Field(None, description="base URL of the SMS gateway (POST <url>/messages)")
    gateway_app_id: str | None = Field(None, description="the account the bureau holds at the gateway")
    gateway_secret: SecretStr | None = Field(None, description="signs each request (HMAC-SHA256)")
    signature: str | None = Field(
        None, description="the SMS signature (签名) shown as 【…】; default: the bureau's name (rules.bureau_name), "
                          "e.g. 聊城市水利局 for Liaocheng")
    timeout_seconds: float = Field(5.0, gt=0, description="one request to the gateway")
    max_attempts: int = Field(6, ge=1, description="attempts per message before it is marked failed")
    backoff_seconds: float = Field(30.0, ge=0, description="wait before the 2nd attempt; doubles each time")
    backoff_max_seconds: float = Field(3600.0, ge=0, description="longest wait between attempts")
    lease_seconds: float = Field(120.0, gt=0, description="a message being sent is not picked up by another "
                                                          "sender for this long (then it is, with the same key)")
    batch_size: int = Field(200, ge=1, description="messages per pass of `waterwatch send`")
    service_interval_seconds: float = Field(
        0.0, ge=0, description="when > 0, the running service sends due messages this often (0: only "
                               "`waterwatch send` and the console's button send)")
    service_city: str | None = Field(
        None, min_length=1, max_length=64,
        description="in a store a province's cities share, the running service sends (and asks delivery reports "
                    "of) this city's messages only, e.g. 德州市 (unset: every city's, as `waterwatch send` "
                    "without --city); a city with no run in the store is warned of at start, and in production "
                    "refused when other cities have published")
