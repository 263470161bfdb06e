"""SCIM 2.0 tables, on the shared metadata (migration 0022).

scim_users     the operators the identity provider provisioned: the SCIM `id` (ours, a UUID),
               the account it is, `userName` folded to lower case (unique: RFC 7643 §4.1.1 makes
               it case-insensitive), `active`, and the whole resource as the provider last sent
               it, so a GET gives back what a PUT set
scim_groups    the provider's groups: `displayName` (unique, and what [sso] group_roles maps)
scim_members   who is in which group
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

scim_users = sa.Table(
    "scim_users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
    sa.Column("user_name", sa.String(320), nullable=False, unique=True),
    sa.Column("external_id", sa.String(255), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("resource", sa.JSON, nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("modified_at", UTC_TIME, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

scim_groups = sa.Table(
    "scim_groups",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("display_name", sa.String(255), nullable=False, unique=True),
    sa.Column("external_id", sa.String(255), nullable=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("modified_at", UTC_TIME, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

scim_members = sa.Table(
    "scim_members",
    metadata,
    sa.Column("group_id", sa.ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "member_id",
        sa.ForeignKey("scim_users.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)
