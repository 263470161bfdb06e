"""Legal holds: a hold on a person, an organisation or a verification case stops the erasure of
its evidence, on request and by retention, until it is released.

Export records (the audit log, identity decisions and their derived facts) are kept at least
five years whatever happens (15 CFR 762.6) and are never erased; what a hold adds is the
evidence behind them: the document photos, selfies and liveness frames that retention or an
erasure request would otherwise destroy while a subpoena, an investigation or a dispute needs
them (15 CFR 762.6(b): records must be kept beyond the period when an agency asks).

Each add and release is an `admin_action` entry (`hold.add`, `hold.release`); the log holds the
scope by pseudonym (a person's subject id, never the email), the reason and the reference, so
those two must name no one. Holds are never deleted: a released hold stays with who released
it, when and why. `identity.service` asks `held()` before it erases anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from clearance.audit.entries import admin_action
from clearance.audit.sink import AuditSink
from clearance.audit.tables import legal_holds
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.identity.tables import identity_cases
from clearance.store.tables import orgs, users

MAX_TEXT = 2000  # characters of a reason: a sentence or two, not a file


class Scope(StrEnum):
    PERSON = "person"  # by subject id
    ORG = "org"  # every member's evidence, by the organisation's name
    CASE = "case"  # one identity verification case, by its id


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    scope: Scope
    value: str
    reason: str
    reference: str | None
    created_by: str
    created_at: datetime
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def describe(self) -> str:
        """The hold as a refusal names it: id, reason and reference (no personal data)."""
        ref = f"; reference {self.reference}" if self.reference else ""
        return f"legal hold {self.id} on {self.scope.value} {self.value} ({self.reason}{ref})"

    def json(self) -> dict[str, object]:
        def when(moment: datetime | None) -> str | None:
            return None if moment is None else moment.astimezone(UTC).isoformat()

        return {
            "id": self.id,
            "scope": self.scope.value,
            "value": self.value,
            "reason": self.reason,
            "reference": self.reference,
            "created_by": self.created_by,
            "created_at": when(self.created_at),
            "released_at": when(self.released_at),
            "released_by": self.released_by,
            "release_reason": self.release_reason,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"a legal hold needs a {what}")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"the {what} is longer than {MAX_TEXT} characters")
    return value


def _subject_of(conn: Connection, scope: Scope, value: str) -> str | None:
    """Check the scope exists; the pseudonymous subject the hold concerns, if one person."""
    if scope is Scope.PERSON:
        known = conn.execute(sa.select(users.c.id).where(users.c.subject_id == value)).first()
        if known is None:
            raise NotFound(f"no user with subject {value!r}")
        return value
    if scope is Scope.ORG:
        if conn.execute(sa.select(orgs.c.id).where(orgs.c.name == value)).first() is None:
            raise NotFound(f"unknown organisation {value!r}")
        return None
    case_id = int(value) if value.isdigit() else 0
    row = None
    if 0 < case_id < 2**31:  # ids are 32-bit: PostgreSQL would refuse the query itself
        row = conn.execute(
            sa.select(users.c.subject_id)
            .join(identity_cases, identity_cases.c.user_id == users.c.id)
            .where(identity_cases.c.id == case_id)
        ).first()
    if row is None:
        raise NotFound(f"no identity case {value}")
    return str(row.subject_id)


def add(
    engine: Engine,
    audit: AuditSink,
    *,
    scope: Scope,
    value: str,
    reason: str,
    reference: str | None,
    actor: str,
) -> Hold:
    """Place a hold; it binds from its commit on, then it is recorded (`hold.add`)."""
    reason = _text(reason, "reason")
    reference = None if reference is None or not reference.strip() else reference.strip()
    if reference is not None and len(reference) > 200:  # the column's width
        raise InvalidInput("the reference is longer than 200 characters")
    with engine.begin() as conn:
        subject = _subject_of(conn, scope, value.strip())
        row = conn.execute(
            sa.insert(legal_holds)
            .values(
                scope=scope.value,
                scope_value=value.strip(),
                reason=reason,
                reference=reference,
                created_by=actor,
                created_at=_now(),
            )
            .returning(*legal_holds.c)
        ).one()
    hold = _hold(row)
    audit.append(
        admin_action(
            actor=actor,
            action="hold.add",
            target=f"hold:{hold.id}",
            details={
                "scope": hold.scope.value,
                "value": hold.value,
                "reason": hold.reason,
                "reference": hold.reference,
            },
            subject=subject,
        )
    )
    return hold


def release(engine: Engine, audit: AuditSink, hold_id: int, *, reason: str, actor: str) -> Hold:
    """End a hold (`hold.release`); the row stays. Releasing twice is a conflict."""
    reason = _text(reason, "release reason")
    with engine.begin() as conn:
        row = conn.execute(
            sa.update(legal_holds)
            .where(legal_holds.c.id == hold_id, legal_holds.c.released_at.is_(None))
            .values(released_at=_now(), released_by=actor, release_reason=reason)
            .returning(*legal_holds.c)
        ).first()
        if row is None:
            done = get(conn, hold_id)  # NotFound if there is no such hold
            raise Conflict(f"legal hold {hold_id} was already released ({done.released_at:%F})")
        subject = _subject_of(conn, Scope(row.scope), row.scope_value)
    hold = _hold(row)
    audit.append(
        admin_action(
            actor=actor,
            action="hold.release",
            target=f"hold:{hold.id}",
            details={"scope": hold.scope.value, "value": hold.value, "reason": reason},
            subject=subject,
        )
    )
    return hold


def get(conn: Connection, hold_id: int) -> Hold:
    row = None
    if 0 < hold_id < 2**31:
        row = conn.execute(sa.select(legal_holds).where(legal_holds.c.id == hold_id)).first()
    if row is None:
        raise NotFound(f"no legal hold {hold_id}")
    return _hold(row)


def list_holds(conn: Connection, *, include_released: bool = False) -> list[Hold]:
    query = sa.select(legal_holds).order_by(legal_holds.c.id)
    if not include_released:
        query = query.where(legal_holds.c.released_at.is_(None))
    return [_hold(row) for row in conn.execute(query)]


def active_for_user(conn: Connection, user_id: int) -> list[Hold]:
    """Active holds that cover any of a person's evidence: on them, their org or a case."""
    mine = sa.select(sa.cast(identity_cases.c.id, sa.String)).where(
        identity_cases.c.user_id == user_id
    )
    on_case = sa.and_(legal_holds.c.scope == Scope.CASE.value, legal_holds.c.scope_value.in_(mine))
    return _active(conn, _covers(sa.literal(0), sa.literal(user_id)) | on_case)


def active_for_case(conn: Connection, case_id: int) -> list[Hold]:
    """Active holds that cover one case's evidence: on it, its person or their org."""
    if not 0 < case_id < 2**31:
        return []
    owner = sa.select(identity_cases.c.user_id).where(identity_cases.c.id == case_id)
    return _active(conn, _covers(sa.literal(case_id), owner.scalar_subquery()))


def _active(conn: Connection, where: ColumnElement[bool]) -> list[Hold]:
    query = sa.select(legal_holds).where(legal_holds.c.released_at.is_(None), where)
    return [_hold(row) for row in conn.execute(query.order_by(legal_holds.c.id))]


def held(
    case_id: ColumnElement[Any] = identity_cases.c.id,
    user_id: ColumnElement[Any] = identity_cases.c.user_id,
) -> ColumnElement[bool]:
    """SQL: an active hold covers the identity case with these columns (by default the outer
    query's `identity_cases` row). `identity.service` adds `~held()` to what it erases."""
    return (
        sa.select(legal_holds.c.id)
        .where(legal_holds.c.released_at.is_(None), _covers(case_id, user_id))
        .exists()
    )


def _covers(case_id: ColumnElement[Any], user_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """The current `legal_holds` row covers this case: by its id, its person, or their org."""
    person = users.alias("held_person")
    member = users.alias("held_member")
    return sa.or_(
        sa.and_(
            legal_holds.c.scope == Scope.CASE.value,
            legal_holds.c.scope_value == sa.cast(case_id, sa.String),
        ),
        sa.and_(
            legal_holds.c.scope == Scope.PERSON.value,
            legal_holds.c.scope_value.in_(
                # correlate_except: the case's own table stays the outer query's (auto-correlation
                # reaches only the enclosing SELECT, and this one is two levels down).
                sa.select(person.c.subject_id)
                .where(person.c.id == user_id)
                .correlate_except(person)
            ),
        ),
        sa.and_(
            legal_holds.c.scope == Scope.ORG.value,
            legal_holds.c.scope_value.in_(
                sa.select(orgs.c.name)
                .join(member, member.c.org_id == orgs.c.id)
                .where(member.c.id == user_id)
                .correlate_except(orgs, member)
            ),
        ),
    )


def _hold(row: Row[Any]) -> Hold:
    return Hold(
        id=row.id,
        scope=Scope(row.scope),
        value=row.scope_value,
        reason=row.reason,
        reference=row.reference,
        created_by=row.created_by,
        created_at=row.created_at,
        released_at=row.released_at,
        released_by=row.released_by,
        release_reason=row.release_reason,
    )


def refusal(holds: Sequence[Hold]) -> str:
    """Why an erasure was refused, for the operator: each hold's id, reason and reference."""
    return "erasure refused: under " + "; ".join(h.describe() for h in holds)
