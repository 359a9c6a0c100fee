"""The CLI's store commands: users, publish and export-labels, as an administrator would run them."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from test_store import make_run
from waterwatch.cli import app


def test_users_publish_and_export_labels(tmp_path):
    env = {"WATERWATCH_HOME": str(tmp_path / "var"), "WATERWATCH_SHOW_PROGRESS": "false"}
    runner = CliRunner()
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

    published = runner.invoke(app, ["publish", "--out", str(make_run(tmp_path / "run", n=40))], env=env)
    assert published.exit_code == 0, published.output
    assert '"leads_new"' in published.output

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
        actions = [(a.actor, a.action, a.object_id) for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == [("cli", "user_create", "wang"), ("cli", "user_create", "gateway"),
                       ("cli", "key_create", "1"), ("cli", "key_create", "2"), ("cli", "key_revoke", "1"),
                       ("cli", "key_revoke", "2"), ("cli", "user_deactivate", "wang"),
                       ("cli", "user_reactivate", "wang"), ("cli", "user_password", "wang")]


def test_a_stage_run_before_ingest_says_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["profile", "--workspace", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "waterwatch ingest" in result.output and "Traceback" not in result.output
