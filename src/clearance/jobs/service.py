"""The queue: enqueue, claim under a lease, finish once, retry with back-off.

States: queued -> running -> done | rejected, and running -> queued again on a failed attempt
(back-off `BACKOFF_SECONDS * 2 ** (attempt - 1)`, at most `BACKOFF_MAX_SECONDS`) until
`max_attempts`, when the job ends rejected with the last error as its reason. A running job whose
lease has passed is due again: its worker died. The worker renews its runners' leases (`renew`,
every quarter of `[jobs] lease_seconds`), so the lease measures how long a worker has been gone,
not how long a job may run (the worker enforces the time limit itself).

Every write of a holder names the attempt it claimed (`WHERE id = ? AND attempts = ? AND state =
'running'`): if another runner has claimed the job since, the write changes nothing and the
holder learns it lost the job (`LeaseLost`).
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from clearance.errors import Conflict, NotFound, QueueFull
from clearance.jobs import metrics
from clearance.jobs.models import FINISHED, Job, JobKind, JobState, Progress
from clearance.jobs.tables import jobs

BACKOFF_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 600.0
_ESTIMATE_SAMPLE = 50  # recent jobs whose durations estimate the wait when the queue is full
_DEFAULT_JOB_SECONDS = 10.0  # the estimate before any job has run


class LeaseLost(Conflict):
    """The job was claimed by another runner since this one claimed it: store nothing. Caught
    by the runner (runner.run_job); never reaches a client."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns the stored UTC times without their zone.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def _job(row: Row[Any]) -> Job:
    result: Mapping[str, Any] = row.result or {}
    return Job(
        id=row.id,
        kind=JobKind(row.kind),
        state=JobState(row.state),
        user_id=row.user_id,
        payload=dict(row.payload),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        case=result.get("case"),
        reason=result.get("reason"),
        last_error=row.last_error,
        result=dict(result),
    )


def pending(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
        ).scalar_one()
    )


def check_room(conn: Connection, max_pending: int, *, now: datetime | None = None) -> None:
    """Refuse new work the workers cannot take soon: `QueueFull` with an estimate of the wait.

    A soft bound: two requests checking at once may both pass it by one."""
    waiting = pending(conn)
    if waiting < max_pending:
        return
    seconds = estimate_wait(conn, waiting, now=now or utc_now())
    minutes = max(1, math.ceil(seconds / 60))
    raise QueueFull(
        f"too many verifications are waiting: try again in {minutes} minute"
        + ("s" if minutes > 1 else ""),
        retry_after=minutes * 60,
    )


def estimate_wait(conn: Connection, waiting: int, *, now: datetime) -> float:
    """Seconds until `waiting` jobs are through: their number times the mean duration of recent
    jobs, over the runners that took jobs in the last ten minutes (at least one)."""
    recent = conn.execute(
        sa.select(jobs.c.started_at, jobs.c.finished_at)
        .where(jobs.c.state == JobState.DONE.value, jobs.c.started_at.is_not(None))
        .order_by(jobs.c.id.desc())
        .limit(_ESTIMATE_SAMPLE)
    ).all()
    durations = [
        (f - s).total_seconds()
        for s, f in ((_aware(r.started_at), _aware(r.finished_at)) for r in recent)
        if s is not None and f is not None
    ]
    mean = sum(durations) / len(durations) if durations else _DEFAULT_JOB_SECONDS
    runners = conn.execute(
        sa.select(sa.func.count(sa.distinct(jobs.c.locked_by))).where(
            jobs.c.started_at >= now - timedelta(minutes=10)
        )
    ).scalar_one()
    return waiting * mean / max(1, int(runners))


def enqueue(
    conn: Connection,
    kind: JobKind,
    payload: Mapping[str, Any],
    *,
    user_id: int | None,
    max_attempts: int,
    now: datetime | None = None,
) -> int:
    now = now or utc_now()
    return int(
        conn.execute(
            sa.insert(jobs)
            .values(
                kind=kind.value,
                state=JobState.QUEUED.value,
                user_id=user_id,
                payload=dict(payload),
                attempts=0,
                max_attempts=max_attempts,
                run_after=now,
                created_at=now,
            )
            .returning(jobs.c.id)
        ).scalar_one()
    )


def claim(
    engine: Engine,
    *,
    lease_seconds: float,
    runner: str,
    job_id: int | None = None,
    now: datetime | None = None,
) -> Job | None:
    """Take the oldest due job (or job `job_id` if it is due): queued and past its back-off, or
    running with its lease passed. None when there is none."""
    now = now or utc_now()
    due = sa.or_(
        sa.and_(jobs.c.state == JobState.QUEUED.value, jobs.c.run_after <= now),
        sa.and_(jobs.c.state == JobState.RUNNING.value, jobs.c.locked_until < now),
    )
    pick = sa.select(jobs.c.id).where(due)
    if job_id is not None:
        pick = pick.where(jobs.c.id == job_id)
    # PostgreSQL: rows another runner is claiming are skipped, not waited for. SQLite renders no
    # FOR UPDATE; its claim is serialised by the write transaction (BEGIN IMMEDIATE) instead.
    pick = pick.order_by(jobs.c.id).limit(1).with_for_update(skip_locked=True)
    with engine.begin() as conn:
        row = conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == pick.scalar_subquery())
            .values(
                state=JobState.RUNNING.value,
                attempts=jobs.c.attempts + 1,
                locked_until=now + timedelta(seconds=lease_seconds),
                locked_by=runner,
                started_at=now,
            )
            .returning(*jobs.c)
        ).first()
    return None if row is None else _job(row)


def renew(
    engine: Engine,
    held: Sequence[tuple[int, int]],
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> int:
    """Extend the leases of the jobs (id, attempt) a live worker's runners hold: the heartbeat
    that lets a lease be short whatever the time limit, so that a worker killed outright leaves
    its jobs to another within one lease. A job another runner has claimed since, or that has
    ended, is left alone. Returns how many leases were extended."""
    if not held:
        return 0
    now = now or utc_now()
    mine = sa.or_(*(sa.and_(jobs.c.id == i, jobs.c.attempts == a) for i, a in held))
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(jobs)
            .where(mine, jobs.c.state == JobState.RUNNING.value)
            .values(locked_until=now + timedelta(seconds=lease_seconds))
        )
    return int(done.rowcount)


def _held(job: Job) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.id == job.id,
        jobs.c.attempts == job.attempts,
        jobs.c.state == JobState.RUNNING.value,
    )


def store_case(conn: Connection, job: Job, case_id: int) -> None:
    """Inside the transaction that stores the job's case: bind the case to the job, or roll that
    transaction back (`LeaseLost`) if the job is no longer this attempt's."""
    done = conn.execute(sa.update(jobs).where(_held(job)).values(result={"case": case_id}))
    if done.rowcount != 1:
        raise LeaseLost(f"job {job.id} attempt {job.attempts}")


def store_progress(conn: Connection, job: Job, result: Mapping[str, Any]) -> None:
    """Inside the transaction that did a part of the job's work: record how far it has got, or
    roll that part back (`LeaseLost`) if the job is no longer this attempt's."""
    done = conn.execute(sa.update(jobs).where(_held(job)).values(result=dict(result)))
    if done.rowcount != 1:
        raise LeaseLost(f"job {job.id} attempt {job.attempts}")


def complete(engine: Engine, job: Job, *, now: datetime | None = None) -> bool:
    """Mark the job done (its result is already stored); False if the lease was lost."""
    return _finish(engine, job, JobState.DONE, {}, now)


def reject(engine: Engine, job: Job, reason: str, *, now: datetime | None = None) -> bool:
    """End the job: its input cannot be used, or it failed every attempt. `reason` is shown to
    the person, so it names the file and the fault, never the file's content."""
    return _finish(engine, job, JobState.REJECTED, {"result": {"reason": reason[:500]}}, now)


def _finish(
    engine: Engine, job: Job, state: JobState, values: dict[str, Any], now: datetime | None
) -> bool:
    """End the job in `state` if this attempt still holds it, and count its latency (queued to
    now) in the same transaction: once per job, whichever runner ends it."""
    now = now or utc_now()
    with engine.begin() as conn:
        queued = conn.execute(
            sa.update(jobs)
            .where(_held(job))
            .values(state=state.value, locked_until=None, finished_at=now, **values)
            .returning(jobs.c.created_at)
        ).scalar_one_or_none()
        if queued is None:
            return False
        created = _aware(queued)
        assert created is not None
        metrics.observe(conn, job.kind, state, (now - created).total_seconds())
    return True


def backoff(attempt: int) -> float:
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2 ** max(0, attempt - 1)))


def fail(engine: Engine, job: Job, error: str, *, now: datetime | None = None) -> JobState | None:
    """This attempt failed (an error that may pass, a time limit, a runner that died): queue the
    job again after its back-off, or reject it once it has had `max_attempts`. Returns the state
    it is left in, or None if the lease was lost."""
    now = now or utc_now()
    if job.attempts >= job.max_attempts:
        rejected = reject(engine, job, _exhausted(job, error), now=now)
        return JobState.REJECTED if rejected else None
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(jobs)
            .where(_held(job))
            .values(
                state=JobState.QUEUED.value,
                run_after=now + timedelta(seconds=backoff(job.attempts)),
                locked_until=None,
                locked_by=None,
                last_error=error[:2000],
            )
        )
    return JobState.QUEUED if done.rowcount == 1 else None


def _exhausted(job: Job, error: str) -> str:
    what = "the verification" if job.kind is JobKind.VERIFY_DOCUMENT else f"job {job.kind}"
    return f"{what} could not be completed ({job.attempts} attempts; the last: {error})"


def get(conn: Connection, job_id: int) -> Job:
    if not 0 < job_id < 2**31:  # ids are 32-bit: PostgreSQL would refuse the query itself
        raise NotFound(f"no job {job_id}")
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return _job(row)


def progress(conn: Connection, job_id: int) -> Progress:
    job = get(conn, job_id)
    position = None
    if job.state is JobState.QUEUED:
        ahead = conn.execute(
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.state == JobState.QUEUED.value, jobs.c.id < job.id)
        ).scalar_one()
        position = int(ahead) + 1
    return Progress(job, position)


def finished_before(conn: Connection, cutoff: datetime) -> list[Job]:
    rows = conn.execute(
        sa.select(jobs).where(
            jobs.c.state.in_([s.value for s in FINISHED]), jobs.c.finished_at < cutoff
        )
    )
    return [_job(row) for row in rows]


def delete(conn: Connection, job_ids: list[int]) -> None:
    if job_ids:
        conn.execute(sa.delete(jobs).where(jobs.c.id.in_(job_ids)))
