"""The queue on real SQLite and PostgreSQL: claim in order, leases taken over, fences, back-off,
rejection after the last attempt, and the bound on pending work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from clearance.errors import QueueFull
from clearance.jobs import service
from clearance.jobs.models import JobKind, JobState
from clearance.principals import service as principals

PAYLOAD = {"method": "remote", "document": "0" * 32, "selfie": "1" * 32, "frames": []}


def _queue(engine: Engine, n: int, *, max_attempts: int = 3) -> list[int]:
    with engine.begin() as conn:
        user = principals.add_user(conn, "ada@example.org", name="Ada Lovelace").id
        return [
            service.enqueue(
                conn, JobKind.VERIFY_DOCUMENT, PAYLOAD, user_id=user, max_attempts=max_attempts
            )
            for _ in range(n)
        ]


def test_jobs_are_claimed_in_order_and_show_their_position(engine: Engine) -> None:
    ids = _queue(engine, 3)
    with engine.connect() as conn:
        assert [service.progress(conn, i).position for i in ids] == [1, 2, 3]
    job = service.claim(engine, lease_seconds=30, runner="a")
    assert job is not None and (job.id, job.state, job.attempts) == (ids[0], JobState.RUNNING, 1)
    with engine.connect() as conn:
        assert service.progress(conn, ids[0]).position is None  # in progress
        assert service.progress(conn, ids[1]).position == 1
    with engine.begin() as conn:
        service.store_case(conn, job, 7)
    assert service.complete(engine, job)
    with engine.connect() as conn:
        done = service.progress(conn, ids[0])
    assert done.finished and (done.job.state, done.job.case) == (JobState.DONE, 7)


def test_an_expired_lease_is_taken_over_and_fences_the_first_holder(engine: Engine) -> None:
    (job_id,) = _queue(engine, 1)
    t0 = service.utc_now()
    first = service.claim(engine, lease_seconds=30, runner="a", now=t0)
    assert first is not None
    assert (
        service.claim(engine, lease_seconds=30, runner="b", now=t0 + timedelta(seconds=10)) is None
    )
    second = service.claim(engine, lease_seconds=30, runner="b", now=t0 + timedelta(seconds=31))
    assert second is not None and (second.id, second.attempts) == (job_id, 2)
    # The first holder, back from the dead, can store nothing: its case would roll back.
    with pytest.raises(service.LeaseLost), engine.begin() as conn:
        service.store_case(conn, first, 1)
    assert not service.complete(engine, first)
    assert service.fail(engine, first, "late") is None
    assert service.complete(engine, second)
    with engine.connect() as conn:
        assert service.get(conn, job_id).state is JobState.DONE


def test_a_renewed_lease_keeps_the_job_and_renews_nothing_it_no_longer_holds(
    engine: Engine,
) -> None:
    """The heartbeat: a live worker's renewals keep its job past the first lease; a job taken
    over since, or ended, is not extended by the old holder."""
    first_id, other_id = _queue(engine, 2)
    t0 = service.utc_now()
    first = service.claim(engine, lease_seconds=8, runner="a", now=t0)
    assert first is not None and first.id == first_id
    beat = t0 + timedelta(seconds=6)
    assert service.renew(engine, [(first.id, first.attempts)], lease_seconds=8, now=beat) == 1
    # Past the first lease, within the renewed one: nobody can take it.
    taken = service.claim(engine, lease_seconds=8, runner="b", now=t0 + timedelta(seconds=10))
    assert taken is not None and taken.id == other_id  # the other job, not the renewed one
    # Once the renewals stop (the worker is gone), the lease passes and it is taken over ...
    second = service.claim(engine, lease_seconds=8, runner="b", now=t0 + timedelta(seconds=15))
    assert second is not None and (second.id, second.attempts) == (first_id, 2)
    # ... and the first holder, back, renews nothing: the job is no longer its attempt's.
    late = t0 + timedelta(seconds=16)
    assert service.renew(engine, [(first.id, first.attempts)], lease_seconds=60, now=late) == 0
    assert service.complete(engine, second)
    # An ended job is not renewed either.
    assert service.renew(engine, [(second.id, second.attempts)], lease_seconds=60) == 0
    assert service.renew(engine, [], lease_seconds=60) == 0


def test_a_failed_attempt_backs_off_and_the_last_one_rejects(engine: Engine) -> None:
    (job_id,) = _queue(engine, 1, max_attempts=2)
    t0 = service.utc_now()
    first = service.claim(engine, lease_seconds=30, runner="a", now=t0)
    assert first is not None
    assert service.fail(engine, first, "the audit log could not persist", now=t0) is JobState.QUEUED
    assert (
        service.claim(engine, lease_seconds=30, runner="a", now=t0 + timedelta(seconds=9)) is None
    )
    second = service.claim(engine, lease_seconds=30, runner="a", now=t0 + timedelta(seconds=11))
    assert second is not None and second.attempts == 2
    assert service.fail(engine, second, "boom", now=t0) is JobState.REJECTED
    with engine.connect() as conn:
        job = service.get(conn, job_id)
    assert job.state is JobState.REJECTED
    assert job.reason is not None and "2 attempts" in job.reason and "boom" in job.reason
    assert service.claim(engine, lease_seconds=30, runner="a", now=t0 + timedelta(hours=1)) is None


def test_a_full_queue_refuses_new_work_with_an_estimate(engine: Engine) -> None:
    _queue(engine, 2)
    with engine.connect() as conn:
        service.check_room(conn, 3)
        with pytest.raises(QueueFull) as info:
            service.check_room(conn, 2)
    assert info.value.status == 503
    assert info.value.retry_after >= 60 and info.value.retry_after % 60 == 0
    assert "try again in 1 minute" in info.value.detail
