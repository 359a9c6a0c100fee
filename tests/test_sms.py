"""Sending SMS for real: the file sender, the HTTP gateway sender against a fake gateway that fails and times
out at random (a real HTTP server on a free port), claims that keep two senders apart, backoff, resends and
delivery reports, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fake_sms_gateway import FakeGateway
from serving.identity import Principal
from serving.services.outbox import resend_message
from serving.sms import sender_from, signature_of
from serving.sms.dispatch import claim, message_key, poll_deliveries, send_due
from serving.sms.senders import FileSender, HttpGatewaySender, SmsMessage, body_text, signed_text
from serving.sms.settings import SmsSettings
from serving.store import AuditLog, OutboxMessage, utcnow
from test_store import empty_store_url, sessions, store_url  # noqa: F401 - fixtures: SQLite and PostgreSQL stores
from waterwatch.settings import Settings

SECRET, APP = "gateway-secret", "bureau"


def queue_messages(sessions, n: int, prefix: str = "M") -> list[str]:
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    with sessions() as s, s.begin():
        for i, mid in enumerate(ids):
            s.add(OutboxMessage(message_id=mid, alert_id=f"A{i}", uscc=f"91371400{i:010d}", recipient=f"企业{i}",
                                text=f"【德州市水利局】企业{i}：您单位取水许可证将于2026-12-31到期，请及时办理延续。",
                                status="queued"))
    return ids


def fast(**over) -> SmsSettings:
    values = {"sender": "http", "backoff_seconds": 0.0, "backoff_max_seconds": 0.0, "timeout_seconds": 0.3,
              "lease_seconds": 30.0, "max_attempts": 60}
    return SmsSettings(**(values | over))


def drain(sessions, sender, sms, workers: int = 1, passes: int = 200) -> Counter:
    """Senders in ``workers`` threads pass over the outbox until nothing is due."""
    totals: Counter = Counter()
    lock = threading.Lock()

    def work():
        for _ in range(passes):
            counts = send_due(sessions, sender, sms, limit=40, rng=random.Random(0))
            with lock:
                totals.update(counts.as_dict())
            with sessions() as s:
                if not s.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.status == "queued")):
                    return

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return totals


def test_flaky_gateway_gets_every_message_exactly_once(sessions):
    """Each request draws its fault from one seeded sequence, so the faults are the same whatever the senders'
    order: seed 12 gives 37 over 60 messages, at least 3 of every kind, of which only 7 are slow ones (each
    costs the sender its 0.3 s timeout, the test's real waiting)."""
    ids = queue_messages(sessions, 60)
    with FakeGateway(fault_rate=0.4, seed=12, slow_seconds=0.6, app_id=APP, secret=SECRET) as gw:
        sender = HttpGatewaySender(gw.url, "聊城市水利局", APP, SECRET, timeout=0.3)
        totals = drain(sessions, sender, fast(), workers=2)
        log = gw.log

    # nothing lost: every message reached a handset; nothing twice: each exactly once
    assert set(log.delivered) == set(ids) and set(log.delivered.values()) == {1}
    # every fault kind happened, and each cost exactly one more request: no request after a success
    assert set(log.fault_kinds) == {"fail_before", "fail_after", "drop", "throttle", "slow_before", "slow_after"}
    assert all(log.posts[k] == log.faults[k] + 1 for k in ids), {k: (log.posts[k], log.faults[k]) for k in ids
                                                                  if log.posts[k] != log.faults[k] + 1}
    assert sum(log.faults.values()) > 30 and min(log.fault_kinds.values()) >= 3
    # the signature is the configured one, the text carries no other
    assert {b["sign_name"] for b in log.accepted.values()} == {"聊城市水利局"}
    assert not any("德州" in b["text"] for b in log.accepted.values())
    with sessions() as s:
        rows = s.scalars(select(OutboxMessage)).all()
        assert {m.status for m in rows} == {"sent"}
        assert all(m.attempts == log.posts[m.message_id] for m in rows)  # the store counted every attempt
        assert all(m.claimed_until is None and m.gateway_id == f"gw-{m.message_id}" for m in rows)
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "outbox_sent")) == 60
    assert totals["sent"] == 60 and totals["failed"] == 0 and totals["retrying"] == sum(log.faults.values())


def test_a_sender_that_dies_holding_a_message_loses_nothing(sessions):
    [mid] = queue_messages(sessions, 1)
    sms = fast(lease_seconds=0.5)
    assert claim(sessions, mid, utcnow(), timedelta(seconds=0.5)) is not None  # ... and then the process died
    with FakeGateway(app_id=APP, secret=SECRET) as gw:
        sender = HttpGatewaySender(gw.url, "德州市水利局", APP, SECRET, timeout=1.0)
        assert send_due(sessions, sender, sms).sent == 0  # still claimed: nobody else takes it
        later = lambda: utcnow() + timedelta(seconds=1)  # noqa: E731 - the lease has run out
        assert send_due(sessions, sender, sms, clock=later).sent == 1
        assert gw.log.delivered == Counter({mid: 1})
    with sessions() as s:
        assert s.get(OutboxMessage, mid).attempts == 2


def test_refusals_fail_at_once_and_outages_fail_after_max_attempts_with_backoff(sessions):
    queue_messages(sessions, 2, prefix="R")
    with FakeGateway(app_id=APP, secret="another-secret") as gw:  # the gateway refuses our signature: 401
        sent = send_due(sessions, HttpGatewaySender(gw.url, "德州市水利局", APP, SECRET), fast())
        assert sent.failed == 2 and gw.log.bad_signatures == 2
    with sessions() as s:
        assert {(m.status, m.attempts) for m in s.scalars(select(OutboxMessage))} == {("failed", 1)}
        assert all("HTTP 401" in m.error for m in s.scalars(select(OutboxMessage)))

    queue_messages(sessions, 1, prefix="D")
    with FakeGateway(fault_rate=1.0, faults=("fail_before",), app_id=APP, secret=SECRET) as gw:
        sender = HttpGatewaySender(gw.url, "德州市水利局", APP, SECRET)
        sms = SmsSettings(sender="http", max_attempts=3, backoff_seconds=60, backoff_max_seconds=600)
        now = utcnow()
        states = []
        for step in range(3):
            clock = lambda step=step: now + timedelta(hours=step)  # noqa: E731 - the waits have passed
            states.append(send_due(sessions, sender, sms, clock=clock).as_dict())
            with sessions() as s:
                m = s.get(OutboxMessage, "D0000")
                if step == 0:  # the first wait is the base (60 s) with ±20 % jitter
                    wait = (m.next_attempt_at - now).total_seconds()
                    assert 48 <= wait <= 72
                    assert send_due(sessions, sender, sms, clock=lambda: now).as_dict()["retrying"] == 0  # not due
        assert [x["retrying"] for x in states] == [1, 1, 0] and states[-1]["failed"] == 1
        assert gw.log.posts["D0000"] == 3
    with sessions() as s:
        m = s.get(OutboxMessage, "D0000")
        assert m.status == "failed" and m.attempts == 3 and "HTTP 503" in m.error


def test_delivery_reports_and_a_resend_under_a_new_key(sessions):
    queue_messages(sessions, 3, prefix="P")
    with FakeGateway(app_id=APP, secret=SECRET, reject_to="企业1") as gw:
        sender = HttpGatewaySender(gw.url, "德州市水利局", APP, SECRET)
        assert send_due(sessions, sender, fast()).sent == 3
        polled = poll_deliveries(sessions, sender)
        assert (polled.delivered, polled.undeliverable) == (2, 1)
        with sessions() as s:
            m = s.get(OutboxMessage, "P0001")
            assert m.delivery == "undeliverable" and m.status == "sent"
        assert poll_deliveries(sessions, sender).as_dict() == {"sent": 0, "retrying": 0, "failed": 0,
                                                                "delivered": 0, "undeliverable": 0}
        with sessions() as s:
            resend_message(s, "P0001", Principal("supervisor", "supervisor"))
        assert send_due(sessions, sender, fast()).sent == 1
        assert set(gw.log.delivered) == {"P0000", "P0001", "P0002", message_key("P0001", 1)}
    with sessions() as s:
        m = s.get(OutboxMessage, "P0001")
        assert m.resend_round == 1 and m.status == "sent" and m.delivery == "accepted"
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "outbox_resend")) == 1


def test_file_sender_writes_each_message_once_with_the_configured_signature(tmp_path):
    path = tmp_path / "sms" / "sent.jsonl"
    sender = FileSender(path, "聊城市水利局")
    msg = SmsMessage("K1", "某公司", "913714", "【德州市水利局】某公司：您单位本年度累计取水已达许可水量的92%。")
    assert sender.send(msg).done and sender.send(msg).done
    assert FileSender(path, "聊城市水利局").send(msg).done  # a new process knows the file's keys too
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1 and lines[0]["text"] == "【聊城市水利局】某公司：您单位本年度累计取水已达许可水量的92%。"
    assert sender.delivery("K1") == "delivered" and sender.delivery("K2") == "unknown"
    assert body_text("【X局】正文") == "正文" and signed_text("正文", "Y局") == "【Y局】正文"


def test_signature_and_sender_come_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("WATERWATCH_HOME", str(tmp_path))
    assert signature_of(Settings()) == "德州市水利局"
    monkeypatch.setenv("WATERWATCH_RULES__BUREAU_NAME", "聊城市水利局")
    assert signature_of(Settings()) == "聊城市水利局"
    monkeypatch.setenv("WATERWATCH_SMS__SIGNATURE", "聊城市水务局")
    assert signature_of(Settings()) == "聊城市水务局"
    sender = sender_from(Settings())
    assert isinstance(sender, FileSender) and sender.path == tmp_path / "sms" / "sent.jsonl"
    monkeypatch.setenv("WATERWATCH_SMS__SENDER", "http")
    with pytest.raises(ValueError, match="GATEWAY_URL"):
        sender_from(Settings())
    monkeypatch.setenv("WATERWATCH_SMS__GATEWAY_URL", "http://127.0.0.1:9/sms")
    monkeypatch.setenv("WATERWATCH_SMS__GATEWAY_SECRET", "s3cret")
    sender = sender_from(Settings())
    assert isinstance(sender, HttpGatewaySender) and sender.secret == "s3cret" and sender.signature == "聊城市水务局"


def test_the_service_sends_the_outbox_when_asked_to(tmp_path, monkeypatch):
    import time

    from fastapi.testclient import TestClient

    from serving.publish import publish_run
    from serving.store import open_store
    from test_store import make_run
    from waterwatch.service import build_app

    monkeypatch.setenv("WATERWATCH_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("WATERWATCH_SMS__SERVICE_INTERVAL_SECONDS", "0.2")
    monkeypatch.setenv("WATERWATCH_AUTH__PASSWORD_HASH_COST", "test-only")  # the demo users' hashes: no waiting
    settings = Settings()
    _, store = open_store(settings.resolved_database_url())
    publish_run(make_run(tmp_path / "run", n=30), store, settings)
    with TestClient(build_app(settings)):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with store() as s:
                if s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")) == 2:
                    break
            time.sleep(0.1)
    with store() as s:
        assert {m.status for m in s.scalars(select(OutboxMessage))} == {"sent"}
    assert len((tmp_path / "var" / "sms" / "sent.jsonl").read_text(encoding="utf-8").splitlines()) == 2


def test_the_services_sender_keeps_to_its_city_when_given_one(tmp_path, monkeypatch, caplog):
    """``sms.service_city``: in a store a province's cities share, the service's sender sends that city's due
    messages only (each signed by its city's bureau), and leaves the other city's queued."""
    import time

    from fastapi.testclient import TestClient

    from serving.publish import publish_run
    from serving.store import open_store
    from test_store import DEZHOU, LIAOCHENG, make_run
    from waterwatch.service import build_app

    monkeypatch.setenv("WATERWATCH_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("WATERWATCH_SMS__SERVICE_INTERVAL_SECONDS", "0.2")
    monkeypatch.setenv("WATERWATCH_AUTH__PASSWORD_HASH_COST", "test-only")  # the demo users' hashes: no waiting
    monkeypatch.setenv("WATERWATCH_SMS__SERVICE_CITY", "聊城市")
    settings = Settings()
    assert settings.sms.service_city == "聊城市"
    _, store = open_store(settings.resolved_database_url())
    for folder, city in (("dz", DEZHOU), ("lc", LIAOCHENG)):
        run = make_run(tmp_path / folder, n=30, city=city)
        (run / "outbox.csv").write_text((run / "outbox.csv").read_text(encoding="utf-8")
                                        .replace("德州市水利局", f"{city['name']}水利局"), encoding="utf-8")
        publish_run(run, store, settings)

    def status() -> dict[str, str]:
        with store() as s:
            return {m.message_id: m.status for m in s.scalars(select(OutboxMessage))}

    with caplog.at_level(logging.WARNING, logger="waterwatch.sms"), TestClient(build_app(settings)):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status()["371500-M2"] != "sent":
            time.sleep(0.1)
        time.sleep(1.0)  # five more passes
    assert status() == {"371400-M1": "queued", "371400-M2": "queued", "371500-M1": "sent", "371500-M2": "sent"}
    assert "SERVICE_CITY" not in caplog.text  # a city with a run: nothing to warn of
    lines = [json.loads(x) for x in (tmp_path / "var" / "sms" / "sent.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted((x["message_id"], x["text"]) for x in lines) == [("371500-M1", "【聊城市水利局】提醒"),
                                                                   ("371500-M2", "【聊城市水利局】提醒")]


BINZHOU = {"folder": "city=371600", "name": "滨州市", "division": "371600"}


def _publish_cities(tmp_path, store, settings, *cities: dict) -> None:
    from serving.publish import publish_run
    from test_store import make_run

    for city in cities:
        run = make_run(tmp_path / city["division"], n=30, city=city)
        (run / "outbox.csv").write_text((run / "outbox.csv").read_text(encoding="utf-8")
                                        .replace("德州市水利局", f"{city['name']}水利局"), encoding="utf-8")
        publish_run(run, store, settings)


def test_the_service_warns_when_its_sender_keeps_to_a_city_with_no_run(tmp_path, monkeypatch, caplog):
    """Gap: ``sms.service_city`` naming a city with no run in the store (a misspelt name, or a city yet to
    publish) made the service's sender send nothing, silently. The service now says so once, at start, naming the
    store's cities; outside production it still starts, and sends that city's messages once the city publishes."""
    import time

    from fastapi.testclient import TestClient

    from serving.store import open_store
    from test_store import DEZHOU, LIAOCHENG
    from waterwatch.service import build_app

    monkeypatch.setenv("WATERWATCH_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("WATERWATCH_SMS__SERVICE_INTERVAL_SECONDS", "0.2")
    monkeypatch.setenv("WATERWATCH_AUTH__PASSWORD_HASH_COST", "test-only")  # the demo users' hashes: no waiting
    monkeypatch.setenv("WATERWATCH_SMS__SERVICE_CITY", "滨州市")
    settings = Settings()
    _, store = open_store(settings.resolved_database_url())
    _publish_cities(tmp_path, store, settings, DEZHOU, LIAOCHENG)

    def status() -> dict[str, str]:
        with store() as s:
            return {m.message_id: m.status for m in s.scalars(select(OutboxMessage))}

    with caplog.at_level(logging.WARNING, logger="waterwatch.sms"), TestClient(build_app(settings)):
        warned = [r for r in caplog.records if "SERVICE_CITY" in r.getMessage()]
        assert len(warned) == 1 and warned[0].levelno == logging.WARNING
        assert "滨州市" in warned[0].getMessage() and "德州市、聊城市" in warned[0].getMessage()
        time.sleep(1.0)  # five passes, sending nothing
        assert set(status().values()) == {"queued"}
        _publish_cities(tmp_path, store, settings, BINZHOU)  # the city publishes: its sender finds its messages
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status()["371600-M2"] != "sent":
            time.sleep(0.1)
    assert {k: v for k, v in status().items() if v == "sent"} == {"371600-M1": "sent", "371600-M2": "sent"}
    assert len([r for r in caplog.records if "SERVICE_CITY" in r.getMessage()]) == 1  # once, at start


def test_production_refuses_to_start_a_sender_kept_to_a_city_no_run_is_of(tmp_path, monkeypatch, caplog):
    """In production a ``service_city`` that none of the store's published cities matches (a misspelt name never
    sends) stops the service at start, as ``waterwatch send --city`` refuses it, and ``waterwatch serve`` says so
    in one line; an empty store (a new installation, its first run not yet published) starts with the warning."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from serving.sms.service import UnknownServiceCity
    from serving.store import open_store
    from test_api import SECRET
    from test_store import DEZHOU, LIAOCHENG
    from waterwatch.cli import app as cli
    from waterwatch.service import build_app

    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SMS__SERVICE_INTERVAL_SECONDS": "0.2",
           "WATERWATCH_SMS__SERVICE_CITY": "滨州市", "WATERWATCH_PRODUCTION": "true",
           "WATERWATCH_AUTH__SECRET_KEY": SECRET, "WATERWATCH_SHOW_PROGRESS": "false"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.production
    _, store = open_store(settings.resolved_database_url())
    with caplog.at_level(logging.WARNING, logger="waterwatch.sms"), TestClient(build_app(settings)) as client:
        assert client.get("/health").status_code == 200  # nothing published yet: it starts, and warns
    assert "滨州市" in caplog.text and "none" in caplog.text

    _publish_cities(tmp_path, store, settings, DEZHOU, LIAOCHENG)
    with pytest.raises(UnknownServiceCity, match="滨州市.*德州市、聊城市"):
        with TestClient(build_app(settings)):
            pass
    with store() as s:
        assert {m.status for m in s.scalars(select(OutboxMessage))} == {"queued"}
    import uvicorn

    def started(*args, **kwargs):
        raise AssertionError("the service started")

    monkeypatch.setattr(uvicorn, "run", started)
    served = CliRunner().invoke(cli, ["serve"], env=env)
    assert served.exit_code == 2 and "滨州市" in served.output and "德州市、聊城市" in served.output
    monkeypatch.setenv("WATERWATCH_SMS__SERVICE_CITY", "聊城市")  # a city that has published: it starts
    with TestClient(build_app(Settings())) as client:
        assert client.get("/health").status_code == 200


def test_the_gateway_signs_each_province_citys_message_with_its_own_bureau(sessions):
    """One sender for a store a province's cities share: a city's message goes to the gateway with its own
    bureau as ``sign_name`` (the signature its run wrote), a city run's with the sender's; ``sms.signature`` set
    signs every message alike; ``of_city`` sends one city's only."""
    from serving.sms.dispatch import of_city
    from serving.store import Run

    with sessions() as s, s.begin():
        for run_id, city in (("r-dz", "德州市"), ("r-lc", "聊城市"), ("r-city", None)):
            s.add(Run(run_id=run_id, city=city, entities=1))
        s.flush()
        for mid, run_id, bureau in (("D1", "r-dz", "德州市水利局"), ("L1", "r-lc", "聊城市水利局"),
                                    ("C1", "r-city", "德州市水利局"), ("L2", "r-lc", "聊城市水利局")):
            s.add(OutboxMessage(message_id=mid, run_id=run_id, uscc="913714", recipient="企业",
                                text=f"【{bureau}】您单位取水许可证将到期。", status="queued"))
    with FakeGateway(app_id=APP, secret=SECRET) as gw:
        sender = HttpGatewaySender(gw.url, "济南市水利局", APP, SECRET)
        assert send_due(sessions, sender, fast(), where=of_city("聊城市")).sent == 2
        assert set(gw.log.accepted) == {"L1", "L2"}
        assert send_due(sessions, sender, fast()).sent == 2
        signed = {key: body["sign_name"] for key, body in gw.log.accepted.items()}
        assert signed == {"D1": "德州市水利局", "L1": "聊城市水利局", "L2": "聊城市水利局", "C1": "济南市水利局"}
        assert all(body["text"] == "您单位取水许可证将到期。" for body in gw.log.accepted.values())
        with sessions() as s, s.begin():
            s.add(OutboxMessage(message_id="D2", run_id="r-dz", uscc="913714", recipient="企业",
                                text="【德州市水利局】提醒", status="queued"))
        configured = HttpGatewaySender(gw.url, "山东省水利厅", APP, SECRET)
        assert send_due(sessions, configured, fast(signature="山东省水利厅")).sent == 1
        assert gw.log.accepted["D2"]["sign_name"] == "山东省水利厅"
