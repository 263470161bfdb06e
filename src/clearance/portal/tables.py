"""Portal tables, on the shared metadata (migration 0005).

portal_signin_links  emailed sign-in links: SHA-256 of the token, the address, the browser bound
portal_sessions      signed-in browsers: SHA-256 of the session cookie, the account, expiry
portal_operators     accounts that may use the operator pages, and with which roles (0007)
portal_rate_limits   fixed-window counters shared by every worker, keyed by a digest (0007)

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

portal_operators = sa.Table(
    "portal_operators",
    metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("granted_by", sa.String(200), nullable=False),
    sa.Column("granted_at", UTC_TIME, nullable=False),
)

portal_rate_limits = sa.Table(
    "portal_rate_limits",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True, index=True),
    sa.Column("count", sa.Integer, nullable=False),
)
