"""The running service as a sender: when ``sms.service_interval_seconds`` > 0, a background thread sends the
outbox's due messages that often (the same claims as ``waterwatch send``, so both may run at once)."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

log = logging.getLogger("waterwatch.sms")


class SenderLoop:
    def __init__(self, sessions, sender, sms, interval: float):
        self.sessions, self.sender, self.sms, self.interval = sessions, sender, sms, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sms-sender", daemon=True)

    def _run(self) -> None:
        from serving.sms.dispatch import poll_deliveries, send_due

        while not self._stop.is_set():
            try:
                send_due(self.sessions, self.sender, self.sms)
                poll_deliveries(self.sessions, self.sender)
            except Exception:  # a bad pass is logged; the next one tries again
                log.exception("sending the SMS outbox failed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 10)


def attach_sender(app: FastAPI, settings) -> None:
    """Run a ``SenderLoop`` for the app's lifetime when the settings ask for one."""
    interval = float(getattr(getattr(settings, "sms", None), "service_interval_seconds", 0) or 0)
    if interval <= 0:
        return
    from serving.sms import sender_from

    sender = sender_from(settings)  # a misconfigured sender stops the service at start, not later
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI):
        async with inner(app_) as state:
            loop = SenderLoop(app_.state.sessions, sender, settings.sms, interval)
            loop.start()
            try:
                yield state
            finally:
                loop.stop()

    app.router.lifespan_context = lifespan
