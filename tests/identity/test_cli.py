"""`clearance identity verify` and `clearance identity review ...` against a real instance."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from typer.testing import CliRunner

from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.cli.app import app
from clearance.config import Settings, load_settings
from clearance.identity import service
from clearance.identity.models import Outcome, VerificationMethod
from clearance.identity.mrz import DocumentData, DocumentFormat, Sex, compose
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.setup import write_instance
from clearance.store import connect, migrate
from tests.fixtures.identity.synth import render_page
from tests.identity.test_service import examination, us_passport

runner = CliRunner()
FACES = Path(__file__).parent.parent / "fixtures" / "identity" / "faces"


def make_instance(directory: Path, db_url: str) -> tuple[Settings, Path]:
    write_instance(directory, origin="test.clearance.local/audit")
    config = directory / "clearance.toml"
    text = config.read_text().replace(
        'database_url = "sqlite:///clearance.db"', f'database_url = "{db_url}"'
    )
    config.write_text(text)
    return load_settings(config, environ={}), config


def add_user(settings: Settings, email: str, name: str) -> int:
    engine = connect(settings.database_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            return principals.add_user(conn, email, name=name).id
    finally:
        engine.dispose()


def test_a_file_that_is_not_an_image_is_a_clean_refusal(tmp_path: Path) -> None:
    settings, config = make_instance(tmp_path / "i", f"sqlite:///{tmp_path / 'c.db'}")
    add_user(settings, "grace@example.com", "Grace Hopper")
    fake = tmp_path / "passport.jpg"
    fake.write_bytes(b"%PDF-1.7 not an image at all")
    args = ["identity", "verify", "grace@example.com", "--document", str(fake)]
    args += ["--selfie", str(FACES / "hopper.jpg"), "--config", str(config)]
    done = subprocess.run(
        [sys.executable, "-c", "from clearance.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the document passport.jpg: the file is not a JPEG, PNG or WebP image"
    ]
    assert done.stdout == ""


@pytest.mark.slow
def test_verify_prints_the_issue_json_shape(tmp_path: Path) -> None:
    """The real pipeline: OCR of a rendered US passport page, face match against a selfie."""
    settings, config = make_instance(tmp_path / "i", f"sqlite:///{tmp_path / 'c.db'}")
    add_user(settings, "grace@example.com", "Grace Hopper")
    lines = compose(
        DocumentData(
            format=DocumentFormat.TD3,
            document_code="P",
            issuing_state="USA",
            nationality="USA",
            primary_identifier="HOPPER",
            secondary_identifier="GRACE",
            document_number="P12345678",
            birth_date=date(1906, 12, 9),
            sex=Sex.FEMALE,
            expiry_date=date(date.today().year + 4, 6, 30),
        )
    )
    portrait = Image.open(FACES / "hopper.jpg").convert("RGB")
    page = tmp_path / "passport.png"
    render_page(lines, portrait).save(page)
    args = ["identity", "verify", "grace@example.com", "--document", str(page)]
    args += ["--selfie", str(FACES / "hopper.jpg"), "--method", "in_person", "--json"]
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"status", "nationalities", "us_person", "document", "face", "reasons"}
    assert out["document"] == {
        "type": "passport",
        "issuing_state": "US",
        "expiry": f"{date.today().year + 4}-06-30",
    }
    assert out["face"]["threshold"] == 0.5 and out["face"]["distance"] < 0.5
    assert (out["status"], out["nationalities"], out["us_person"], out["reasons"]) == (
        "verified",
        ["US"],
        "citizen",
        [],
    )
    mismatch = [*args[:5], "--selfie", str(FACES / "collins.jpg"), *args[7:]]
    other = runner.invoke(app, [*mismatch, "--config", str(config)])
    assert json.loads(other.output)["status"] in ("rejected", "review")


def test_review_list_show_decide(db_url: str, tmp_path: Path) -> None:
    settings, config = make_instance(tmp_path / "i", db_url)
    user_id = add_user(settings, "anna@example.com", "Anna Maria Eriksson")
    engine = connect(settings.database_url)
    vault = EvidenceVault.open(settings.identity)
    log = AuditLog(engine, settings.audit)
    try:
        case = service.verify_document(
            engine,
            vault,
            log,
            user_id,
            examination(us_passport(), live=False),
            method=VerificationMethod.REMOTE,
            max_age_days=365,
        )
    finally:
        log.close()
        engine.dispose()
    assert case.status is Outcome.REVIEW
    listed = runner.invoke(app, ["identity", "review", "list", "--json", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert [row["case"] for row in json.loads(listed.output)] == [case.id]
    export = tmp_path / "export"
    shown = runner.invoke(
        app,
        [
            "identity",
            "review",
            "show",
            str(case.id),
            "--export",
            str(export),
            "--json",
            "-c",
            str(config),
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["reasons"] == ["liveness_missing"]
    assert (export / f"{case.id}-01-selfie.jpg").read_bytes() == b"selfie-jpeg"
    decide = ["identity", "review", "decide", str(case.id), "--outcome", "verified"]
    decided = runner.invoke(app, [*decide, "--reason", "checked by video call", "-c", str(config)])
    assert decided.exit_code == 0, decided.output
    assert "verified" in decided.output
    empty = runner.invoke(app, ["identity", "review", "list", "--config", str(config)])
    assert "no cases awaiting review" in empty.output


def test_purge_erases_old_evidence_and_audits_each_person(db_url: str, tmp_path: Path) -> None:
    settings, config = make_instance(tmp_path / "i", db_url)
    text = config.read_text().replace("retention_days = 30", "retention_days = 0")
    config.write_text(text)
    user_id = add_user(settings, "anna@example.com", "Anna Maria Eriksson")
    engine = connect(settings.database_url)
    log = AuditLog(engine, settings.audit)
    try:
        case = service.verify_document(
            engine,
            EvidenceVault.open(settings.identity),
            log,
            user_id,
            examination(us_passport()),
            method=VerificationMethod.REMOTE,
            max_age_days=365,
        )
    finally:
        log.close()
    purged = runner.invoke(app, ["identity", "purge", "--config", str(config)])
    again = runner.invoke(app, ["identity", "purge", "--config", str(config)])
    with engine.connect() as conn:
        raw = conn.execute(sa.select(audit_entries.c.entry)).scalars().all()
    engine.dispose()
    assert purged.exit_code == 0, purged.output
    assert purged.output == "erased 4 evidence files older than 0 days\n"
    assert again.output == "erased 0 evidence files older than 0 days\n"
    [entry] = [e for e in map(json.loads, raw) if e.get("action") == "identity.evidence.purge"]
    assert entry["subject"] == case.subject and entry["actor"].startswith("cli:")
    assert entry["details"] == {"files": 4, "retention_days": 0}
