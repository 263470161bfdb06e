"""`clearance audit query`: an auditor finds a person's records, by pseudonym, type and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.cli.app import app


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path / "inst")]).exit_code == 0
    monkeypatch.setenv("CLEARANCE_CONFIG", str(tmp_path / "inst" / "clearance.toml"))
    return runner


def lines(cli: CliRunner, *args: str) -> list[dict[str, object]]:
    result = cli.invoke(app, ["audit", "query", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def test_query_by_person_type_and_time(cli: CliRunner) -> None:
    for email in ("a@x.test", "b@x.test"):
        assert cli.invoke(app, ["users", "add", email, "--name", "Some One"]).exit_code == 0
        attest = [
            "identity",
            "attest",
            email,
            "--nationality",
            "SE",
            "--us-person",
            "none",
            "--method",
            "document",
        ]
        assert cli.invoke(app, attest).exit_code == 0
    mine = lines(cli, "--email", "a@x.test")
    actions = [e["entry"]["action"] for e in mine]  # type: ignore[index]
    assert actions == ["user.add", "identity.attest"]
    subject = mine[0]["entry"]["subject"]  # type: ignore[index]
    assert all(e["entry"]["subject"] == subject for e in mine)  # type: ignore[index]
    assert "a@x.test" not in json.dumps(mine)  # the log holds the pseudonym only
    assert lines(cli, "--subject", str(subject)) == mine
    everyone = lines(cli, "--type", "admin_action")
    assert len(everyone) == 4
    assert [e["index"] for e in everyone] == sorted(e["index"] for e in everyone)  # type: ignore[type-var]
    assert lines(cli, "--since", "2999-01-01T00:00:00Z") == []
    assert len(lines(cli, "--until", "2999-01-01T00:00:00Z")) == 4
