"""Job data: what a claim hands a runner, and what the portal shows of a job."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"  # waiting (a retry waits for its back-off too)
    RUNNING = "running"  # claimed by a runner, under its lease
    DONE = "done"  # its result is stored (`Job.case`)
    REJECTED = "rejected"  # it cannot be done: the input, or every attempt failed (`Job.reason`)


FINISHED = frozenset({JobState.DONE, JobState.REJECTED})


class JobKind(StrEnum):
    VERIFY_DOCUMENT = "identity.verify"
    REVOKE_ORG_KEYS = "keys.revoke_org"  # an organisation's members' API keys (key_revocation.py)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: JobKind
    state: JobState
    user_id: int | None
    payload: dict[str, Any]  # references only: vault ids, the method
    attempts: int  # claims so far; the running attempt's number is the fence of its writes
    max_attempts: int
    case: int | None  # the identity case the job stored, once it has
    reason: str | None  # why it was rejected
    last_error: str | None
    result: dict[str, Any] = field(default_factory=dict)  # the whole stored result (progress)


@dataclass(frozen=True, slots=True)
class Progress:
    """What the person waiting sees: where the job is, and what came of it."""

    job: Job
    position: int | None  # 1 = next to run; None unless queued

    @property
    def finished(self) -> bool:
        return self.job.state in FINISHED
