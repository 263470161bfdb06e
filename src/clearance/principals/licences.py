"""A licence's life after it is recorded: listed, revoked, expired early, renewed.

Each change bumps the licences counter in the same transaction, so every worker's policy sees it
within the invalidation bound. A revoked licence is kept (it is an export record, 15 CFR 762.6)
but never reaches the policy (`service.load_licences`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.principals import service
from clearance.principals.directory import Page, PageRequest, paged
from clearance.principals.models import Licence
from clearance.store import versions
from clearance.store.tables import licences, orgs


@dataclass(frozen=True, slots=True)
class HeldLicence:
    licence: Licence
    org: str  # the holder's name

    def status(self, today: date) -> str:
        if self.licence.revoked_at is not None:
            return "revoked"
        return "active" if self.licence.expires >= today else "expired"


def _today() -> date:
    return datetime.now(UTC).date()


def _query() -> sa.Select[tuple[object, ...]]:
    return sa.select(licences, orgs.c.name.label("org_name")).join(
        orgs, orgs.c.id == licences.c.org_id
    )


def list_licences(
    conn: Connection, page: PageRequest, *, org: str | None = None
) -> Page[HeldLicence]:
    query = _query()
    if org is not None:
        query = query.where(licences.c.org_id == service.get_org(conn, org).id)
    rows, cursor = paged(conn, query, licences.c.id, page, numeric=True)
    return Page(tuple(HeldLicence(service.licence_record(r), r.org_name) for r in rows), cursor)


def get_licence(conn: Connection, licence_id: int) -> HeldLicence:
    row = conn.execute(_query().where(licences.c.id == licence_id)).first()
    if row is None:
        raise NotFound(f"unknown licence {licence_id}")
    return HeldLicence(service.licence_record(row), row.org_name)


def _in_force(conn: Connection, licence_id: int) -> HeldLicence:
    held = get_licence(conn, licence_id)
    if held.licence.revoked_at is not None:
        raise Conflict(f"licence {licence_id} ({held.licence.number}) is revoked")
    return held


def check_unchanged(conn: Connection, licence_id: int, expires: date) -> None:
    """Refuse (409) unless the licence is in force and still expires on `expires`, as a page
    showed it: a change made on a page rendered before another change is refused, not applied
    over it. The row stays locked until the transaction ends (PostgreSQL; SQLite's write
    transaction excludes other writers), so the change that follows is made on what was shown."""
    conn.execute(sa.select(licences.c.id).where(licences.c.id == licence_id).with_for_update())
    held = _in_force(conn, licence_id)
    if held.licence.expires != expires:
        raise Conflict(
            f"licence {licence_id} ({held.licence.number}) was changed since you opened it: it "
            f"now runs until {held.licence.expires.isoformat()}; reload it and try again"
        )


def _set(conn: Connection, licence_id: int, **values: object) -> HeldLicence:
    conn.execute(sa.update(licences).where(licences.c.id == licence_id).values(**values))
    versions.bump(conn, versions.Kind.LICENCES)
    return get_licence(conn, licence_id)


def revoke(conn: Connection, licence_id: int, reason: str) -> HeldLicence:
    """The licensing authority revoked it (15 CFR 750.8): it stops covering anyone at once."""
    text = reason.strip()
    if not text or len(text) > 2000:
        raise InvalidInput("a --reason of 1 to 2000 characters is required")
    _in_force(conn, licence_id)
    return _set(conn, licence_id, revoked_at=datetime.now(UTC), revoked_reason=text)


def expire(conn: Connection, licence_id: int) -> HeldLicence:
    """End it now: a licence "expiring on D" is good through D, so it now expired yesterday."""
    held = _in_force(conn, licence_id)
    yesterday = _today() - timedelta(days=1)
    if held.licence.expires <= yesterday:
        raise Conflict(f"licence {licence_id} already expired on {held.licence.expires}")
    return _set(conn, licence_id, expires=yesterday)


def renew(conn: Connection, licence_id: int, until: date) -> HeldLicence:
    held = _in_force(conn, licence_id)
    if until < _today():
        raise InvalidInput(f"--until must be today or later, not {until.isoformat()}")
    if until == held.licence.expires:
        raise InvalidInput(f"licence {licence_id} already runs until {until.isoformat()}")
    return _set(conn, licence_id, expires=until)
