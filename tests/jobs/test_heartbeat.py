"""The worker's heartbeat on real SQLite and PostgreSQL: the leases of the jobs its live runners
hold are renewed, those of a runner that is gone are not (its job is then left to another)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.config import Settings
from clearance.jobs import runner, service
from clearance.jobs.models import JobKind
from clearance.jobs.tables import jobs
from clearance.jobs.worker import Worker, _spawn
from clearance.principals import service as principals
from clearance.store import connect
from tests.gateway.conftest import make_instance


@dataclass
class _Process:
    """Stands in for a runner's process: only whether it is alive is asked."""

    alive: bool

    def is_alive(self) -> bool:
        return self.alive


def _slot() -> runner.Slot:
    return runner.Slot(_spawn.Value("q", 0), _spawn.Value("q", 0), _spawn.Value("d", 0))


def test_a_live_runners_job_is_renewed_a_dead_ones_is_not(db_url: str, tmp_path: Path) -> None:
    settings, config = make_instance(db_url, tmp_path / "instance")
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        user = principals.add_user(conn, "ada@example.org", name="Ada Lovelace").id
        for _ in range(2):
            service.enqueue(conn, JobKind.VERIFY_DOCUMENT, {}, user_id=user, max_attempts=3)
    held = [service.claim(engine, lease_seconds=5, runner=f"r{i}") for i in range(2)]
    assert all(job is not None for job in held)
    worker = Worker(config, _with_lease(settings, 600), 2)
    try:
        for r, job, alive in zip(worker.runners, held, (True, False), strict=True):
            assert job is not None
            r.slot.set(job)
            r.process = _Process(alive)  # type: ignore[assignment]
        worker.heartbeat(force=True)
        live, dead = (job.id for job in held if job is not None)
        now = service.utc_now().timestamp()
        assert _until(engine, live) > now + 500  # renewed for 600 s
        assert _until(engine, dead) < now + 10  # still the claim's 5 s
        # A beat within a quarter of a lease of the last one does nothing (not forced).
        worker.settings = _with_lease(settings, 6000)
        worker.heartbeat()
        assert _until(engine, live) < service.utc_now().timestamp() + 700
    finally:
        worker.engine.dispose()
        engine.dispose()


def _with_lease(settings: Settings, seconds: int) -> Settings:
    return replace(settings, jobs=replace(settings.jobs, lease_seconds=seconds))


def _until(engine: Engine, job_id: int) -> float:
    with engine.connect() as conn:
        value = conn.execute(sa.select(jobs.c.locked_until).where(jobs.c.id == job_id)).scalar_one()
    # SQLite gives back the stored UTC time without its zone.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return float(aware.timestamp())
