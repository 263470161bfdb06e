"""Emailed sign-in links: single use, short-lived, bound to the browser that asked.

The token is 256 bits from the CSPRNG (`secrets`); only its SHA-256 is stored, beside the
SHA-256 of the asking browser's nonce cookie. Consuming is one conditional UPDATE, so two
concurrent confirmations cannot both succeed (OWASP ASVS 5.0 V6.6 out-of-band authenticators).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import AuthenticationError
from clearance.portal.tables import portal_signin_links


class LinkRefused(AuthenticationError):
    code = "signin_link_refused"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue(conn: Connection, email: str, browser: str, *, minutes: int, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(portal_signin_links).values(
            token_hash=digest(token),
            email=email,
            browser_hash=digest(browser),
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    return token


def check(conn: Connection, token: str, browser: str, *, now: datetime) -> str:
    """The address a usable link was sent to; LinkRefused saying why otherwise."""
    row = conn.execute(
        sa.select(portal_signin_links).where(portal_signin_links.c.token_hash == digest(token))
    ).first()
    if row is None:
        raise LinkRefused("this sign-in link is not valid; ask for a new one")
    if row.used_at is not None:
        raise LinkRefused("this sign-in link has been used already; ask for a new one")
    if aware(row.expires_at) <= now:
        raise LinkRefused("this sign-in link has expired; ask for a new one")
    if not secrets.compare_digest(row.browser_hash, digest(browser)):
        raise LinkRefused(
            "open the link in the browser where you asked for it (links work only there)"
        )
    return str(row.email)


def consume(conn: Connection, token: str, browser: str, *, now: datetime) -> str:
    """Use the link up; returns its address. Exactly one caller ever succeeds."""
    email = check(conn, token, browser, now=now)
    used = conn.execute(
        sa.update(portal_signin_links)
        .where(
            portal_signin_links.c.token_hash == digest(token),
            portal_signin_links.c.used_at.is_(None),
            portal_signin_links.c.expires_at > now,
            portal_signin_links.c.browser_hash == digest(browser),
        )
        .values(used_at=now)
    )
    if used.rowcount != 1:
        raise LinkRefused("this sign-in link has been used already; ask for a new one")
    return email


def purge(conn: Connection, *, now: datetime) -> int:
    """Drop links that can no longer be used (expired a day ago or more)."""
    done = conn.execute(
        sa.delete(portal_signin_links).where(
            portal_signin_links.c.expires_at < now - timedelta(days=1)
        )
    )
    return int(done.rowcount)


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
