"""Declared owners of an organisation (KYB): persons or entities by name, or another organisation,
each with a direct share. A declaration is evidence: who declared it and when are kept (and, for
an owner imported from a file, the file's name and SHA-256: principals/owner_import.py), and
each change is an audit entry made by the caller, which screens ownership again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import InvalidInput, NotFound
from clearance.principals.countries import country
from clearance.principals.service import get_org
from clearance.store.tables import org_owners, ownership_imports

KINDS = ("person", "entity", "org")
_TOTAL_SLACK = 0.001  # rounding in declared percentages


@dataclass(frozen=True, slots=True)
class Owner:
    id: int
    org: str
    kind: str  # person | entity | org
    name: str
    percent: float
    country: str | None
    declared_by: str
    declared_at: datetime
    source: dict[str, object] | None = None  # the imported file: format, file, sha256, import

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "id": self.id,
            "org": self.org,
            "kind": self.kind,
            "name": self.name,
            "percent": self.percent,
            "country": self.country,
            "declared_by": self.declared_by,
            "declared_at": self.declared_at.isoformat(),
        }


def add_owner(
    conn: Connection,
    org_name: str,
    *,
    kind: str,
    name: str,
    percent: float,
    country_code: str | None,
    actor: str,
) -> Owner:
    """Declare a direct owner. Refused: a share outside (0, 100], a total over 100 %, an owner
    organisation that does not exist or owns itself through a chain (a cycle)."""
    org = get_org(conn, org_name)
    if kind not in KINDS:
        raise InvalidInput(f"an owner is a person, an entity or an org, not {kind!r}")
    text = name.strip()
    if not text or len(text) > 400:
        raise InvalidInput("an owner's name must be 1 to 400 characters")
    if not 0 < percent <= 100:
        raise InvalidInput(f"--percent must be above 0 and at most 100, not {percent:g}")
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(org_owners.c.percent), 0.0)).where(
            org_owners.c.org_id == org.id
        )
    ).scalar_one()
    if float(total) + percent > 100 + _TOTAL_SLACK:
        raise InvalidInput(
            f"{org.name!r} would be {float(total) + percent:g} % owned: declared shares add up"
            " to at most 100 %"
        )
    owner_org_id = None
    if kind == "org":
        owner = get_org(conn, text)
        if owner.id == org.id or org.id in _owned_above(conn, owner.id):
            raise InvalidInput(f"{text!r} owning {org.name!r} would close an ownership cycle")
        owner_org_id, text = owner.id, owner.name
    cc = country(country_code) if country_code else None
    now = datetime.now(UTC)
    owner_id = conn.execute(
        sa.insert(org_owners)
        .values(
            org_id=org.id,
            kind=kind,
            name=text,
            owner_org_id=owner_org_id,
            percent=percent,
            country=cc,
            declared_by=actor,
            declared_at=now,
        )
        .returning(org_owners.c.id)
    ).scalar_one()
    return Owner(int(owner_id), org.name, kind, text, percent, cc, actor, now)


def _owned_above(conn: Connection, org_id: int) -> set[int]:
    """Every organisation that owns `org_id`, directly or through others."""
    found: set[int] = set()
    todo = [org_id]
    while todo:
        current = todo.pop()
        for (parent,) in conn.execute(
            sa.select(org_owners.c.owner_org_id).where(
                org_owners.c.org_id == current, org_owners.c.owner_org_id.is_not(None)
            )
        ):
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return found


def list_owners(conn: Connection, org_name: str) -> list[Owner]:
    org = get_org(conn, org_name)
    rows = conn.execute(
        sa.select(
            org_owners,
            ownership_imports.c.format,
            ownership_imports.c.file_name,
            ownership_imports.c.sha256,
        )
        .outerjoin(ownership_imports, ownership_imports.c.id == org_owners.c.import_id)
        .where(org_owners.c.org_id == org.id)
        .order_by(org_owners.c.id)
    ).all()
    return [_owner(org.name, r) for r in rows]


def remove_owner(conn: Connection, org_name: str, owner_id: int) -> Owner:
    org = get_org(conn, org_name)
    row = conn.execute(
        sa.select(org_owners).where(org_owners.c.id == owner_id, org_owners.c.org_id == org.id)
    ).first()
    if row is None:
        raise NotFound(f"{org.name!r} has no declared owner {owner_id}")
    conn.execute(sa.delete(org_owners).where(org_owners.c.id == owner_id))
    return _owner(org.name, row)


def _owner(org: str, r: sa.Row[tuple[object, ...]]) -> Owner:
    declared = r.declared_at
    if isinstance(declared, datetime) and declared.tzinfo is None:
        declared = declared.replace(tzinfo=UTC)
    source = None
    if getattr(r, "import_id", None) is not None and "sha256" in r._fields:
        source = {"import": r.import_id, "format": r.format, "file": r.file_name,
                  "sha256": r.sha256}  # fmt: skip
    return Owner(r.id, org, r.kind, r.name, r.percent, r.country, r.declared_by, declared, source)
