"""Browser sessions: a random cookie value, stored as its SHA-256, with an absolute expiry.

A new value is issued at every sign-in (the old one is deleted: no session fixation, OWASP
ASVS 5.0 V7.2) and the row is deleted at sign-out, so a copied cookie dies with it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.portal.links import aware, digest
from clearance.portal.tables import portal_sessions


def start(
    conn: Connection, user_id: int, *, hours: int, now: datetime, replacing: str | None
) -> str:
    if replacing:
        end(conn, replacing)
    value = secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(portal_sessions).values(
            session_hash=digest(value),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return value


def user_of(conn: Connection, value: str, *, now: datetime) -> int | None:
    row = conn.execute(
        sa.select(portal_sessions.c.user_id, portal_sessions.c.expires_at).where(
            portal_sessions.c.session_hash == digest(value)
        )
    ).first()
    if row is None or aware(row.expires_at) <= now:
        return None
    return int(row.user_id)


def end(conn: Connection, value: str) -> None:
    conn.execute(sa.delete(portal_sessions).where(portal_sessions.c.session_hash == digest(value)))


def purge(conn: Connection, *, now: datetime) -> int:
    done = conn.execute(sa.delete(portal_sessions).where(portal_sessions.c.expires_at <= now))
    return int(done.rowcount)
