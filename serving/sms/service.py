"""The running service as a sender: when ``sms.service_interval_seconds`` > 0, a background thread sends the
outbox's due messages that often (the same claims as ``waterwatch send``, so both may run at once), every city's
or, with ``sms.service_city``, that city's only. A ``service_city`` no run in the store names would send nothing,
silently: the service says so when it starts (and in production refuses to, see ``check_service_city``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
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


class UnknownServiceCity(ValueError):
    """Production must not start a sender kept to a city that none of the store's runs is of."""


def service_city_problem(city: str | None, cities: Collection[str | None]) -> str | None:
    """Why the sender kept to ``city`` sends nothing, when no run of the store (``cities``: the cities of its
    runs, None for a city run's) is of that city; None when one is, or when no city is set."""
    if city is None or city in cities:
        return None
    named = "、".join(sorted(c for c in cities if c)) or ("none" if not cities else "none, a city run's only")
    return (f"WATERWATCH_SMS__SERVICE_CITY={city}：库中没有{city}的运行，服务的短信发送不会发出任何短信，直到{city}发布运行"
            f"（库中的城市：{named}）；请更正或取消该设置，或先发布{city}的运行 (sms.service_city names {city}, but no "
            f"run of {city} is in this store, so the service's sender sends nothing until {city} publishes one; "
            f"the store's cities: {named})")


def check_service_city(city: str | None, cities: Collection[str | None], production: bool) -> str | None:
    """Warn (log) when ``sms.service_city`` names a city with no run in the store; return the warning.

    The sender still runs elsewhere: it picks the city's messages up once the city publishes (the store may not
    have its first run yet). Production refuses to start when the store holds runs but none of that city: the
    name matches none of the cities that publish there (most likely misspelt, it would never send), as
    ``waterwatch send --city`` refuses such a city. An empty store (nothing published yet) is a warning only, so
    that a new installation may start its service before its first publish."""
    problem = service_city_problem(city, cities)
    if problem is None:
        return None
    if production and cities:
        raise UnknownServiceCity(f"生产环境拒绝启动 (production refuses to start): {problem}")
    log.warning(problem)
    return problem


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
        async with inner(app_) as state:  # the live runs are loaded: their cities, with no query of ours
            check_service_city(city, {info.city for info in app_.state.model.info.cities}, settings.production)
            loop = SenderLoop(app_.state.sessions, sender, settings.sms, interval, where)
            loop.start()
            try:
                yield state
            finally:
                loop.stop()

    app.router.lifespan_context = lifespan
