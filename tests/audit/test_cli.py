"""`clearance audit key | checkpoint | verify` against a real instance directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clearance.audit.keys import NoteVerifier
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.cli.app import app
from clearance.config import Settings, load_settings
from clearance.setup import write_instance
from clearance.store import connect, migrate
from tests.audit.conftest import entry

runner = CliRunner()


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    directory = tmp_path / "instance"
    write_instance(directory, origin="cli.clearance.local/audit")
    config = directory / "clearance.toml"
    text = config.read_text().replace(
        'database_url = "sqlite:///clearance.db"', f'database_url = "{db_url}"'
    )
    config.write_text(text)
    settings = load_settings(config, environ={})
    engine = connect(settings.database_url)
    migrate(engine)
    log = AuditLog(engine, settings.audit)
    log.append_many([entry(i) for i in range(40)])
    log.integrate()
    log.close()
    engine.dispose()
    return settings, config


def test_key_prints_the_verifier_key_last(instance: tuple[Settings, Path]) -> None:
    _, config = instance
    result = runner.invoke(app, ["audit", "key", "--config", str(config)])
    assert result.exit_code == 0, result.output
    verifier = NoteVerifier.from_text(result.output.strip().splitlines()[-1])
    assert verifier.name == "cli.clearance.local/audit"


def test_verify_passes_then_names_the_altered_entry(
    instance: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, config = instance
    kept = runner.invoke(app, ["audit", "checkpoint", "--config", str(config)])
    assert kept.exit_code == 0 and kept.output.startswith("cli.clearance.local/audit\n40\n")
    saved = tmp_path / "checkpoint.txt"
    saved.write_text(kept.output)
    key = runner.invoke(app, ["audit", "key", "--config", str(config)]).output.splitlines()[-1]
    args = ["audit", "verify", "--config", str(config), "--checkpoint", str(saved), "--key", key]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "OK: 40 entries" in ok.output and "extends the given checkpoint" in ok.output
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(audit_entries).where(audit_entries.c.idx == 3).values(entry=entry(-3))
        )
    engine.dispose()
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert "audit entry 3:" in bad.output
