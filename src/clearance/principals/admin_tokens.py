"""Admin tokens: bearer secrets for the operator API, each carrying the scopes it may use.

A token is 256 bits from the CSPRNG, shown once; only its SHA-256 is stored, and lookup is by
that digest, so no secret is ever compared byte by byte (OWASP ASVS 5.0 V11 cryptography, V13
secrets). Tokens are made and revoked by operators, with the CLI or in the console (an admin's
page): no token can mint another (least privilege, ASVS 5.0 V8 authorization).

A domain of its own rather than a part of the operator API (`admin/`): the API checks tokens,
the console and the CLI manage them, and surfaces do not import each other.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import InvalidInput, InvalidToken, NotFound
from clearance.store.tables import admin_tokens

PREFIX = "clr-admin-"


class Scope(StrEnum):
    CATALOG_READ = "catalog:read"  # list models and their status
    CATALOG_WRITE = "catalog:write"  # suspend / resume a model (the kill switch)
    PRINCIPALS_READ = "principals:read"  # look a person up (every lookup is audited)
    PRINCIPALS_WRITE = "principals:write"  # revoke a person's API keys
    REVIEW_READ = "review:read"  # the identity review queue, without the evidence images
    REVIEW_WRITE = "review:write"  # decide review cases
    SCREENING_WRITE = "screening:write"  # resolve restricted-party hits


@dataclass(frozen=True, slots=True)
class AdminToken:
    id: str
    name: str
    scopes: frozenset[Scope]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def actor(self) -> str:
        """How audit entries name what this token did."""
        return f"admin-token:{self.id}"


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    scopes: set[Scope] = set()
    for value in values:
        try:
            scopes.add(Scope(value))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise InvalidInput(f"unknown scope {value!r} (known: {known})") from None
    if not scopes:
        raise InvalidInput("a token needs at least one scope")
    return frozenset(scopes)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create(
    conn: Connection,
    name: str,
    scopes: frozenset[Scope],
    *,
    created_by: str,
    expires_in_days: int | None = 90,
) -> tuple[AdminToken, str]:
    """The stored token and its secret, which is never stored or shown again."""
    if not name.strip():
        raise InvalidInput("a token needs a name")
    if expires_in_days is not None and expires_in_days <= 0:
        raise InvalidInput("expiry must be a positive number of days")
    now = datetime.now(UTC)
    token = AdminToken(
        id="adm_" + secrets.token_hex(8),
        name=name.strip(),
        scopes=scopes,
        created_by=created_by,
        created_at=now,
        expires_at=None if expires_in_days is None else now + timedelta(days=expires_in_days),
        revoked_at=None,
    )
    secret = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(admin_tokens).values(
            id=token.id,
            name=token.name,
            token_hash=token_hash(secret),
            scopes=sorted(s.value for s in scopes),
            created_by=created_by,
            created_at=now,
            expires_at=token.expires_at,
        )
    )
    return token, secret


def revoke(conn: Connection, token_id: str) -> None:
    result = conn.execute(
        sa.update(admin_tokens)
        .where(admin_tokens.c.id == token_id, admin_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if result.rowcount == 0:
        raise NotFound(f"no active admin token {token_id!r}")


def list_all(conn: Connection) -> list[AdminToken]:
    rows = conn.execute(sa.select(admin_tokens).order_by(admin_tokens.c.created_at))
    return [_token(r) for r in rows]


def authenticate(conn: Connection, secret: str, *, now: datetime | None = None) -> AdminToken:
    """The active token whose secret this is; AuthenticationError (one message) otherwise."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        raise InvalidToken("invalid admin token")
    row = conn.execute(
        sa.select(admin_tokens).where(admin_tokens.c.token_hash == token_hash(secret))
    ).first()
    if row is None:
        raise InvalidToken("invalid admin token")
    token = _token(row)
    moment = now or datetime.now(UTC)
    if token.revoked_at is not None or (
        token.expires_at is not None and token.expires_at <= moment
    ):
        raise InvalidToken("invalid admin token")
    return token


def _token(row: sa.Row[tuple[object, ...]]) -> AdminToken:
    return AdminToken(
        id=str(row.id),
        name=str(row.name),
        scopes=frozenset(Scope(s) for s in row.scopes if s in Scope._value2member_map_),
        created_by=str(row.created_by),
        created_at=_aware(row.created_at),
        expires_at=None if row.expires_at is None else _aware(row.expires_at),
        revoked_at=None if row.revoked_at is None else _aware(row.revoked_at),
    )


def _aware(value: object) -> datetime:
    assert isinstance(value, datetime)
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
