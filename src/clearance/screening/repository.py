"""Stored lists: versions and their entries, kept whole so a matcher can be rebuilt anywhere."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import NotFound
from clearance.screening.models import (
    BirthDate,
    EntityType,
    Entry,
    ListFormat,
    ListHolding,
    LoadReport,
)
from clearance.screening.tables import list_entries, list_ownership, list_versions

_INSERT_BATCH = 2_000


@dataclass(frozen=True, slots=True)
class ListVersion:
    id: int
    name: str
    format: ListFormat
    content_hash: str
    entry_count: int
    skipped: Mapping[str, int]
    loaded_at: datetime


def content_hash(files: Sequence[bytes]) -> str:
    """SHA-256 over each file's length and bytes, so two file sets never collide by splitting."""
    digest = hashlib.sha256()
    for data in files:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "entity_type": entry.entity_type.value if entry.entity_type else None,
        "names": list(entry.names),
        "weak_names": list(entry.weak_names),
        "birth_dates": [[b.year_from, b.year_to, b.month, b.day] for b in entry.birth_dates],
        "nationalities": list(entry.nationalities),
        "programs": list(entry.programs),
        "source": entry.source,
        "license_requirement": entry.license_requirement,
        "license_policy": entry.license_policy,
    }


def entry_from_json(data: Mapping[str, Any]) -> Entry:
    kind = data["entity_type"]
    return Entry(
        entry_id=str(data["entry_id"]),
        entity_type=EntityType(kind) if kind else None,
        names=tuple(data["names"]),
        weak_names=tuple(data["weak_names"]),
        birth_dates=tuple(BirthDate(*b) for b in data["birth_dates"]),
        nationalities=tuple(data["nationalities"]),
        programs=tuple(data["programs"]),
        source=str(data["source"]),
        license_requirement=str(data["license_requirement"]),
        license_policy=str(data["license_policy"]),
    )


def entry_hash(entry: Entry) -> str:
    """Changes whenever anything the list says about the entry changes."""
    return hashlib.sha256(orjson.dumps(entry_json(entry), option=orjson.OPT_SORT_KEYS)).hexdigest()


def latest(conn: Connection, name: str) -> ListVersion | None:
    row = conn.execute(
        sa.select(list_versions)
        .where(list_versions.c.name == name)
        .order_by(list_versions.c.id.desc())
        .limit(1)
    ).first()
    return _version(row) if row is not None else None


def save(
    conn: Connection, name: str, fmt: ListFormat, digest: str, report: LoadReport
) -> ListVersion:
    """Store a new version of list `name` with all its entries."""
    now = datetime.now(UTC)
    version_id = conn.execute(
        sa.insert(list_versions)
        .values(
            name=name,
            format=fmt.value,
            content_hash=digest,
            entry_count=len(report.entries),
            skipped=dict(report.skipped),
            loaded_at=now,
        )
        .returning(list_versions.c.id)
    ).scalar_one()
    # Lists repeat an id now and then (a re-listed party); the last record for it wins.
    unique = {e.entry_id: e for e in report.entries}
    rows = [
        {"version_id": version_id, "entry_id": e.entry_id, "entry_hash": entry_hash(e)}
        | {"data": entry_json(e)}
        for e in unique.values()
    ]
    for start in range(0, len(rows), _INSERT_BATCH):
        conn.execute(sa.insert(list_entries), rows[start : start + _INSERT_BATCH])
    held = [
        {"version_id": version_id, **_holding_row(h)}
        for h in {h.record_id: h for h in report.ownership}.values()
    ]
    for start in range(0, len(held), _INSERT_BATCH):
        conn.execute(sa.insert(list_ownership), held[start : start + _INSERT_BATCH])
    return ListVersion(
        int(version_id), name, fmt, digest, len(report.entries), dict(report.skipped), now
    )


def current(conn: Connection) -> list[ListVersion]:
    """The newest version of every list: what screening runs against."""
    newest = (
        sa.select(sa.func.max(list_versions.c.id)).group_by(list_versions.c.name).scalar_subquery()
    )
    rows = conn.execute(
        sa.select(list_versions)
        .where(list_versions.c.id.in_(newest))
        .order_by(list_versions.c.name)
    )
    return [_version(r) for r in rows]


def history(conn: Connection) -> list[ListVersion]:
    rows = conn.execute(sa.select(list_versions).order_by(list_versions.c.name, list_versions.c.id))
    return [_version(r) for r in rows]


def entries(conn: Connection, version_id: int) -> list[Entry]:
    rows = conn.execute(
        sa.select(list_entries.c.data)
        .where(list_entries.c.version_id == version_id)
        .order_by(list_entries.c.entry_id)
    )
    return [entry_from_json(r.data) for r in rows]


def entry(conn: Connection, version_id: int, entry_id: str) -> tuple[Entry, str] | None:
    """One entry of a version, with its hash."""
    row = conn.execute(
        sa.select(list_entries.c.data, list_entries.c.entry_hash).where(
            list_entries.c.version_id == version_id, list_entries.c.entry_id == entry_id
        )
    ).first()
    return (entry_from_json(row.data), str(row.entry_hash)) if row is not None else None


def _holding_row(h: ListHolding) -> dict[str, object]:
    return {
        "record_id": h.record_id,
        "owner_id": h.owner_id,
        "owner_kind": h.owner_kind,
        "owner_name": h.owner_name,
        "asset_id": h.asset_id,
        "asset_name": h.asset_name,
        "asset_country": h.asset_country,
        "percent": h.percent,
    }


def holdings(conn: Connection) -> list[tuple[str, ListHolding]]:
    """The ownership carried by the newest version of every list, as (list name, holding)."""
    rows = conn.execute(
        sa.select(list_versions.c.name, list_ownership)
        .join(list_versions, list_versions.c.id == list_ownership.c.version_id)
        .where(list_versions.c.id.in_([v.id for v in current(conn)]))
    )
    return [(str(r.name), _holding(r)) for r in rows]


def _holding(r: sa.Row[Any]) -> ListHolding:
    return ListHolding(
        record_id=r.record_id,
        owner_id=r.owner_id,
        owner_kind=r.owner_kind,
        owner_name=r.owner_name,
        asset_id=r.asset_id,
        asset_name=r.asset_name,
        asset_country=r.asset_country,
        percent=float(r.percent),
    )


def entry_hashes(conn: Connection, version_id: int) -> dict[str, str]:
    rows = conn.execute(
        sa.select(list_entries.c.entry_id, list_entries.c.entry_hash).where(
            list_entries.c.version_id == version_id
        )
    )
    return {str(r.entry_id): str(r.entry_hash) for r in rows}


def version_by_name(conn: Connection, name: str) -> ListVersion:
    found = latest(conn, name)
    if found is None:
        raise NotFound(f"no list named {name!r} is loaded")
    return found


def _version(row: sa.Row[Any]) -> ListVersion:
    return ListVersion(
        id=int(row.id),
        name=str(row.name),
        format=ListFormat(row.format),
        content_hash=str(row.content_hash),
        entry_count=int(row.entry_count),
        skipped=dict(row.skipped),
        loaded_at=row.loaded_at,
    )
