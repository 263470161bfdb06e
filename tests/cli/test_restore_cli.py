"""`clearance models resume MODEL [--percent P | --orgs A,B | --internal] [--reason R]`: each
phased-restore step an audit entry, the state in `models list --json`; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .test_catalog_cli import as_json, audit_entry, models, ok, refused


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    runner = CliRunner()
    ok(runner, "init", str(tmp_path / "inst"))
    config = tmp_path / "inst" / "clearance.toml"
    # Internal users: the members of the organisations named here.
    config.write_text(
        config.read_text().replace("[policy]\n", '[policy]\ninternal_orgs = ["Labs"]\n', 1)
    )
    monkeypatch.setenv("CLEARANCE_CONFIG", str(config))
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", db_url)
    ok(runner, "upstreams", "add", "demo", "--kind", "openai", "--base-url", "http://h.test/v1")
    ok(runner, "models", "add", "fable-4", "--upstream", "demo", "--training-compute", "2e25")
    ok(runner, "orgs", "add", "Acme")
    ok(runner, "orgs", "add", "Labs")
    return runner


def test_resume_in_phases_each_step_audited(cli: CliRunner) -> None:
    assert "not suspended" in refused(cli, "models", "resume", "fable-4", "--percent", "10")
    ok(cli, "models", "suspend", "fable-4", "--reason", "incident 42")
    assert models(cli)["fable-4"]["status"] == "suspended"

    step = as_json(cli, "models", "resume", "fable-4", "--orgs", "Acme", "--reason", "canary")
    assert (step["status"], step["restore"]) == (
        "restoring",
        {"percent": 0, "orgs": ["Acme"], "internal": False},
    )
    entry = audit_entry(cli, step["audit_index"])
    assert (entry["action"], entry["target"]) == ("model.resume", "fable-4")
    assert isinstance(entry["details"], dict)
    assert entry["details"]["reason"] == "canary" and entry["details"]["previous_cohort"] is None
    assert entry["actor"]  # who: the operator

    step = as_json(cli, "models", "resume", "fable-4", "--internal", "--reason", "staff")
    assert step["restore"] == {"percent": 0, "orgs": ["Acme", "Labs"], "internal": True}
    step = as_json(cli, "models", "resume", "fable-4", "--percent", "10")
    assert step["restore"] == {"percent": 10, "orgs": ["Acme", "Labs"], "internal": True}
    assert models(cli)["fable-4"]["restore"] == step["restore"]

    assert "only widen" in refused(cli, "models", "resume", "fable-4", "--percent", "5")
    assert "one of" in refused(cli, "models", "resume", "fable-4", "--percent", "50", "--internal")
    assert "Nowhere" in refused(cli, "models", "resume", "fable-4", "--orgs", "Nowhere")
    assert "1 to 100" in refused(cli, "models", "resume", "fable-4", "--percent", "0")

    done = as_json(cli, "models", "resume", "fable-4", "--reason", "all clear")
    assert (done["status"], done["restore"]) == ("active", None)
    details = audit_entry(cli, done["audit_index"])["details"]
    assert isinstance(details, dict)
    assert (details["cohort"], details["reason"]) == ("everyone", "all clear")
    assert details["previous_cohort"] == {"percent": 10, "orgs": ["Acme", "Labs"], "internal": True}
    assert "resumed for everyone" in ok(cli, "models", "resume", "fable-4")
    assert json.loads(ok(cli, "models", "list", "--json"))[0]["status"] == "active"
