"""`clearance audit hold add|release|list` and `clearance identity erase` meeting a hold, through
the CLI against a real instance (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.audit.service import AuditLog
from clearance.cli.app import app
from clearance.config import load_settings
from clearance.errors import Conflict, NotFound
from clearance.identity import service
from clearance.identity.models import VerificationMethod
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.store import connect
from tests.audit.test_holds import entries
from tests.identity.test_cli import add_user, make_instance
from tests.identity.test_service import examination, us_passport

runner = CliRunner()


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> tuple[Path, str]:
    """An instance with Anna, verified (four evidence files); her config file and subject."""
    settings, config = make_instance(tmp_path / "i", db_url)
    user_id = add_user(settings, "anna@example.com", "Anna Maria Eriksson")
    engine = connect(settings.database_url)
    log = AuditLog(engine, settings.audit)
    try:
        service.verify_document(
            engine,
            EvidenceVault.open(settings.identity),
            log,
            user_id,
            examination(us_passport()),
            method=VerificationMethod.REMOTE,
            max_age_days=365,
        )
        with engine.connect() as conn:
            subject = principals.get_user_by_id(conn, user_id).subject_id
    finally:
        log.close()
        engine.dispose()
    return config, subject


def cli(config: Path, *args: str) -> str:
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_hold_blocks_erase_until_released(instance: tuple[Path, str]) -> None:
    config, subject = instance
    added = cli(
        config,
        "audit",
        "hold",
        "add",
        "--email",
        "anna@example.com",
        "--reason",
        "grand jury subpoena",
        "--reference",
        "GJ-17",
        "--json",
    )
    hold = json.loads(added)
    assert (hold["scope"], hold["value"], hold["reference"]) == ("person", subject, "GJ-17")
    assert "anna@example.com" not in added  # the hold names the pseudonym
    listed = cli(config, "audit", "hold", "list")
    assert listed.splitlines()[0].split("\t")[:3] == [str(hold["id"]), "person", subject]
    assert listed.rstrip().endswith("GJ-17\tgrand jury subpoena")

    refused = runner.invoke(app, ["identity", "erase", "anna@example.com", "-c", str(config)])
    assert refused.exit_code == 1 and isinstance(refused.exception, Conflict)
    assert refused.exception.detail == (
        f"erasure refused: under legal hold {hold['id']} on person {subject} "
        "(grand jury subpoena; reference GJ-17)"
    )

    text = config.read_text().replace("retention_days = 30", "retention_days = 0")
    config.write_text(text)
    assert cli(config, "identity", "purge").splitlines() == [
        "erased 0 evidence files older than 0 days",
        "kept 4 older files under legal hold (clearance audit hold list)",
    ]
    assert cli(config, "audit", "hold", "release", str(hold["id"]), "--reason", "quashed") == (
        f"hold {hold['id']}: released\n"
    )
    assert cli(config, "audit", "hold", "list") == "no legal holds in force\n"
    [shown] = json.loads(cli(config, "audit", "hold", "list", "--all", "--json"))
    assert shown["release_reason"] == "quashed" and shown["released_by"].startswith("cli:")
    assert cli(config, "identity", "erase", "anna@example.com").splitlines() == [
        "erased 4 evidence files of anna@example.com",
        "their identity decisions and audit entries are kept (at least 5 years)",
    ]
    engine = connect(load_settings(config, environ={}).database_url)
    try:
        recorded = [e.get("action") for e in entries(engine) if e.get("subject") == subject]
    finally:
        engine.dispose()
    assert recorded[-4:] == [
        "hold.add",
        "identity.evidence.erase_refused",
        "hold.release",
        "identity.evidence.erase",
    ]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--email", "nobody@example.com"], NotFound("unknown user 'nobody@example.com'")),
        (["--org", "Nobody Inc"], NotFound("unknown organisation 'Nobody Inc'")),
        (["--case", "999"], NotFound("no identity case 999")),
        (["--email", "anna@example.com", "--org", "Acme"], None),
        ([], None),
    ],
)
def test_bad_hold_commands_are_refused(
    instance: tuple[Path, str], args: list[str], problem: NotFound | None
) -> None:
    config, _ = instance
    result = runner.invoke(
        app, ["audit", "hold", "add", *args, "--reason", "r", "--config", str(config)]
    )
    if problem is None:  # not exactly one scope: a usage error, nothing stored
        assert result.exit_code == 2
        assert "exactly one of --email, --subject, --org, --case" in result.output
    else:
        assert result.exit_code == 1 and isinstance(result.exception, NotFound)
        assert result.exception.detail == problem.detail
    assert cli(config, "audit", "hold", "list", "--all") == "no legal holds\n"


def test_release_of_an_unknown_or_released_hold(instance: tuple[Path, str]) -> None:
    config, subject = instance
    unknown = runner.invoke(
        app, ["audit", "hold", "release", "5", "--reason", "r", "-c", str(config)]
    )
    assert isinstance(unknown.exception, NotFound) and unknown.exception.detail == "no legal hold 5"
    cli(config, "audit", "hold", "add", "--subject", subject, "--reason", "audit by BIS")
    cli(config, "audit", "hold", "release", "1", "--reason", "closed")
    twice = runner.invoke(
        app, ["audit", "hold", "release", "1", "--reason", "r", "-c", str(config)]
    )
    assert twice.exit_code == 1 and isinstance(twice.exception, Conflict)
    assert "legal hold 1 was already released" in twice.exception.detail
