"""Org admins (`org_admins`, 0018): the members of a business customer who may declare its
know-your-business details and its owners in the portal (issue 18, item 1).

An operator grants the role (`clearance orgs admins add ORG EMAIL`); only a member of the
organisation can hold it, and it lapses with the membership (checked on every request, never
cached). What an admin declares is recorded with who and when, as an operator's declarations
are (principals/owners.py keeps `declared_by`), and screens the organisation again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.principals.service import get_org, get_user
from clearance.store.tables import org_admins, orgs, users


@dataclass(frozen=True, slots=True)
class OrgAdmin:
    org: str
    subject_id: str
    email: str
    granted_by: str
    granted_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "org": self.org,
            "subject_id": self.subject_id,
            "email": self.email,
            "granted_by": self.granted_by,
            "granted_at": self.granted_at.isoformat(),
        }


def grant(conn: Connection, org_name: str, email: str, *, actor: str) -> OrgAdmin:
    org = get_org(conn, org_name)
    user = get_user(conn, email)
    if user.org_id != org.id:
        raise InvalidInput(f"{user.email} is not a member of {org.name}: add them to it first")
    exists = conn.execute(
        sa.select(org_admins.c.user_id).where(
            org_admins.c.org_id == org.id, org_admins.c.user_id == user.id
        )
    ).first()
    if exists is not None:
        raise Conflict(f"{user.email} is already an admin of {org.name}")
    conn.execute(
        sa.insert(org_admins).values(
            org_id=org.id, user_id=user.id, granted_by=actor, granted_at=datetime.now(UTC)
        )
    )
    return _one(conn, org.id, user.id)


def revoke(conn: Connection, org_name: str, email: str) -> OrgAdmin:
    org = get_org(conn, org_name)
    user = get_user(conn, email)
    try:
        admin = _one(conn, org.id, user.id)
    except NotFound:
        raise NotFound(f"{user.email} is not an admin of {org.name}") from None
    conn.execute(
        sa.delete(org_admins).where(org_admins.c.org_id == org.id, org_admins.c.user_id == user.id)
    )
    return admin


def list_admins(conn: Connection, org_name: str) -> list[OrgAdmin]:
    org = get_org(conn, org_name)
    rows = conn.execute(_query().where(org_admins.c.org_id == org.id).order_by(users.c.email))
    return [_admin(r) for r in rows]


def administered_org(conn: Connection, user_id: int) -> str | None:
    """The organisation this person administers: theirs, while they are still its member."""
    row = conn.execute(
        sa.select(orgs.c.name)
        .select_from(org_admins.join(users, users.c.id == org_admins.c.user_id))
        .join(orgs, orgs.c.id == org_admins.c.org_id)
        .where(org_admins.c.user_id == user_id, users.c.org_id == org_admins.c.org_id)
    ).first()
    return None if row is None else str(row.name)


def _query() -> sa.Select[tuple[object, ...]]:
    return sa.select(
        orgs.c.name.label("org"),
        users.c.subject_id,
        users.c.email,
        org_admins.c.granted_by,
        org_admins.c.granted_at,
    ).select_from(
        org_admins.join(users, users.c.id == org_admins.c.user_id).join(
            orgs, orgs.c.id == org_admins.c.org_id
        )
    )


def _one(conn: Connection, org_id: int, user_id: int) -> OrgAdmin:
    row = conn.execute(
        _query().where(org_admins.c.org_id == org_id, org_admins.c.user_id == user_id)
    ).first()
    if row is None:
        raise NotFound("no such org admin")
    return _admin(row)


def _admin(r: sa.Row[tuple[object, ...]]) -> OrgAdmin:
    granted_at = r.granted_at
    assert isinstance(granted_at, datetime)
    if granted_at.tzinfo is None:  # SQLite returns naive datetimes
        granted_at = granted_at.replace(tzinfo=UTC)
    return OrgAdmin(str(r.org), str(r.subject_id), str(r.email), str(r.granted_by), granted_at)
