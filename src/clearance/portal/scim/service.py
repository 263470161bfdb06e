"""SCIM 2.0 users and groups in the database, and what they do to operators.

Each function runs in the caller's transaction and returns the resource and the audit entries to
append once it has committed. Resources are scim2-models objects (RFC 7643 §4.1 User, §4.2
Group); the database keeps what Clearance acts on in columns and the rest as the provider sent it.

- A User is an operator account: its account is found by address (the primary email, else
  `userName`) or made (screened in the same transaction, like any account). The account's address
  is not changed afterwards: a SCIM rename changes `userName` only.
- `active: false` deprovisions the account at once (provisioning.deprovision: roles, sessions,
  console-made admin tokens); `active: true` again gives back the roles its groups give.
- DELETE deprovisions too, then forgets the SCIM user; the account itself stays, with no role
  (its history is an export record: 15 CFR 762.6).
- A group's `displayName` is what `[sso] group_roles` maps: each change of a group's name or
  members sets its members' roles again (provisioning.apply_roles).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from scim2_models import Email, Group, GroupMember, GroupMembership, Meta, User
from sqlalchemy.engine import Connection

from clearance.audit.entries import admin_action
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.portal.provisioning import GroupRoles, apply_roles, deprovision
from clearance.portal.scim.tables import scim_groups, scim_members, scim_users
from clearance.principals.models import User as Account
from clearance.principals.service import add_user, get_user, get_user_by_id
from clearance.screening.service import screen_user


class Uniqueness(Conflict):
    """RFC 7644 §3.12: a value that must be unique is taken (scimType `uniqueness`)."""

    code = "uniqueness"


class PreconditionFailed(Conflict):
    """RFC 7644 §3.14: If-Match names a version that is no longer current."""

    status = 412
    code = "precondition_failed"


@dataclass(frozen=True, slots=True)
class Scope:
    """Who acts (the audit actor: the SCIM token's digest prefix), the role map, and the base
    URL resources' `meta.location` starts with."""

    actor: str
    groups: GroupRoles
    base: str


def now() -> datetime:
    return datetime.now(UTC)


def version(number: int) -> str:
    """The weak ETag of a resource's version (RFC 7644 §3.14, RFC 7232 §2.3)."""
    return f'W/"{number}"'


# -- Users --------------------------------------------------------------------------------------


def user_resource(conn: Connection, row: sa.Row[Any], scope: Scope) -> User[Any]:
    user: User[Any] = User.model_validate(row.resource)
    user.id = str(row.id)
    user.external_id = row.external_id
    user.active = bool(row.active)
    groups = conn.execute(
        sa.select(scim_groups.c.id, scim_groups.c.display_name)
        .join(scim_members, scim_members.c.group_id == scim_groups.c.id)
        .where(scim_members.c.member_id == row.id)
        .order_by(scim_groups.c.display_name)
    )
    user.groups = [
        GroupMembership(value=g.id, display=g.display_name, type="direct", ref=None) for g in groups
    ] or None
    user.meta = _meta("User", f"{scope.base}/Users/{row.id}", row)
    return user


def list_users(conn: Connection, scope: Scope) -> list[User[Any]]:
    rows = conn.execute(sa.select(scim_users).order_by(scim_users.c.created_at, scim_users.c.id))
    return [user_resource(conn, r, scope) for r in rows]


def get_user_resource(conn: Connection, scim_id: str, scope: Scope) -> User[Any]:
    return user_resource(conn, _user_row(conn, scim_id), scope)


def create_user(conn: Connection, user: User[Any], scope: Scope) -> tuple[User[Any], list[bytes]]:
    name_key = _user_name(user)
    if conn.execute(sa.select(scim_users.c.id).where(scim_users.c.user_name == name_key)).first():
        raise Uniqueness(f"userName {user.user_name!r} is taken")
    entries: list[bytes] = []
    account = _account(conn, user, entries, scope.actor)
    if conn.execute(sa.select(scim_users.c.id).where(scim_users.c.user_id == account.id)).first():
        raise Uniqueness("another SCIM user already provisions this email address")
    scim_id, moment = str(uuid.uuid4()), now()
    active = user.active is not False
    conn.execute(
        sa.insert(scim_users).values(
            id=scim_id,
            user_id=account.id,
            user_name=name_key,
            external_id=user.external_id,
            active=active,
            resource=_stored(user),
            created_at=moment,
            modified_at=moment,
            version=1,
        )
    )
    entries.append(_entry(scope, "scim.user.create", account, {"id": scim_id, "active": active}))
    return get_user_resource(conn, scim_id, scope), entries


def replace_user(
    conn: Connection, scim_id: str, user: User[Any], scope: Scope, *, if_match: str | None
) -> tuple[User[Any], list[bytes]]:
    """PUT (RFC 7644 §3.5.1), and the end of a PATCH (§3.5.2): the new state, stored."""
    row = _user_row(conn, scim_id, lock=True)
    _check_version(row, if_match)
    name_key = _user_name(user)
    taken = conn.execute(
        sa.select(scim_users.c.id).where(
            scim_users.c.user_name == name_key, scim_users.c.id != scim_id
        )
    ).first()
    if taken:
        raise Uniqueness(f"userName {user.user_name!r} is taken")
    active = user.active is not False
    conn.execute(
        sa.update(scim_users)
        .where(scim_users.c.id == scim_id)
        .values(
            user_name=name_key,
            external_id=user.external_id,
            active=active,
            resource=_stored(user),
            modified_at=now(),
            version=row.version + 1,
        )
    )
    account = get_user_by_id(conn, row.user_id)
    entries = [_entry(scope, "scim.user.update", account, {"id": scim_id, "active": active})]
    if row.active and not active:
        entries += deprovision(conn, account.id, actor=scope.actor, source="scim")
    elif active and not row.active:
        entries += _sync(conn, [scim_id], scope)
    return get_user_resource(conn, scim_id, scope), entries


def delete_user(
    conn: Connection, scim_id: str, scope: Scope, *, if_match: str | None
) -> list[bytes]:
    row = _user_row(conn, scim_id, lock=True)
    _check_version(row, if_match)
    account = get_user_by_id(conn, row.user_id)
    entries = deprovision(conn, account.id, actor=scope.actor, source="scim")
    conn.execute(sa.delete(scim_members).where(scim_members.c.member_id == scim_id))
    conn.execute(sa.delete(scim_users).where(scim_users.c.id == scim_id))
    entries.append(_entry(scope, "scim.user.delete", account, {"id": scim_id}))
    return entries


def _user_row(conn: Connection, scim_id: str, *, lock: bool = False) -> sa.Row[Any]:
    query = sa.select(scim_users).where(scim_users.c.id == scim_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no User {scim_id!r}")
    return row


def _user_name(user: User[Any]) -> str:
    name = (user.user_name or "").strip()
    if not name or len(name) > 320:
        raise InvalidInput("userName is required (at most 320 characters)")
    return name.lower()  # RFC 7643 §4.1.1: caseExact false


def _account(conn: Connection, user: User[Any], entries: list[bytes], actor: str) -> Account:
    """The account the User is: by address, or new (and screened)."""
    email = _address(user)
    try:
        return get_user(conn, email)
    except NotFound:
        pass
    account = add_user(conn, email, name=_full_name(user))
    outbox: list[bytes] = []
    # Screened on creation, in the same transaction: nobody exists unscreened.
    screen_user(conn, account.id, outbox=outbox)
    enrol = admin_action(
        actor=actor,
        action="user.enrol",
        target=account.subject_id,
        details={"method": "scim"},
        subject=account.subject_id,
    )
    entries += [enrol, *outbox]
    return account


def _address(user: User[Any]) -> str:
    emails: list[Email] = user.emails or []
    chosen = next((e.value for e in emails if e.primary and e.value), None)
    chosen = chosen or next((e.value for e in emails if e.value), None) or user.user_name
    if not chosen or "@" not in chosen:
        raise InvalidInput("a User needs an email address (emails, or a userName that is one)")
    return str(chosen).strip().lower()


def _full_name(user: User[Any]) -> str | None:
    if user.name is not None:
        if user.name.formatted:
            return user.name.formatted[:200]
        parts = [p for p in (user.name.given_name, user.name.family_name) if p]
        if parts:
            return " ".join(parts)[:200]
    return user.display_name[:200] if user.display_name else None


def _stored(resource: User[Any] | Group) -> dict[str, Any]:
    """The resource as the provider sent it, without what the server owns."""
    data = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    for owned in ("id", "meta", "groups", "members", "active", "externalId"):
        data.pop(owned, None)
    return data


# -- Groups -------------------------------------------------------------------------------------


def group_resource(conn: Connection, row: sa.Row[Any], scope: Scope) -> Group:
    members = conn.execute(
        sa.select(scim_users.c.id, scim_users.c.resource)
        .join(scim_members, scim_members.c.member_id == scim_users.c.id)
        .where(scim_members.c.group_id == row.id)
        .order_by(scim_users.c.user_name)
    )
    group = Group(
        id=str(row.id),
        external_id=row.external_id,
        display_name=row.display_name,
        members=[
            GroupMember(value=m.id, type="User", display=m.resource.get("userName"), ref=None)
            for m in members
        ]
        or None,
    )
    group.meta = _meta("Group", f"{scope.base}/Groups/{row.id}", row)
    return group


def list_groups(conn: Connection, scope: Scope) -> list[Group]:
    rows = conn.execute(sa.select(scim_groups).order_by(scim_groups.c.display_name))
    return [group_resource(conn, r, scope) for r in rows]


def get_group_resource(conn: Connection, group_id: str, scope: Scope) -> Group:
    return group_resource(conn, _group_row(conn, group_id), scope)


def create_group(conn: Connection, group: Group, scope: Scope) -> tuple[Group, list[bytes]]:
    name = _display_name(group)
    if conn.execute(sa.select(scim_groups.c.id).where(scim_groups.c.display_name == name)).first():
        raise Uniqueness(f"displayName {name!r} is taken")
    group_id, moment = str(uuid.uuid4()), now()
    conn.execute(
        sa.insert(scim_groups).values(
            id=group_id,
            display_name=name,
            external_id=group.external_id,
            created_at=moment,
            modified_at=moment,
            version=1,
        )
    )
    members = _set_members(conn, group_id, group)
    entries = [_group_entry(scope, "scim.group.create", group_id, name, len(members))]
    entries += _sync(conn, members, scope)
    return get_group_resource(conn, group_id, scope), entries


def replace_group(
    conn: Connection, group_id: str, group: Group, scope: Scope, *, if_match: str | None
) -> tuple[Group, list[bytes]]:
    row = _group_row(conn, group_id, lock=True)
    _check_version(row, if_match)
    name = _display_name(group)
    taken = conn.execute(
        sa.select(scim_groups.c.id).where(
            scim_groups.c.display_name == name, scim_groups.c.id != group_id
        )
    ).first()
    if taken:
        raise Uniqueness(f"displayName {name!r} is taken")
    before = _members(conn, group_id)
    conn.execute(
        sa.update(scim_groups)
        .where(scim_groups.c.id == group_id)
        .values(
            display_name=name,
            external_id=group.external_id,
            modified_at=now(),
            version=row.version + 1,
        )
    )
    after = _set_members(conn, group_id, group)
    entries = [_group_entry(scope, "scim.group.update", group_id, name, len(after))]
    entries += _sync(conn, sorted(set(before) | set(after)), scope)
    return get_group_resource(conn, group_id, scope), entries


def delete_group(
    conn: Connection, group_id: str, scope: Scope, *, if_match: str | None
) -> list[bytes]:
    row = _group_row(conn, group_id, lock=True)
    _check_version(row, if_match)
    before = _members(conn, group_id)
    conn.execute(sa.delete(scim_members).where(scim_members.c.group_id == group_id))
    conn.execute(sa.delete(scim_groups).where(scim_groups.c.id == group_id))
    entries = [_group_entry(scope, "scim.group.delete", group_id, row.display_name, 0)]
    return entries + _sync(conn, before, scope)


def _group_row(conn: Connection, group_id: str, *, lock: bool = False) -> sa.Row[Any]:
    query = sa.select(scim_groups).where(scim_groups.c.id == group_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no Group {group_id!r}")
    return row


def _display_name(group: Group) -> str:
    name = (group.display_name or "").strip()
    if not name or len(name) > 255:
        raise InvalidInput("displayName is required (at most 255 characters)")
    return name


def _members(conn: Connection, group_id: str) -> list[str]:
    query = sa.select(scim_members.c.member_id).where(scim_members.c.group_id == group_id)
    return [str(m) for m in conn.execute(query).scalars()]


def _set_members(conn: Connection, group_id: str, group: Group) -> list[str]:
    wanted = sorted({str(m.value) for m in group.members or [] if m.value})
    if wanted:
        known = set(
            conn.execute(sa.select(scim_users.c.id).where(scim_users.c.id.in_(wanted))).scalars()
        )
        unknown = [m for m in wanted if m not in known]
        if unknown:
            raise InvalidInput(f"members: no User {unknown[0]!r} (only Users may be members)")
    conn.execute(sa.delete(scim_members).where(scim_members.c.group_id == group_id))
    for member in wanted:
        conn.execute(sa.insert(scim_members).values(group_id=group_id, member_id=member))
    return wanted


# -- Shared -------------------------------------------------------------------------------------


def _sync(conn: Connection, scim_ids: Iterable[str], scope: Scope) -> list[bytes]:
    """Each active user's roles set from the groups they are in now."""
    entries: list[bytes] = []
    for scim_id in scim_ids:
        row = conn.execute(
            sa.select(scim_users.c.user_id, scim_users.c.active).where(scim_users.c.id == scim_id)
        ).first()
        if row is None or not row.active:
            continue
        names = conn.execute(
            sa.select(scim_groups.c.display_name)
            .join(scim_members, scim_members.c.group_id == scim_groups.c.id)
            .where(scim_members.c.member_id == scim_id)
        ).scalars()
        wanted = scope.groups.roles(names)
        entries += apply_roles(
            conn, row.user_id, wanted, scope.groups.managed, actor=scope.actor, source="scim"
        )
    return entries


def _check_version(row: sa.Row[Any], if_match: str | None) -> None:
    if if_match is not None and if_match.strip() not in ("*", version(row.version)):
        raise PreconditionFailed("the resource changed since that version; read it again")


def _meta(kind: str, location: str, row: sa.Row[Any]) -> Meta:
    return Meta(
        resource_type=kind,
        created=_aware(row.created_at),
        last_modified=_aware(row.modified_at),
        location=location,
        version=version(row.version),
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _entry(scope: Scope, action: str, account: Account, details: dict[str, object]) -> bytes:
    return admin_action(
        actor=scope.actor,
        action=action,
        target=account.subject_id,
        details=details,
        subject=account.subject_id,
    )


def _group_entry(scope: Scope, action: str, group_id: str, name: str, members: int) -> bytes:
    return admin_action(
        actor=scope.actor,
        action=action,
        target=group_id,
        details={"displayName": name, "members": members},
    )
