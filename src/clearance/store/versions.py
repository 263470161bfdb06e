"""Version counters per kind of state (catalog, principals, licences, lists, limits).

Every change bumps its counter in the same transaction; workers compare counters to drop cached
state. On PostgreSQL the bump also announces itself on CHANNEL (`pg_notify`, queued in the
transaction and delivered only at its commit, so no listener hears of a change it cannot yet
read); workers that LISTEN re-read the counters at once instead of at their next poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.store.tables import state_versions

CHANNEL = "clearance_state"


class Kind(StrEnum):
    CATALOG = "catalog"
    PRINCIPALS = "principals"
    LICENCES = "licences"
    LISTS = "lists"
    LIMITS = "limits"


@dataclass(frozen=True, slots=True)
class Notice:
    """One announced bump: its kind, the version it made, and when (the writer's clock, POSIX
    seconds; what a listener measures its invalidation lag from)."""

    kind: str
    version: int
    at: float

    @property
    def payload(self) -> str:
        return f"{self.kind} {self.version} {self.at:.6f}"

    @classmethod
    def parse(cls, payload: str) -> Notice | None:
        """The notice in a payload, or None for one this version does not read."""
        parts = payload.split(" ")
        if len(parts) != 3:
            return None
        kind, version, at = parts
        try:
            return cls(kind, int(version), float(at))
        except ValueError:
            return None


def bump(conn: Connection, kind: Kind) -> int:
    updated = conn.execute(
        sa.update(state_versions)
        .where(state_versions.c.kind == kind.value)
        .values(version=state_versions.c.version + 1)
        .returning(state_versions.c.version)
    ).scalar_one_or_none()
    if updated is None:
        conn.execute(sa.insert(state_versions).values(kind=kind.value, version=1))
    version = 1 if updated is None else int(updated)
    if conn.dialect.name == "postgresql":
        notice = Notice(kind.value, version, time.time())
        conn.execute(sa.select(sa.func.pg_notify(CHANNEL, notice.payload)))
    return version


def read_all(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(state_versions.c.kind, state_versions.c.version))
    return {str(k): int(v) for k, v in rows}
