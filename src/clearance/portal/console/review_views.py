"""The review queue in the console: the cases waiting for a reviewer, and the latest decisions.

GET /reviews      identity cases awaiting review, oldest first (case, waiting, method, images,
                  reasons), the misuse-guard cases pending, and the last decisions reviewers
                  made with their audit entries                                     reviewer

A case opens in the portal's review view (`portal/review_views.py`, as `/portal/review/ID?
from=console`), reused rather than copied: the evidence images there are decrypted only by an
audited view and linked for one session, and its decision form is the one place a case is
decided. Opened from here, the form carries `back=console`, so the decision comes back to this
page with its audit entry's index (`identity_decision`, or the guard's `usage.review.decide`).
A case decided by another reviewer meanwhile is 409 there (the decision's conditional UPDATE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from clearance.guard import review as guard_review
from clearance.identity import review
from clearance.identity.tables import identity_cases
from clearance.portal.console.context import Console, done_params
from clearance.portal.operators import REVIEWER
from clearance.portal.review_views import GuardRow, QueueRow, age

RECENT = 20


@dataclass(frozen=True, slots=True)
class Decided:
    case: int
    status: str
    by: str
    at: datetime
    index: int | None


@dataclass(frozen=True, slots=True)
class Queue:
    rows: tuple[QueueRow, ...]
    guard: tuple[GuardRow, ...]
    decided: tuple[Decided, ...]


def recent(conn: Connection) -> tuple[Decided, ...]:
    """The latest decisions made by a reviewer (not the automatic checks), newest first."""
    c = identity_cases.c
    rows = conn.execute(
        sa.select(c.id, c.status, c.decided_by, c.decided_at, c.audit_index)
        .where(c.decided_by.is_not(None), c.decided_at.is_not(None))
        .order_by(c.decided_at.desc(), c.id.desc())
        .limit(RECENT)
    )
    return tuple(
        Decided(int(r.id), str(r.status), str(r.decided_by), _aware(r.decided_at), r.audit_index)
        for r in rows
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def queue(conn: Connection) -> Queue:
    now = datetime.now(UTC)
    rows = tuple(
        QueueRow(c, age(c.created_at, now), sum(not e.erased for e in c.evidence))
        for c in review.pending(conn)
    )
    guard = tuple(
        GuardRow(c, age(c.opened_at, now)) for c in guard_review.list_cases(conn, "pending")
    )
    return Queue(rows, guard, recent(conn))


class ReviewQueueViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def page(self, request: Request) -> Response:
        await self.console.require(request, REVIEWER)
        found = await self.console.portal.db(queue)
        index, action = done_params(request)
        return self.console.page(request, "reviews.html", queue=found, done=index, action=action)
