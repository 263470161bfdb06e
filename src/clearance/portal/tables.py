"""Portal tables, on the shared metadata (migration 0005).

portal_signin_links  emailed sign-in links: SHA-256 of the token, the address, the browser bound
portal_sessions      signed-in browsers: SHA-256 of the session cookie, the account, expiry

Only digests of the secrets are stored: a copy of the database signs nobody in.
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

portal_signin_links = sa.Table(
    "portal_signin_links",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("browser_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("expires_at", UTC_TIME, nullable=False, index=True),
    sa.Column("used_at", UTC_TIME, nullable=True),
)

portal_sessions = sa.Table(
    "portal_sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("expires_at", UTC_TIME, nullable=False, index=True),
)
