"""Single sign-on tables, on the shared metadata (migration 0022).

portal_sso_requests    sign-ins sent to the identity provider and not yet back: the SHA-256 of
                       the `state`, the browser it is bound to, the `nonce` and the PKCE
                       `code_verifier` (RFC 7636 §4.1), used once, for ten minutes at most
operator_identities    which account an issuer's subject (`iss`, `sub`) signs in to: OpenID
                       Connect Core §5.7 names (iss, sub) the only stable identifier
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

portal_sso_requests = sa.Table(
    "portal_sso_requests",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("browser_hash", sa.String(64), nullable=False),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("expires_at", UTC_TIME, nullable=False, index=True),
)

operator_identities = sa.Table(
    "operator_identities",
    metadata,
    sa.Column("issuer", sa.String(400), primary_key=True),
    sa.Column("subject", sa.String(255), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("signed_in_at", UTC_TIME, nullable=False),
)
