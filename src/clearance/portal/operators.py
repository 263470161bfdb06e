"""Operator roles: which portal accounts may use the operator pages (`portal_operators`, 0007).

One row per operator account: its roles (a JSON list), who last granted one and when. Roles:

    viewer     the operator console (/console) read-only: dashboard, catalog, people
    operator   viewer, and the console's changes: the kill switch, restores, reclassification,
               suspending people
    admin      operator, and who holds which role (the console's operators page)
    reviewer   the identity and misuse-guard review queues (review_views.py); apart from the
               others (deciding cases is its own duty, not implied by admin)

Roles are checked on every request (no cache), so a revocation takes effect at the next click.
The last admin cannot be revoked: someone must always be able to grant roles in the console
(the CLI, which needs the host, can always grant one again).

Granting and revoking are `admin_action` audit entries (`operator.grant`, `operator.revoke`)
naming the account by its pseudonymous subject id, appended once the change has committed
(like every operator action: the entry records what is true).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.entries import admin_action
from clearance.audit.sink import AuditSink
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.portal.tables import portal_operators
from clearance.principals.models import User
from clearance.principals.service import get_user_by_id
from clearance.store.tables import users

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
REVIEWER = "reviewer"
ROLES = frozenset({VIEWER, OPERATOR, ADMIN, REVIEWER})
# What holding a role grants: admin implies operator implies viewer; reviewer stands alone.
IMPLIES = {
    ADMIN: frozenset({ADMIN, OPERATOR, VIEWER}),
    OPERATOR: frozenset({OPERATOR, VIEWER}),
    VIEWER: frozenset({VIEWER}),
    REVIEWER: frozenset({REVIEWER}),
}


@dataclass(frozen=True, slots=True)
class Operator:
    user_id: int
    subject: str
    email: str  # for the operator's own listing (CLI); never written to the audit log
    roles: tuple[str, ...]
    granted_by: str
    granted_at: datetime


def _role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown operator role {role!r} (known: {', '.join(sorted(ROLES))})")
    return role


def roles_of(conn: Connection, user_id: int) -> tuple[str, ...]:
    value = conn.execute(
        sa.select(portal_operators.c.roles).where(portal_operators.c.user_id == user_id)
    ).scalar_one_or_none()
    return tuple(str(r) for r in value) if value else ()


def effective(roles: tuple[str, ...]) -> frozenset[str]:
    """Every role the held ones grant (unknown ones, from a newer release, grant nothing)."""
    return frozenset().union(*(IMPLIES.get(r, frozenset()) for r in roles))


def has_role(conn: Connection, user_id: int, role: str) -> bool:
    return _role(role) in effective(roles_of(conn, user_id))


def list_operators(conn: Connection) -> list[Operator]:
    rows = conn.execute(
        sa.select(portal_operators, users.c.subject_id, users.c.email)
        .join(users, users.c.id == portal_operators.c.user_id)
        .order_by(users.c.email)
    )
    return [
        Operator(r.user_id, r.subject_id, r.email, tuple(r.roles), r.granted_by, r.granted_at)
        for r in rows
    ]


def _admins(conn: Connection) -> set[int]:
    """The accounts holding admin, their rows locked until the transaction ends (PostgreSQL; on
    SQLite the write transaction already excludes other writers): two admins revoking each other
    at once cannot both succeed."""
    rows = conn.execute(
        sa.select(portal_operators.c.user_id, portal_operators.c.roles).with_for_update()
    )
    return {int(r.user_id) for r in rows if ADMIN in r.roles}


def _entry(
    actor: str, action: str, user: User, role: str, roles: tuple[str, ...], reason: str | None
) -> bytes:
    details: dict[str, object] = {"role": role, "roles": list(roles)}
    if reason is not None:  # the console asks for one; the CLI names its OS account instead
        details["reason"] = reason
    return admin_action(
        actor=actor, action=action, target=user.subject_id, details=details, subject=user.subject_id
    )


def grant(
    engine: Engine,
    audit: AuditSink,
    user_id: int,
    role: str,
    *,
    actor: str,
    reason: str | None = None,
) -> int | None:
    """Give the account `role`: the audit entry's index, or None (and no entry) if it already
    had it."""
    _role(role)
    with engine.begin() as conn:
        user = get_user_by_id(conn, user_id)
        row = conn.execute(
            sa.select(portal_operators.c.roles).where(portal_operators.c.user_id == user_id)
        ).first()
        held = tuple(row.roles) if row is not None else ()
        if role in held:
            return None
        roles = tuple(sorted({*held, role}))
        values = {"roles": list(roles), "granted_by": actor, "granted_at": datetime.now(UTC)}
        if row is None:
            conn.execute(sa.insert(portal_operators).values(user_id=user_id, **values))
        else:
            conn.execute(
                sa.update(portal_operators)
                .where(portal_operators.c.user_id == user_id)
                .values(**values)
            )
    return audit.append(_entry(actor, "operator.grant", user, role, roles, reason))


def revoke(
    engine: Engine,
    audit: AuditSink,
    user_id: int,
    role: str,
    *,
    actor: str,
    reason: str | None = None,
) -> int:
    """Take `role` away; an account left with no role is no operator at all (row deleted).
    Returns the audit entry's index."""
    _role(role)
    with engine.begin() as conn:
        user = get_user_by_id(conn, user_id)
        held = roles_of(conn, user_id)
        if role not in held:
            raise NotFound(f"the account does not hold the {role} role")
        if role == ADMIN and _admins(conn) == {user_id}:
            raise Conflict("this is the last admin: grant admin to another account first")
        roles = tuple(r for r in held if r != role)
        where = portal_operators.c.user_id == user_id
        if roles:
            conn.execute(sa.update(portal_operators).where(where).values(roles=list(roles)))
        else:
            conn.execute(sa.delete(portal_operators).where(where))
    return audit.append(_entry(actor, "operator.revoke", user, role, roles, reason))
