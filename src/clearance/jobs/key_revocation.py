"""Revoking an organisation's API keys as a job: thousands of keys, off the request, with progress.

    enqueue(conn, org, reason=R, actor=A)   the console's "revoke every key of this org"
    KeyRevocations(...).run(job)             a runner's part

The runner revokes the members' keys not yet revoked `CHUNK` at a time, each chunk in one
transaction that also records the job's progress under its fence (`service.store_progress`: a
runner whose lease was taken over commits nothing), until none is left, so keys made while it
runs are revoked too. A retried job carries on where the last attempt stopped.

The audit record, and why it is one entry per key: the keys table says when a key was revoked,
but it is a row anyone with the database can change; the log is what an auditor can prove. To
answer "could key K still be used at time T, and on whose word was it stopped" from the log
alone, each key needs its own entry: `key.revoke` on the key, as `clearance keys revoke` writes
it, naming the owner by pseudonym, the reason and the job. One entry naming a count could not
be checked against anything but the database. Around them: the request (`keys.revoke_org`, the
index the operator is shown, appended by the console once the job is queued) and the end
(`keys.revoke_org.done` with the count). A chunk's entries are appended after its transaction
commits (an entry records what is true) and the keys they name are kept in the job's progress
until then: an attempt that dies between the two has them appended by the next, so an entry may
be written twice (the same key, the same job) but never lost.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.entries import admin_action
from clearance.audit.service import AuditLog
from clearance.errors import Conflict
from clearance.jobs import service
from clearance.jobs.models import Job, JobKind, JobState
from clearance.jobs.tables import jobs
from clearance.principals import directory
from clearance.principals.models import Org
from clearance.store.tables import orgs

CHUNK = 500
MAX_ATTEMPTS = 5


def running_for(conn: Connection, org_id: int) -> int | None:
    """The queued or running revocation of this organisation's keys, if there is one."""
    rows = conn.execute(
        sa.select(jobs.c.id, jobs.c.payload).where(
            jobs.c.kind == JobKind.REVOKE_ORG_KEYS.value,
            jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
        )
    )
    return next((int(r.id) for r in rows if r.payload.get("org_id") == org_id), None)


def enqueue(conn: Connection, org: Org, *, reason: str, actor: str) -> tuple[int, int]:
    """Queue the revocation of every key of the organisation's members: (job id, keys to revoke
    now). Conflict while one is already queued or running for it (two operators, one click)."""
    # The organisation's row locked (PostgreSQL; SQLite's write transaction excludes others):
    # two operators queueing at once cannot both pass the check.
    conn.execute(sa.select(orgs.c.id).where(orgs.c.id == org.id).with_for_update())
    if (other := running_for(conn, org.id)) is not None:
        raise Conflict(f"the keys of {org.name} are being revoked already (job {other})")
    total = directory.unrevoked_key_count(conn, org.id)
    payload = {"org_id": org.id, "org": org.name, "reason": reason, "actor": actor}
    job = service.enqueue(
        conn, JobKind.REVOKE_ORG_KEYS, payload, user_id=None, max_attempts=MAX_ATTEMPTS
    )
    progress = {"total": total, "revoked": 0, "unaudited": []}
    conn.execute(sa.update(jobs).where(jobs.c.id == job).values(result=progress))
    return job, total


class KeyRevocations:
    """A runner's handler of `keys.revoke_org` jobs."""

    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    def warm(self) -> None:
        """Nothing to load."""

    def discard(self, job: Job) -> None:
        """Nothing staged."""

    def run(self, job: Job) -> None:
        p = job.payload
        progress: dict[str, Any] = dict(job.result)
        self._record(job, [tuple(k) for k in progress.get("unaudited", [])])
        revoked = int(progress.get("revoked", 0))
        while True:
            with self._engine.begin() as conn:
                found = directory.unrevoked_keys(conn, int(p["org_id"]), limit=CHUNK)
                done = directory.revoke_keys(conn, [key for key, _ in found])
                batch = [(key, owner) for key, owner in found if key in done]
                revoked += len(batch)
                progress = {
                    "total": max(int(progress.get("total", 0)), revoked),
                    "revoked": revoked,
                    "unaudited": [list(k) for k in batch],
                }
                service.store_progress(conn, job, progress)
            self._record(job, batch)
            if not found:
                break
        index = self._audit.append(
            admin_action(
                actor=str(p["actor"]),
                action="keys.revoke_org.done",
                target=f"org:{p['org_id']}",
                details={"job": job.id, "org": p["org"], "revoked": revoked},
            )
        )
        with self._engine.begin() as conn:
            service.store_progress(conn, job, {**progress, "unaudited": [], "closed": index})
        if not service.complete(self._engine, job):
            raise service.LeaseLost(f"job {job.id} attempt {job.attempts}")

    def _record(self, job: Job, keys: list[tuple[str, str]] | list[tuple[Any, ...]]) -> None:
        p = job.payload
        if not keys:
            return
        self._audit.append_many(
            [
                admin_action(
                    actor=str(p["actor"]),
                    action="key.revoke",
                    target=str(key),
                    details={"reason": p["reason"], "job": job.id, "org": p["org"]},
                    subject=str(owner),
                )
                for key, owner in keys
            ]
        )
