"""SIGKILL during appends and integration, then restart, on SQLite and PostgreSQL: every
acknowledged index is present with the same bytes, the root rebuilt from the leaves equals the
latest checkpoint, and each checkpoint extends the one kept before the crash."""

from __future__ import annotations

from pathlib import Path

from clearance.config import AuditSettings
from tests.reliability.crash import kill_cycles

CYCLES = 3  # bench/reliability.py runs 20


def test_kill_cycles_lose_no_acknowledged_entry(
    db_url: str, audit_settings: AuditSettings, tmp_path: Path
) -> None:
    report = kill_cycles(db_url, audit_settings, CYCLES, seed=7, workdir=tmp_path)
    assert report.cycles == CYCLES
    assert report.acked >= 20 * CYCLES  # each cycle ran past its first acknowledgements
    assert report.lost == 0
    assert report.size >= report.acked
