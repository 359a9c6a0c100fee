"""SMS: the outbox's messages leave through a sender (a file under the home folder, or the city's gateway)
with retries, backoff and one idempotency key per message, so that each reaches its recipient once.

``senders`` (the sender interface, the file and HTTP gateway senders, the gateway protocol), ``dispatch``
(claiming, sending, recording, delivery reports), ``settings`` (``SmsSettings``). This package module stays
light: the root settings import ``serving.sms.settings``.
"""

from __future__ import annotations

from pathlib import Path


def signature_of(settings) -> str:
    """The SMS signature: ``sms.signature`` when set, else the bureau's name (``rules.bureau_name``)."""
    configured = getattr(getattr(settings, "sms", None), "signature", None)
    return configured or getattr(getattr(settings, "rules", None), "bureau_name", "") or ""


def sender_from(settings):
    """The sender the root settings configure."""
    from serving.sms.senders import make_sender
    from serving.sms.settings import SmsSettings

    return make_sender(getattr(settings, "sms", None) or SmsSettings(), Path(settings.home), signature_of(settings))
