"""Settings of the service (declared here, next to the code that reads them; the root
``waterwatch.settings.Settings`` composes them as ``settings.serving`` and ``settings.auth`` and is the
only place that reads the environment, e.g. ``WATERWATCH_AUTH__SECRET_KEY``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator

DISPLAY_TIMEZONE = "Asia/Shanghai"  # the bureau's clock (Beijing time), unless the settings name another
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(value: str) -> str:
    """``scheme://host[:port]`` as a browser's Origin header writes it (lower case, no default port); ValueError
    for anything else (a path, a query, a user, a wildcard, a scheme other than http or https)."""
    text = value.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise ValueError(f"not an origin (scheme://host[:port]): {value!r}") from exc
    if (scheme not in DEFAULT_PORTS or not host or "*" in host or parts.username is not None
            or parts.password is not None or parts.path not in ("", "/") or parts.query or parts.fragment
            or "#" in text or "?" in text):
        raise ValueError(f"not an origin (scheme://host[:port]): {value!r}")
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


def bureau_today(zone: str | None = None) -> date:
    """Today on the bureau's clock (``zone``, default Beijing time), whatever zone the server process runs in: a
    host on UTC would otherwise offer yesterday's date, and refuse today's, until 08:00 Beijing time."""
    return datetime.now(ZoneInfo(zone or DISPLAY_TIMEZONE)).date()


class AuthSettings(BaseModel):
    """Logins, tokens and who is calling."""

    secret_key: SecretStr | None = Field(
        None, description="signs login tokens; required in production. Elsewhere, when unset, a random key is "
                          "created once per install in <home>/secret_key")
    token_minutes: int = Field(8 * 60, ge=1, description="lifetime of a login token (and console session)")
    login_max_failures: int = Field(5, ge=1, description="failed logins of one username before it is locked")
    login_failure_window_seconds: int = Field(
        24 * 3600, ge=1, description="a username with no failed login for this long, after its last failure or the "
                                     "end of its last lockout, whichever is later, starts counting afresh (a "
                                     "successful login clears its count at once)")
    login_address_max_failures: int = Field(
        50, ge=1, description="failed logins from one client address (any username) before it is locked")
    login_address_failure_window_seconds: int = Field(
        900, ge=1, description="the same for a client address: occasional typos behind one proxy never add up")
    lockout_seconds: int = Field(30, ge=1, description="first lockout; each further failure doubles it")
    lockout_max_seconds: int = Field(3600, ge=1, description="longest lockout")
    password_hash_cost: Literal["standard", "test-only"] = Field(
        "standard", description="argon2id cost of new password hashes and of the check of an unknown username: "
                                "'standard' (64 MiB, 3 passes); 'test-only' (the cheapest) lets the test suite "
                                "log in often, and production refuses it")


class ServingSettings(BaseModel):
    """The service's limits and how it follows the store."""

    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body, checked before parsing "
                                                             "and before authentication (413 above)")
    max_batch_body_bytes: int = Field(16 << 20, ge=1024, description="largest body of the batch scoring calls")
    run_check_seconds: float = Field(
        2.0, ge=0, description="how often a request checks whether a newer run was published (then the service "
                               "switches to it and its model without a reload)")
    display_timezone: str = Field(
        DISPLAY_TIMEZONE, description="the zone the console shows times in (pages and CSV/XLSX exports); the store "
                                    "and the API keep UTC")
    trusted_origins: list[str] = Field(
        default_factory=list,
        description="origins (scheme://host[:port]) besides the service's own whose console forms are accepted: "
                    "the public address of a reverse proxy that does not pass on the Host header or the scheme "
                    "(a JSON list, e.g. '[\"https://waterwatch.example.gov.cn\"]')")

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from exc
        return value

    @field_validator("trusted_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        return [normalise_origin(v) for v in values]
