"""Syscall faults under strace on a writer appending to SQLite: an I/O error (EIO) or SIGKILL at
the Nth fdatasync / pwrite64 / fsync / rename. After each run, offline: no acknowledgement
followed a failed call, `clearance audit verify` passes, no acknowledged entry or checkpoint is
lost, and a restarted log integrates and verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.config import AuditSettings
from clearance.store import connect, migrate
from tests.reliability.faults import (
    APPENDS,
    STRACE,
    FaultRun,
    call_numbers,
    fresh_copy,
    offline_problems,
    parse_trace,
    run_writer,
)
from tests.reliability.logs import make_settings

pytestmark = pytest.mark.skipif(
    STRACE is None, reason="strace is not installed (Debian package; see scripts/system-deps)"
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("faults")
    engine = connect(f"sqlite:///{directory / 'template.db'}")
    migrate(engine)
    engine.dispose()
    return directory


@pytest.fixture(scope="module")
def settings(workdir: Path) -> AuditSettings:
    return make_settings(workdir)


@pytest.fixture(scope="module")
def baseline(workdir: Path, settings: AuditSettings) -> FaultRun:
    db = fresh_copy(workdir / "template.db", workdir / "baseline.db")
    return run_writer(db, settings, "fdatasync", "EIO", 0, workdir)


def test_every_acknowledgement_follows_an_fdatasync(baseline: FaultRun) -> None:
    """Without faults: each ACK left the process only after a successful fdatasync of the WAL
    (SQLite WAL + synchronous=FULL, seen from the kernel's side)."""
    assert baseline.returncode == 0 and baseline.lines[-1] == "DONE"
    assert len(baseline.acks()) == APPENDS
    assert baseline.unsynced_acks() == 0
    assert baseline.signed() == [4, 8, 12]


CASES = [
    ("fdatasync", "EIO", 0.3),
    ("fdatasync", "EIO", 0.8),
    ("fdatasync", "KILL", 0.3),
    ("fdatasync", "KILL", 0.8),
    ("pwrite64", "EIO", 0.4),
    ("pwrite64", "EIO", 0.9),
    ("pwrite64", "KILL", 0.6),
    ("fsync", "EIO", 0.0),  # SQLite on Linux syncs with fdatasync: expected never to be called
    ("rename", "KILL", 0.0),  # ... and never renames; kept so a change in either shows up here
]


@pytest.mark.parametrize(("syscall", "action", "at"), CASES)
def test_a_syscall_fault_loses_nothing_acknowledged(
    workdir: Path,
    settings: AuditSettings,
    baseline: FaultRun,
    syscall: str,
    action: str,
    at: float,
) -> None:
    numbers = call_numbers(baseline, syscall)
    when = numbers[int(at * len(numbers))] if numbers else 1
    db = fresh_copy(workdir / "template.db", workdir / f"{syscall}-{action}-{when}.db")
    run = run_writer(db, settings, syscall, action, when, workdir)
    assert run.injected == bool(numbers)
    if numbers and action == "EIO":
        # An I/O error is an error reply to that one append or integration, never a crash.
        assert run.lines[-1] == "DONE"
        assert any(line.startswith(("FAIL", "CKPTFAIL")) for line in run.lines)
    if numbers and action == "KILL":
        assert run.returncode != 0 and "DONE" not in run.lines
    assert offline_problems(run, db, settings, workdir) == []


def test_the_trace_check_catches_an_acknowledgement_after_a_failed_sync() -> None:
    """The offline check itself fails when an ACK follows a failed fdatasync, or no sync."""
    trace = "\n".join(
        [
            "7  fdatasync(4)                      = 0",
            '7  write(1, "ACK 0 {}\\n", 9)         = 9',
            "7  fdatasync(4)                      = -1 EIO (Input/output error) (INJECTED)",
            '7  write(1, "ACK 1 {}\\n", 9)         = 9',
            '7  write(1, "ACK 2 {}\\n", 9)         = 9',
        ]
    )
    run = FaultRun("fdatasync", "EIO", 2, 0, parse_trace(trace))
    assert run.injected
    assert run.acked_after_failure() == ["ACK"]
    assert run.unsynced_acks() == 2
