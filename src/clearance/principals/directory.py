"""Finding and changing people, organisations and keys: search, pages, suspension.

Every list is in a stable order (by id) and comes a page at a time, either by limit and offset or
after a cursor (the last id of the previous page), so a list changing between pages neither
repeats nor skips a record when read by cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.principals import service
from clearance.principals.countries import country
from clearance.principals.models import ApiKey, Org, User
from clearance.store import versions
from clearance.store.tables import api_keys, orgs, users

MAX_LIMIT = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = 50
    offset: int = 0
    after: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {self.limit}")
        if self.offset < 0:
            raise InvalidInput(f"offset must not be negative, not {self.offset}")
        if self.after is not None and self.offset:
            raise InvalidInput("give either an offset or a cursor (after), not both")
        if self.after is not None and not 1 <= len(self.after) <= 64:
            raise InvalidInput("the cursor (after) must be 1 to 64 characters")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next: str | None  # the cursor for the next page; None on the last page


def paged(
    conn: Connection,
    query: sa.Select[tuple[object, ...]],
    key: sa.ColumnElement[object],
    page: PageRequest,
    *,
    numeric: bool,
) -> tuple[list[sa.Row[tuple[object, ...]]], str | None]:
    if page.after is not None:
        if numeric:
            if not page.after.isascii() or not page.after.isdigit():
                raise InvalidInput(f"not a cursor from this list: {page.after!r}")
            query = query.where(key > int(page.after))
        else:
            query = query.where(key > page.after)
    rows = list(conn.execute(query.order_by(key).limit(page.limit + 1).offset(page.offset)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, (str(rows[-1]._mapping[key]) if more else None)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def list_users(
    conn: Connection,
    page: PageRequest,
    *,
    search: str | None = None,
    org: str | None = None,
) -> Page[User]:
    """People by id; `search` matches a substring of the email or the name, any case."""
    query = sa.select(users)
    if search is not None:
        text = search.strip()
        if not text or len(text) > 320:
            raise InvalidInput("search text must be 1 to 320 characters")
        pattern = _like(text)
        query = query.where(
            sa.or_(
                sa.func.lower(users.c.email).like(pattern, escape="\\"),
                sa.func.lower(sa.func.coalesce(users.c.name, "")).like(pattern, escape="\\"),
            )
        )
    if org is not None:
        query = query.where(users.c.org_id == service.get_org(conn, org).id)
    rows, cursor = paged(conn, query, users.c.id, page, numeric=True)
    return Page(tuple(service.get_user_by_id(conn, r.id) for r in rows), cursor)


def suspend_user(conn: Connection, email: str, reason: str) -> User:
    """Refuse the person every model (the `account-suspended` rule) until reinstated."""
    user = service.get_user(conn, email)
    if user.suspended:
        raise Conflict(f"user {user.email!r} is already suspended")
    conn.execute(
        sa.update(users)
        .where(users.c.id == user.id)
        .values(suspended_at=datetime.now(UTC), suspended_reason=_reason(reason))
    )
    service.touch_facts(conn, user.id)  # every worker drops its cached facts within a poll
    return service.get_user_by_id(conn, user.id)


def reinstate_user(conn: Connection, email: str, reason: str) -> User:
    user = service.get_user(conn, email)
    _reason(reason)
    if not user.suspended:
        raise Conflict(f"user {user.email!r} is not suspended")
    conn.execute(
        sa.update(users)
        .where(users.c.id == user.id)
        .values(suspended_at=None, suspended_reason=None)
    )
    service.touch_facts(conn, user.id)
    return service.get_user_by_id(conn, user.id)


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text or len(text) > 2000:
        raise InvalidInput("a --reason of 1 to 2000 characters is required")
    return text


def list_orgs(conn: Connection, page: PageRequest) -> Page[Org]:
    rows, cursor = paged(conn, sa.select(orgs), orgs.c.id, page, numeric=True)
    return Page(tuple(_org(r) for r in rows), cursor)


def _org(r: sa.Row[tuple[object, ...]]) -> Org:
    return Org(
        r.id,
        r.name,
        r.country,
        r.screening_status,
        r.ownership_status,
        r.listed_owner_share,
        r.ownership_rule,
        tuple(r.ownership_path or ()),
        {k: getattr(r, k) for k in KYB_FIELDS},
    )


def get_org(conn: Connection, name: str) -> Org:
    service.get_org(conn, name)  # the NotFound naming it
    return _org(conn.execute(sa.select(orgs).where(orgs.c.name == name)).one())


def get_org_by_id(conn: Connection, org_id: int) -> Org:
    row = conn.execute(sa.select(orgs).where(orgs.c.id == org_id)).first()
    if row is None:
        raise NotFound(f"unknown organisation {org_id}")
    return _org(row)


# Know-your-business details an operator or org admin declares: text, or a country code.
KYB_FIELDS = (
    "legal_name",
    "registration_number",
    "registry",
    "incorporation_country",
    "headquarters_country",
    "ultimate_parent",
    "ultimate_parent_country",
)


def update_org(
    conn: Connection,
    name: str,
    *,
    new_name: str | None = None,
    new_country: str | None = None,
    kyb: dict[str, str] | None = None,
) -> tuple[Org, dict[str, object]]:
    """Rename an organisation, change its country or its KYB details; returns it and what
    changed. The caller screens it again (a new name is a new name to screen)."""
    org = get_org(conn, name)
    changes: dict[str, object] = {}
    for key, value in (kyb or {}).items():
        if key not in KYB_FIELDS:
            raise InvalidInput(f"unknown organisation detail {key!r}")
        text = value.strip()
        if key.endswith("_country"):
            text = country(text) if text else ""
        elif len(text) > 400:
            raise InvalidInput(f"{key} must be at most 400 characters")
        if (text or None) != org.kyb.get(key):
            changes[key] = text or None
    if new_name is not None:
        text = new_name.strip()
        if not text or len(text) > 200:
            raise InvalidInput("an organisation's name must be 1 to 200 characters")
        if text != org.name:
            if conn.execute(sa.select(orgs.c.id).where(orgs.c.name == text)).first():
                raise Conflict(f"organisation {text!r} already exists")
            changes["name"] = text
    if new_country is not None:
        cc = country(new_country)
        if cc != org.country:
            changes["country"] = cc
    if not changes:
        raise InvalidInput("nothing to change: give --name, --country or a detail with a new value")
    conn.execute(sa.update(orgs).where(orgs.c.id == org.id).values(**changes))
    if {"headquarters_country", "ultimate_parent_country"} & changes.keys():
        service.touch_members(conn, org.id)  # facts the policy reads: decided again
    versions.bump(conn, versions.Kind.PRINCIPALS)
    return _org(conn.execute(sa.select(orgs).where(orgs.c.id == org.id)).one()), changes


def members(conn: Connection, name: str, page: PageRequest) -> Page[User]:
    return list_users(conn, page, org=name)


def org_detail(conn: Connection, name: str) -> tuple[Org, tuple[User, ...], int]:
    """An organisation, its first MAX_LIMIT members (`members` pages through all) and the count."""
    org = get_org(conn, name)
    first = members(conn, name, PageRequest(MAX_LIMIT))
    return org, first.items, member_count(conn, org.id)


def member_count(conn: Connection, org_id: int) -> int:
    query = sa.select(sa.func.count()).select_from(users).where(users.c.org_id == org_id)
    return int(conn.execute(query).scalar_one())


def list_keys(
    conn: Connection, page: PageRequest, *, user: str | None = None, org: str | None = None
) -> Page[tuple[ApiKey, str]]:
    """Keys (never their secrets) with their owner's subject id, by key id; for one person
    (by email) or the members of one organisation."""
    if user is not None and org is not None:
        raise InvalidInput("give either --user or --org, not both")
    query = sa.select(api_keys, users.c.subject_id).join(users, users.c.id == api_keys.c.user_id)
    if user is not None:
        query = query.where(api_keys.c.user_id == service.get_user(conn, user).id)
    if org is not None:
        query = query.where(users.c.org_id == service.get_org(conn, org).id)
    rows, cursor = paged(conn, query, api_keys.c.id, page, numeric=False)
    return Page(tuple((service.key_record(r), r.subject_id) for r in rows), cursor)


def unrevoked_keys(conn: Connection, org_id: int, *, limit: int) -> list[tuple[str, str]]:
    """(key id, owner's subject id) of the organisation's members' keys not revoked yet (expired
    ones included), by id: what revoking the organisation's keys has left to do."""
    rows = conn.execute(
        sa.select(api_keys.c.id, users.c.subject_id)
        .join(users, users.c.id == api_keys.c.user_id)
        .where(users.c.org_id == org_id, api_keys.c.revoked_at.is_(None))
        .order_by(api_keys.c.id)
        .limit(limit)
    )
    return [(str(r.id), str(r.subject_id)) for r in rows]


def unrevoked_key_count(conn: Connection, org_id: int) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
        .where(users.c.org_id == org_id, api_keys.c.revoked_at.is_(None))
    )
    return int(conn.execute(query).scalar_one())


def revoke_keys(conn: Connection, key_ids: list[str]) -> set[str]:
    """Revoke those of `key_ids` still active, in one statement; the ids it revoked. Every
    worker stops accepting them within the invalidation bound (one principals version bump)."""
    if not key_ids:
        return set()
    done = {
        str(k)
        for k in conn.execute(
            sa.update(api_keys)
            .where(api_keys.c.id.in_(key_ids), api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(api_keys.c.id)
        ).scalars()
    }
    if done:
        versions.bump(conn, versions.Kind.PRINCIPALS)
    return done
