"""Scheduled purges: one pass on SQLite and PostgreSQL, passes from several workers at once, and
the loop inside the gateway's lifespan."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance import maintenance
from clearance.app import create_app
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.config import Settings
from clearance.identity import service
from clearance.identity.tables import identity_evidence
from clearance.identity.vault import EvidenceVault
from clearance.maintenance import Maintenance, Purged, purge_once
from clearance.portal import links, sessions
from clearance.portal.ratelimit import RateLimiter
from clearance.portal.tables import portal_rate_limits, portal_sessions, portal_signin_links
from clearance.store import connect
from tests.identity.test_service import add_user, examination, us_passport, verify

# Decided cases are made now; the passes run 31 days later, past the 30-day retention.
LATER = datetime.now(UTC) + timedelta(days=31)


@pytest.fixture
def settings(instance: tuple[Settings, Path]) -> Settings:
    return instance[0]


def purge_entries(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        raw = conn.execute(sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx))
        entries = [json.loads(r) for r in raw.scalars()]
    return [e for e in entries if e.get("action") == "identity.evidence.purge"]


def verified_people(
    engine: Engine, vault: EvidenceVault, audit: AuditLog, count: int
) -> dict[str, int]:
    """`count` people, each with a verified case (4 evidence files); subject -> user id."""
    people = {}
    for n in range(count):
        user_id = add_user(engine, f"p{n}@example.org")
        passport = us_passport(document_number=f"L{n:07d}X")
        case = verify(engine, vault, audit, user_id, examination(passport))
        assert case.status.value == "verified" and len(case.evidence) == 4
        people[case.subject] = user_id
    return people


def seed_portal(engine: Engine, user_id: int) -> None:
    """Two dead links (one used), one live; one ended session, one live; old and new windows."""
    with engine.begin() as conn:
        links.issue(conn, "a@example.org", "b", minutes=10, now=LATER - timedelta(days=2))
        used = links.issue(conn, "a@example.org", "b", minutes=10, now=LATER - timedelta(days=3))
        links.consume(conn, used, "b", now=LATER - timedelta(days=3))
        links.issue(conn, "a@example.org", "b", minutes=10, now=LATER)
        sessions.start(conn, user_id, hours=12, now=LATER - timedelta(hours=13), replacing=None)
        sessions.start(conn, user_id, hours=12, now=LATER, replacing=None)
    for at in (LATER - timedelta(hours=1), LATER):
        RateLimiter(engine, b"k" * 32, scope="s", limit=5, clock=at.timestamp).allow("x")


def test_one_pass_purges_what_is_dead_and_audits_each_erasure(
    settings: Settings, engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    people = verified_people(engine, vault, audit, 2)
    waiting = add_user(engine, "waiting@example.org")
    pending = verify(engine, vault, audit, waiting, examination(us_passport(), live=False))
    assert pending.status.value == "review"
    seed_portal(engine, waiting)

    assert purge_once(settings, engine, vault, audit, now=LATER) == Purged(
        links=2, sessions=1, rate_windows=1, evidence=8
    )
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(portal_signin_links)).scalar()
        assert conn.execute(sa.select(sa.func.count()).select_from(portal_sessions)).scalar() == 1
        windows = conn.execute(sa.select(portal_rate_limits.c.window_start)).scalars().all()
        erased = conn.execute(
            sa.select(identity_evidence.c.id).where(identity_evidence.c.erased_at.is_not(None))
        ).scalars()
        assert not any(vault.exists(e) for e in erased)
        kept = service.get_case(conn, pending.id)
    assert len(windows) == 1 and not any(e.erased for e in kept.evidence)  # review keeps its own
    entries = purge_entries(engine)
    assert {e["subject"] for e in entries} == set(people)
    assert all(e["details"] == {"files": 4, "retention_days": 30} for e in entries)
    assert all(e["actor"] == maintenance.ACTOR for e in entries)

    # Idempotent: a second pass finds nothing and writes nothing.
    assert purge_once(settings, engine, vault, audit, now=LATER) == Purged(0, 0, 0, 0)
    assert len(purge_entries(engine)) == 2


def test_concurrent_passes_erase_and_audit_each_file_exactly_once(
    settings: Settings, db_url: str, engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    """Four workers (two engines: two processes' pools) purge at the same moment."""
    people = verified_people(engine, vault, audit, 4)
    other = connect(db_url)
    start = threading.Barrier(4)
    counts: list[int] = []

    def worker(db: Engine) -> None:
        start.wait()
        counts.append(purge_once(settings, db, vault, audit, now=LATER).evidence)

    threads = [threading.Thread(target=worker, args=(db,)) for db in (engine, other) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.dispose()
    assert sorted(counts)[-1] == sum(counts) == 16  # all in one run's claim, none counted twice
    files: dict[object, int] = {}
    for entry in purge_entries(engine):
        details = entry["details"]
        assert isinstance(details, dict)
        files[entry["subject"]] = files.get(entry["subject"], 0) + details["files"]
    assert files == dict.fromkeys(people, 4)


class FlakyVault(EvidenceVault):
    """A vault whose first deletion fails (a full disk, a permission slip)."""

    failed = False

    def erase(self, evidence_id: str) -> bool:
        if not self.failed:
            self.failed = True
            raise PermissionError("read-only file system")
        return super().erase(evidence_id)


def test_a_failed_pass_erases_nothing_and_the_loop_carries_on(
    settings: Settings,
    engine: Engine,
    audit: AuditLog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = FlakyVault(tmp_path / "flaky", b"k" * 32)
    verified_people(engine, flaky, audit, 1)
    fast = dataclasses.replace(
        settings, portal=dataclasses.replace(settings.portal, maintenance_minutes=0.0005)
    )
    loop = Maintenance(fast, engine, audit, clock=lambda: LATER, vault=flaky)

    async def run_until_purged() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop))
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(purge_entries, engine):
            assert time.monotonic() < deadline, "the loop never purged"
            await asyncio.sleep(0.02)
        stop.set()
        await task

    with caplog.at_level(logging.WARNING, "clearance.maintenance"):
        asyncio.run(run_until_purged())
    assert "maintenance pass failed: PermissionError" in caplog.messages
    [entry] = purge_entries(engine)  # the failed pass rolled its claim back: one erasure, once
    assert entry["details"] == {"files": 4, "retention_days": 30}
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(identity_evidence.c.id).where(identity_evidence.c.erased_at.is_(None))
        ).all()
    assert left == []


# -- in the gateway -----------------------------------------------------------------------------


def _dead_link(settings: Settings) -> None:
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        links.issue(
            conn, "a@example.org", "b", minutes=10, now=datetime.now(UTC) - timedelta(days=2)
        )
    engine.dispose()


def _links_left(settings: Settings) -> int:
    engine = connect(settings.database_url)
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(portal_signin_links)).scalar()
    engine.dispose()
    return int(count or 0)


def _lifespan(settings: Settings) -> list[asyncio.Task[object]]:
    """Start and stop the gateway (its lifespan); returns the maintenance tasks it ran."""
    app = create_app(settings)
    seen: list[asyncio.Task[object]] = []

    async def main() -> None:
        async with app.lifespan(app.web):
            seen.extend(t for t in asyncio.all_tasks() if t.get_name() == maintenance.TASK_NAME)
            if seen:
                deadline = time.monotonic() + 30
                while await asyncio.to_thread(_links_left, settings):
                    assert time.monotonic() < deadline, "the first pass did not run"
                    await asyncio.sleep(0.02)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == maintenance.TASK_NAME]

    asyncio.run(main())
    return seen


def test_the_gateway_purges_at_start_and_stops_the_loop(settings: Settings) -> None:
    _dead_link(settings)
    [task] = _lifespan(settings)  # default: every 5 minutes, the first pass at once
    assert task.done() and not task.cancelled() and task.exception() is None
    assert _links_left(settings) == 0


def test_maintenance_minutes_zero_turns_the_loop_off(settings: Settings) -> None:
    _dead_link(settings)
    off = dataclasses.replace(
        settings, portal=dataclasses.replace(settings.portal, maintenance_minutes=0)
    )
    assert _lifespan(off) == []
    assert _links_left(settings) == 1
