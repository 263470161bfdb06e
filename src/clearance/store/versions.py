"""Version counters per kind of state (catalog, principals, licences, lists, policy).

Every change bumps its counter in the same transaction; workers compare counters to drop cached
state.
"""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.store.tables import state_versions


class Kind(StrEnum):
    CATALOG = "catalog"
    PRINCIPALS = "principals"
    LICENCES = "licences"
    LISTS = "lists"


def bump(conn: Connection, kind: Kind) -> int:
    updated = conn.execute(
        sa.update(state_versions)
        .where(state_versions.c.kind == kind.value)
        .values(version=state_versions.c.version + 1)
        .returning(state_versions.c.version)
    ).scalar_one_or_none()
    if updated is not None:
        return int(updated)
    conn.execute(sa.insert(state_versions).values(kind=kind.value, version=1))
    return 1


def read_all(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(state_versions.c.kind, state_versions.c.version))
    return {str(k): int(v) for k, v in rows}
