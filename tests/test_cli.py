"""The CLI's store commands: users, publish and export-labels, as an administrator would run them."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from test_store import make_run
from waterwatch.cli import app


def test_users_publish_and_export_labels(tmp_path):
    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false"}
    runner = CliRunner()
    published = runner.invoke(app, ["publish", "--out", str(make_run(tmp_path / "run", n=40))], env=env)
    assert published.exit_code == 0, published.output
    assert '"leads_new"' in published.output
    added = runner.invoke(app, ["users", "add", "wang", "--role", "officer", "--district", "德城区",
                                "--password", "a-long-enough-password"], env=env)
    assert added.exit_code == 0, added.output
    again = runner.invoke(app, ["users", "add", "wang", "--role", "officer", "--district", "德城区",
                                "--password", "a-long-enough-password"], env=env)
    assert again.exit_code == 2 and "already exists" in again.output
    no_district = runner.invoke(app, ["users", "add", "li", "--role", "officer", "--password", "a-long-enough-password"],
                                env=env)
    assert no_district.exit_code == 2 and "district" in no_district.output
    weak = runner.invoke(app, ["users", "add", "zhao", "--role", "supervisor", "--password", "demo-password"],
                         env={**env, "WATERWATCH_PRODUCTION": "true"})
    assert weak.exit_code == 2

    labels = tmp_path / "labels.csv"
    exported = runner.invoke(app, ["export-labels", "--out", str(labels)], env=env)
    assert exported.exit_code == 0, exported.output
    frame = pd.read_csv(labels)
    assert list(frame.columns)[:6] == ["inspection_id", "uscc", "inspected_on", "officer_id", "outcome", "violation_type"]
    assert len(frame) == 0  # nobody has recorded a verdict yet


def test_users_commands_change_and_audit(tmp_path):
    from sqlalchemy import select

    from serving.store import AuditLog, open_store

    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false"}
    runner = CliRunner()
    assert runner.invoke(app, ["publish", "--out", str(make_run(tmp_path / "run", n=20))], env=env).exit_code == 0

    def run(*args):
        result = runner.invoke(app, ["users", *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    run("add", "wang", "--role", "officer", "--district", "德城区", "--password", "a-long-enough-password")
    run("add", "gateway", "--role", "supervisor", "--password", "", "--api-key")
    key = run("add-key", "gateway", "--label", "sms").split(": ")[-1].strip()
    assert key.startswith("ww_")
    listing = run("list")
    assert "wang" in listing and "德城区" in listing and "gateway" in listing
    assert "2 API key(s) of gateway revoked" in run("revoke-key", "gateway")
    run("deactivate", "wang")
    assert [line for line in run("list").splitlines() if line.startswith("wang")][0].split()[3] == "no"
    run("reactivate", "wang")
    run("set-password", "wang", "--password", "another-long-password")
    missing = runner.invoke(app, ["users", "deactivate", "nobody"], env=env)
    assert missing.exit_code == 2 and "no user" in missing.output
    _, sessions = open_store(f"sqlite:///{tmp_path / 'var' / 'waterwatch.db'}")
    with sessions() as s:
        actions = [(a.actor, a.action, a.object_id) for a in s.scalars(select(AuditLog).order_by(AuditLog.id))
                   if a.action.startswith(("user_", "key_"))]
    assert actions == [("cli", "user_create", "wang"), ("cli", "user_create", "gateway"),
                       ("cli", "key_create", "1"), ("cli", "key_create", "2"), ("cli", "key_revoke", "1"),
                       ("cli", "key_revoke", "2"), ("cli", "user_deactivate", "wang"),
                       ("cli", "user_reactivate", "wang"), ("cli", "user_password", "wang")]
    # an officer of one city of a store a province's cities share: the city is listed last
    run("add", "li", "--role", "officer", "--district", "德城区", "--city", "聊城市", "--password", "a-long-enough-password")
    assert [line for line in run("list").splitlines() if line.startswith("li ")][0].split()[-1] == "聊城市"
    # moved to another city: an officer needs that city's district; no city binds to every city; audited
    moved = runner.invoke(app, ["users", "set-city", "li", "德州市"], env=env)
    assert moved.exit_code == 2 and "--district" in moved.output
    assert "德州市" in run("set-city", "li", "德州市", "--district", "陵城区")
    li = [line for line in run("list").splitlines() if line.startswith("li ")][0].split()
    assert li[2] == "陵城区" and li[-1] == "德州市"
    assert "every city" in run("set-city", "gateway")
    with sessions() as s:
        moves = [(a.object_id, a.detail) for a in s.scalars(select(AuditLog).where(AuditLog.action == "user_city")
                                                            .order_by(AuditLog.id))]
    assert [m[0] for m in moves] == ["li", "gateway"]
    assert moves[0][1]["from"] == {"city": "聊城市", "district": "德城区"} and moves[0][1]["city"] == "德州市"


def test_a_stage_run_before_ingest_says_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["profile", "--workspace", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "waterwatch ingest" in result.output and "Traceback" not in result.output


def test_store_commands_refuse_a_store_that_is_not_the_services(tmp_path):
    runner = CliRunner()
    other = {"WATERWATCH_HOME": str(tmp_path / "elsewhere"), "WATERWATCH_SHOW_PROGRESS": "false"}
    for command in (["export-labels", "--out", str(tmp_path / "l.csv")], ["send"]):
        result = runner.invoke(app, command, env=other)
        assert result.exit_code == 2, result.output
        assert "no store at" in result.output and "WATERWATCH_HOME" in result.output
        assert not (tmp_path / "elsewhere" / "waterwatch.db").exists()  # nothing created on the way
    assert not (tmp_path / "l.csv").exists()

    empty = {"WATERWATCH_HOME": str(tmp_path / "fresh"), "WATERWATCH_SHOW_PROGRESS": "false"}
    from serving.store import open_store

    (tmp_path / "fresh").mkdir()
    open_store(f"sqlite:///{tmp_path / 'fresh' / 'waterwatch.db'}")[0].dispose()  # a store, but no run in it
    result = runner.invoke(app, ["export-labels", "--out", str(tmp_path / "l.csv")], env=empty)
    assert result.exit_code == 2 and "no published run" in result.output and "waterwatch publish" in result.output


USER_COMMANDS = (["users", "add", "gateway", "--role", "analyst", "--password", "", "--api-key"], ["users", "list"],
                 ["users", "deactivate", "supervisor"], ["users", "reactivate", "supervisor"],
                 ["users", "set-password", "supervisor", "--password", "a-long-enough-password"],
                 ["users", "add-key", "supervisor"], ["users", "revoke-key", "supervisor"])


def test_users_commands_refuse_a_store_that_is_not_the_services(tmp_path):
    """Issue #12 item 6: a user or key made in another store than the service's would be a 401 later."""
    runner = CliRunner()
    other = {"WATERWATCH_HOME": str(tmp_path / "elsewhere"), "WATERWATCH_SHOW_PROGRESS": "false"}
    for command in USER_COMMANDS:
        result = runner.invoke(app, command, env=other)
        assert result.exit_code == 2, (command, result.output)
        assert "no store at" in result.output and "WATERWATCH_HOME" in result.output and "API key" not in result.output
    assert not (tmp_path / "elsewhere" / "waterwatch.db").exists()  # nothing created on the way

    from sqlalchemy import create_engine, text

    from serving.store import open_store

    cases = {"bare": [], "foreign": ["CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
                                     "INSERT INTO alembic_version VALUES ('ffffdeadbeef')"]}
    for name, statements in cases.items():  # a database file, but not a WaterWatch store
        (tmp_path / name).mkdir()
        engine = create_engine(f"sqlite:///{tmp_path / name / 'waterwatch.db'}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE notes (id INTEGER)"))
            for sql in statements:
                conn.execute(text(sql))
        engine.dispose()
        env = {"WATERWATCH_HOME": str(tmp_path / name), "WATERWATCH_SHOW_PROGRESS": "false"}
        result = runner.invoke(app, USER_COMMANDS[0], env=env)
        assert result.exit_code == 2, result.output
        assert ("holds no WaterWatch store" if name == "bare" else "'ffffdeadbeef', which is not WaterWatch's") \
            in result.output and "Traceback" not in result.output

    fresh = {"WATERWATCH_HOME": str(tmp_path / "fresh"), "WATERWATCH_SHOW_PROGRESS": "false"}
    (tmp_path / "fresh").mkdir()
    open_store(f"sqlite:///{tmp_path / 'fresh' / 'waterwatch.db'}")[0].dispose()  # migrated, but no run yet
    for command in USER_COMMANDS:
        result = runner.invoke(app, command, env=fresh)
        assert result.exit_code == 2 and "no published run" in result.output, (command, result.output)
    assert runner.invoke(app, ["publish", "--out", str(make_run(tmp_path / "run", n=20))], env=fresh).exit_code == 0
    done = runner.invoke(app, USER_COMMANDS[0], env=fresh)
    assert done.exit_code == 0 and "API key (shown once)" in done.output
    assert f"store: sqlite:///{tmp_path / 'fresh' / 'waterwatch.db'}" in done.output  # which store it used


@pytest.mark.postgres
def test_store_commands_refuse_an_empty_postgresql_database():
    import uuid

    from sqlalchemy import text

    from serving.store import make_engine
    from test_store import PG_URL, _postgres_reachable

    why = _postgres_reachable()
    if why:
        pytest.skip(why)
    schema = f"ww_cli_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        env = {"WATERWATCH_DATABASE_URL": f"{PG_URL}?options=-csearch_path%3D{schema}", "WATERWATCH_SHOW_PROGRESS": "false"}
        for command in (USER_COMMANDS[0], ["export-labels", "--out", "/dev/null"]):
            result = CliRunner().invoke(app, command, env=env)
            assert result.exit_code == 2 and "holds no WaterWatch store" in result.output, result.output
            assert "postgresql" in result.output and "Traceback" not in result.output
        with admin.connect() as conn:  # nothing created in it
            assert conn.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                                {"s": schema}).scalar() == 0
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_send_delivers_the_published_outbox_once_through_the_file_sender(tmp_path):
    import json

    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false",
           "WATERWATCH_RULES__BUREAU_NAME": "聊城市水利局"}
    runner = CliRunner()
    assert runner.invoke(app, ["publish", "--out", str(make_run(tmp_path / "run", n=40))], env=env).exit_code == 0
    first = runner.invoke(app, ["send"], env=env)
    assert first.exit_code == 0, first.output
    assert "signature 【聊城市水利局】" in first.output and "sent 2, retrying 0, failed 0" in first.output
    again = runner.invoke(app, ["send"], env=env)
    assert "sent 0," in again.output and "still queued 0" in again.output
    lines = (tmp_path / "var" / "sms" / "sent.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(x)["message_id"] for x in lines) == ["M1", "M2"]
    assert all(json.loads(x)["text"].startswith("【聊城市水利局】") for x in lines)


def _two_cities(tmp_path, env) -> None:
    """Dezhou's and Liaocheng's runs published into one store, each with two due messages signed by its own
    city's bureau (as a province run writes them)."""
    from test_store import DEZHOU, LIAOCHENG

    runner = CliRunner()
    for folder, city in (("dz", DEZHOU), ("lc", LIAOCHENG)):
        run = make_run(tmp_path / folder, n=30, city=city)
        outbox = pd.read_csv(run / "outbox.csv")
        outbox["text"] = f"【{city['name']}水利局】提醒"
        outbox.to_csv(run / "outbox.csv", index=False)
        assert runner.invoke(app, ["publish", "--out", str(run)], env=env).exit_code == 0


def test_send_city_sends_that_citys_messages_only_each_signed_by_its_city(tmp_path):
    """Gap: `waterwatch send` sent every city's due messages and signed them all with the installation's
    bureau (Liaocheng's as 德州市's, say). ``--city`` sends one city's only; without it every city's, each
    signed by its own city's bureau."""
    import json

    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false",
           "WATERWATCH_RULES__BUREAU_NAME": "济南市水利局"}
    _two_cities(tmp_path, env)
    runner = CliRunner()
    sent_file = tmp_path / "var" / "sms" / "sent.jsonl"

    def sent() -> dict[str, str]:
        return {(r := json.loads(x))["message_id"]: r["text"] for x in sent_file.read_text(encoding="utf-8").splitlines()}

    unknown = runner.invoke(app, ["send", "--city", "济南市"], env=env)
    assert unknown.exit_code == 2 and "德州市, 聊城市" in unknown.output and not sent_file.exists()
    dz = runner.invoke(app, ["send", "--city", "德州市"], env=env)
    assert dz.exit_code == 0, dz.output
    assert "sent 2, retrying 0, failed 0" in dz.output and "still queued 0" in dz.output
    assert sent() == {"371400-M1": "【德州市水利局】提醒", "371400-M2": "【德州市水利局】提醒"}
    rest = runner.invoke(app, ["send"], env=env)
    assert rest.exit_code == 0 and "sent 2," in rest.output and "still queued 0" in rest.output
    assert sent() == {"371400-M1": "【德州市水利局】提醒", "371400-M2": "【德州市水利局】提醒",
                      "371500-M1": "【聊城市水利局】提醒", "371500-M2": "【聊城市水利局】提醒"}
