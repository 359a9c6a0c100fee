"""Domain errors of the serving layer, and the one place they become HTTP status codes.

Service functions (``serving.services``) raise these; they know nothing of HTTP. The API turns
them into JSON answers and the console into HTML pages, both through ``http_status``. Each message
is Chinese first, English in brackets, as officers and integrators read them.
"""

from __future__ import annotations


class DomainError(Exception):
    """Something the caller asked for cannot be done; ``detail`` says why in words."""

    def __init__(self, detail: str = ""):
        super().__init__(detail)
        self.detail = detail


class NotAuthenticated(DomainError):
    """No credential, or one that is invalid, expired or revoked."""

    def __init__(self, detail: str = "需要登录 (not authenticated)", expired: bool = False):
        super().__init__(detail)
        self.expired = expired


class Forbidden(DomainError):
    """The caller is known but may not do this (role, district, another officer's lead)."""


class NotFound(DomainError):
    """No such lead, message, case or run."""


class Conflict(DomainError):
    """The object is not in a state that allows this (a closed lead, a sent message, a second verdict)."""


class Invalid(DomainError):
    """The request is well-formed but names something unusable (an unknown officer, a bad transition)."""


class TooManyAttempts(DomainError):
    """Too many failed logins: wait ``retry_after`` seconds."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A part the request needs is not loaded (e.g. the champion model)."""


_STATUS = {
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    TooManyAttempts: 429,
    Unavailable: 503,
}


def http_status(error: DomainError) -> int:
    """The HTTP status of a domain error (400 for a domain error without a more precise class)."""
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400
