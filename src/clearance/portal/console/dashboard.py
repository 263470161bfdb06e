"""The dashboard's figures: today's decisions from the audit log, the queues from the tables.

Decisions today (by effect, by the rule that decided, by the model asked for) and the 451s by
reason are counted from the audit log itself, not from /metrics: the log is the one record every
worker and node writes to and it survives restarts, where the Prometheus counters are one
worker's since it started. Reading a whole day per page view would cost a JSON parse per
decision, so `DayCounter` keeps a running tally per worker: the day's first entry is found by a
binary search over the indices on the entries' time (appended in commit order, so the times
rise to within a group commit), and each view folds only the entries appended since the last
one, at most `MAX_FOLD` of them (a first view on a busy day says how far it has counted).

The queues (identity cases by state, the review queue, screening hits awaiting a decision) are
a few indexed COUNT queries.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.archive import pruned_below
from clearance.audit.compat import typed_view
from clearance.audit.reader import head_size
from clearance.audit.tables import audit_entries
from clearance.guard.tables import guard_cases
from clearance.identity.tables import identity_cases
from clearance.store import reading
from clearance.store.tables import models, orgs, users

CHUNK = 5_000
MAX_FOLD = 200_000  # entries folded per view: a bounded wait on the first view of a busy day
_ACCESS = b'"type":"access_decision"'

Ranked = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Decisions:
    """One UTC day's decisions as counted so far."""

    day: str  # YYYY-MM-DD
    total: int
    effects: Ranked
    rules: Ranked
    models: Ranked
    refusals: Ranked  # 451s by reason (the rule that refused)
    counted_to: int  # the first index not counted yet
    head: int  # entries committed when counted

    @property
    def complete(self) -> bool:
        return self.counted_to >= self.head


class Tally:
    """The running counts of one day (mutable; `DayCounter` holds it under its lock)."""

    def __init__(self, day: str, start: int) -> None:
        self.day = day
        self.since = f"{day}T00:00:00.000000Z"
        self.next = start
        self.total = 0
        self.effects: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()
        self.models: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()

    def add(self, record: dict[str, Any]) -> None:
        """Count the record if it is one of the day's decisions: an access entry that is not an
        outcome following one (decision_index) and not a refusal before any decision."""
        record = typed_view(record)
        if record.get("type") != "access_decision" or record.get("decision_index") is not None:
            return
        if record.get("outcome") not in ("forwarding", "denied"):
            return
        moment = str(record.get("time", ""))
        if not moment.startswith(self.day):
            return
        rules = record.get("rules") or ()
        self.total += 1
        self.effects[str(record.get("effect"))] += 1
        self.rules[str(rules[0]) if rules else "(none)"] += 1
        self.models[str(record.get("model_requested"))] += 1
        if record.get("status") == 451:
            self.refusals[str(record.get("reason"))] += 1

    def snapshot(self, head: int) -> Decisions:
        def ranked(c: Counter[str]) -> Ranked:
            return tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

        return Decisions(
            self.day,
            self.total,
            ranked(self.effects),
            ranked(self.rules),
            ranked(self.models),
            ranked(self.refusals),
            self.next,
            head,
        )


def _time_at(conn: Connection, index: int) -> str:
    raw = conn.execute(
        sa.select(audit_entries.c.entry).where(audit_entries.c.idx == index)
    ).scalar_one()
    return str(orjson.loads(raw).get("time", ""))


def first_index_since(conn: Connection, since: str, head: int) -> int:
    """The first stored index whose entry is at or after `since` (RFC 3339, UTC); `head` if
    none. Entries below the pruned bound live in the archive and are years old: not searched."""
    lo, hi = pruned_below(conn), head
    while lo < hi:
        mid = (lo + hi) // 2
        if _time_at(conn, mid) < since:
            lo = mid + 1
        else:
            hi = mid
    return lo


class DayCounter:
    """Today's decisions for one worker, folded incrementally (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._tally: Tally | None = None

    def count(self, now: datetime) -> Decisions:
        """Blocking: call it from a worker thread."""
        day = now.date().isoformat()
        with self._lock, reading(self._engine) as conn:
            head = head_size(conn)
            tally = self._tally
            if tally is None or tally.day != day:
                tally = Tally(day, 0)
                tally.next = first_index_since(conn, tally.since, head)
                self._tally = tally
            stop = min(head, tally.next + MAX_FOLD)
            for start in range(tally.next, stop, CHUNK):
                rows = conn.execute(
                    sa.select(audit_entries.c.entry)
                    .where(
                        audit_entries.c.idx >= start, audit_entries.c.idx < min(stop, start + CHUNK)
                    )
                    .order_by(audit_entries.c.idx)
                )
                for (raw,) in rows:
                    if _ACCESS in raw:  # skip parsing the other kinds of entry
                        tally.add(orjson.loads(raw))
            tally.next = stop
            return tally.snapshot(head)


@dataclass(frozen=True, slots=True)
class Queues:
    cases: Ranked  # identity cases (enrolments) by state
    review_identity: int  # identity cases waiting for a reviewer
    review_guard: int  # misuse-guard cases waiting for a reviewer
    hits_people: int  # people with a potential list match awaiting a decision
    hits_orgs: int  # organisations with a potential match, by name or by ownership
    suspended_models: int
    suspended_people: int


def queues(conn: Connection) -> Queues:
    cases: dict[str, int] = {
        str(status): int(n)
        for status, n in conn.execute(
            sa.select(identity_cases.c.status, sa.func.count()).group_by(identity_cases.c.status)
        )
    }

    def count(table: sa.Table, where: sa.ColumnElement[bool]) -> int:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        )

    return Queues(
        cases=tuple(sorted(cases.items())),
        review_identity=cases.get("review", 0),
        review_guard=count(guard_cases, guard_cases.c.status == "pending"),
        hits_people=count(users, users.c.screening_status == "potential_match"),
        hits_orgs=count(
            orgs,
            sa.or_(
                orgs.c.screening_status == "potential_match", orgs.c.ownership_status == "review"
            ),
        ),
        suspended_models=count(models, models.c.suspended.is_(True)),
        suspended_people=count(users, users.c.suspended_at.is_not(None)),
    )
