"""The running service as a sender: when ``sms.service_interval_seconds`` > 0, a background thread sends the
outbox's due messages that often (the same claims as ``waterwatch send``, so both may run at once), every city's
or, with ``sms.service_city``, that city's only."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

log = logging.getLogger("waterwatch.sms")


class SenderLoop:
    def __init__(self, sessions, sender, sms, interval: float, where: tuple = ()):
        self.sessions, self.sender, self.sms, self.interval, self.where = sessions, sender, sms, interval, where
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sms-sender", daemon=True)

    def _run(self) -> None:
        from serving.sms.dispatch import poll_deliveries, send_due

        while not self._stop.is_set():
            try:
                send_due(self.sessions, self.sender, self.sms, where=self.where)
                poll_deliveries(self.sessions, self.sender, where=self.where)
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
    from serving.sms.dispatch import of_city

    sender = sender_from(settings)  # a misconfigured sender stops the service at start, not later
    city = getattr(settings.sms, "service_city", None)
    where = () if city is None else of_city(city)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI):
        async with inner(app_) as state:
            loop = SenderLoop(app_.state.sessions, sender, settings.sms, interval, where)
            loop.start()
            try:
                yield state
            finally:
                loop.stop()

    app.router.lifespan_context = lifespan
