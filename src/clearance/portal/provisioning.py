"""Operator roles as the identity provider says: from groups (OpenID Connect sign-in, SCIM), and
deprovisioning.

`[sso] group_roles` maps a group's name to a console role. The roles the map names are the
identity provider's to give and take: at each SSO sign-in and each SCIM change an account holds
exactly those of them its groups give. Roles the map never names (say `reviewer`, granted by
hand) are left alone.

Deprovisioning (SCIM `active: false`, or the user deleted) ends everything at once, in one
transaction: every operator role, every portal and console session (the next request is
signed out), and every admin token the operator made in the console (`created_by` is
`portal:<subject>`). Roles are checked and sessions looked up on every request (operators.py,
sessions.py), so nothing cached outlives the commit.

The last-admin rule of operators.py guards the console against an operator's mistake; it does not
bind the identity provider, which decides who still works here (a departed admin must lose access
even if no one else holds admin; `clearance operators grant` on the host names another).

Every change is an audit entry in the shape operators.py writes (`operator.grant`,
`operator.revoke`, naming the account by its pseudonym), plus `operator.sessions.end` and
`admin_token.revoke`; the functions return them for the caller to append once the transaction
has committed (the entry records what is true).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.audit.entries import admin_action
from clearance.config import SsoSettings
from clearance.portal.operators import ROLES
from clearance.portal.tables import portal_operators, portal_sessions
from clearance.principals.service import get_user_by_id
from clearance.store.tables import admin_tokens


@dataclass(frozen=True, slots=True)
class GroupRoles:
    """`[sso] group_roles` read once: which roles each group gives."""

    by_group: dict[str, frozenset[str]]

    @classmethod
    def from_settings(cls, settings: SsoSettings) -> GroupRoles:
        found: dict[str, set[str]] = {}
        for entry in settings.group_roles:
            group, _, role = entry.rpartition("=")
            if role.strip() in ROLES:  # the settings' rule has refused anything else
                found.setdefault(group.strip(), set()).add(role.strip())
        return cls({g: frozenset(r) for g, r in found.items()})

    @property
    def managed(self) -> frozenset[str]:
        """The roles the identity provider gives and takes."""
        return frozenset().union(*self.by_group.values())

    def roles(self, groups: Iterable[str]) -> frozenset[str]:
        """The roles `groups` give (group names compared exactly, as the provider sends them)."""
        return frozenset().union(*(self.by_group.get(g, frozenset()) for g in groups))


def apply_roles(
    conn: Connection,
    user_id: int,
    wanted: frozenset[str],
    managed: frozenset[str],
    *,
    actor: str,
    source: str,
) -> list[bytes]:
    """Make the account's roles among `managed` be `wanted`; the entries of each change."""
    user = get_user_by_id(conn, user_id)
    row = conn.execute(
        sa.select(portal_operators.c.roles)
        .where(portal_operators.c.user_id == user_id)
        .with_for_update()
    ).first()
    held = tuple(str(r) for r in row.roles) if row is not None else ()
    target = (set(held) - managed) | (wanted & managed)
    entries: list[bytes] = []
    current = set(held)
    for role in sorted(wanted & managed - current):
        current.add(role)
        entries.append(_entry(actor, "operator.grant", user.subject_id, role, current, source))
    for role in sorted(current - target):
        current.discard(role)
        entries.append(_entry(actor, "operator.revoke", user.subject_id, role, current, source))
    if not entries:
        return []
    _store(conn, user_id, current, row is not None, actor)
    return entries


def deprovision(conn: Connection, user_id: int, *, actor: str, source: str) -> list[bytes]:
    """Every role, session and console-made admin token of the account, ended; the entries."""
    user = get_user_by_id(conn, user_id)
    entries: list[bytes] = []
    row = conn.execute(
        sa.select(portal_operators.c.roles)
        .where(portal_operators.c.user_id == user_id)
        .with_for_update()
    ).first()
    current = {str(r) for r in row.roles} if row is not None else set()
    for role in sorted(current):
        current.discard(role)
        entries.append(_entry(actor, "operator.revoke", user.subject_id, role, current, source))
    if row is not None:
        conn.execute(sa.delete(portal_operators).where(portal_operators.c.user_id == user_id))
    ended = conn.execute(sa.delete(portal_sessions).where(portal_sessions.c.user_id == user_id))
    if ended.rowcount:
        entries.append(
            admin_action(
                actor=actor,
                action="operator.sessions.end",
                target=user.subject_id,
                details={"sessions": int(ended.rowcount), "source": source},
                subject=user.subject_id,
            )
        )
    now = datetime.now(UTC)
    owned = (
        admin_tokens.c.created_by == f"portal:{user.subject_id}",
        admin_tokens.c.revoked_at.is_(None),
    )
    for token_id in conn.execute(sa.select(admin_tokens.c.id).where(*owned)).scalars():
        conn.execute(
            sa.update(admin_tokens).where(admin_tokens.c.id == token_id).values(revoked_at=now)
        )
        entries.append(
            admin_action(
                actor=actor,
                action="admin_token.revoke",
                target=str(token_id),
                details={"owner": user.subject_id, "source": source},
                subject=user.subject_id,
            )
        )
    return entries


def _store(conn: Connection, user_id: int, roles: set[str], exists: bool, actor: str) -> None:
    where = portal_operators.c.user_id == user_id
    if not roles:
        conn.execute(sa.delete(portal_operators).where(where))
        return
    values = {"roles": sorted(roles), "granted_by": actor, "granted_at": datetime.now(UTC)}
    if exists:
        conn.execute(sa.update(portal_operators).where(where).values(**values))
    else:
        conn.execute(sa.insert(portal_operators).values(user_id=user_id, **values))


def _entry(actor: str, action: str, subject: str, role: str, roles: set[str], source: str) -> bytes:
    return admin_action(
        actor=actor,
        action=action,
        target=subject,
        details={"role": role, "roles": sorted(roles), "source": source},
        subject=subject,
    )
