"""kill -9 during appends loses no acknowledged entry; the log then integrates and verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.keys import NoteVerifier
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.audit.verify import verify_log
from clearance.config import AuditSettings
from tests.audit.conftest import ORIGIN, entry

ROOT = Path(__file__).resolve().parents[2]


def test_kill_9_loses_no_acknowledged_entry(
    db_url: str, engine: Engine, audit_settings: AuditSettings, verifier: NoteVerifier
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.audit.crash_writer", db_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked: dict[int, int] = {}
    try:
        while len(acked) < 2000:
            line = child.stdout.readline()
            assert line, "the writer died before it was killed"
            index, payload = map(int, line.split())
            acked[index] = payload
        os.kill(child.pid, signal.SIGKILL)
        acked.update(dict(map(int, line.split()) for line in child.stdout))  # type: ignore[misc]
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(audit_entries.c.idx, audit_entries.c.entry)).all())
    assert sorted(rows) == list(range(len(rows)))  # gap-free, whatever was in flight
    for index, payload in acked.items():
        assert bytes(rows[index]) == entry(payload)
    log = AuditLog(engine, audit_settings)
    log.integrate()
    log.close()
    assert verify_log(engine, verifier, ORIGIN).size == len(rows)
