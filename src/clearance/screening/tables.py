"""Screening tables, on the shared metadata (migration 0003).

list_versions          one row per load: list name, format, content hash, counts
list_entries           every entry of every version, as JSON, with its own hash
screening_hits         the current matches of each user (the review queue)
screening_resolutions  operator decisions on a (user, list entry): false positive or true
                       match, valid while the entry's hash is unchanged
list_ownership         ownership the list data carries (FtM `Ownership`), per version (0017)
org_screening_hits     the current matches of each organisation screened as an entity (0027)
org_screening_resolutions  operator decisions on an (organisation, list entry), as for a user
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

list_versions = sa.Table(
    "list_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, index=True),
    sa.Column("format", sa.String(16), nullable=False),
    # SHA-256 over the loaded files' bytes, in the order given: the version's identity.
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("skipped", sa.JSON, nullable=False),
    sa.Column("loaded_at", UTC_TIME, nullable=False),
)

list_entries = sa.Table(
    "list_entries",
    metadata,
    sa.Column(
        "version_id",
        sa.ForeignKey("list_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("entry_id", sa.String(200), primary_key=True),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

screening_hits = sa.Table(
    "screening_hits",
    metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("entry_id", sa.String(200), primary_key=True),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("matched_name", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("why", sa.JSON, nullable=False),
    sa.Column("screened_at", UTC_TIME, nullable=False),
)

screening_resolutions = sa.Table(
    "screening_resolutions",
    metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("entry_id", sa.String(200), primary_key=True),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("resolution", sa.String(20), nullable=False),  # false_positive | true_match
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("resolved_by", sa.String(200), nullable=False),
    sa.Column("resolved_at", UTC_TIME, nullable=False),
)

# An organisation's hits and resolutions: the same columns keyed by organisation (0027). Tables
# of their own rather than a nullable subject column, so the person path keeps its keys.
org_screening_hits = sa.Table(
    "org_screening_hits",
    metadata,
    sa.Column("org_id", sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("entry_id", sa.String(200), primary_key=True),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("matched_name", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("why", sa.JSON, nullable=False),
    sa.Column("screened_at", UTC_TIME, nullable=False),
)

org_screening_resolutions = sa.Table(
    "org_screening_resolutions",
    metadata,
    sa.Column("org_id", sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("entry_id", sa.String(200), primary_key=True),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("resolution", sa.String(20), nullable=False),  # false_positive | true_match
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("resolved_by", sa.String(200), nullable=False),
    sa.Column("resolved_at", UTC_TIME, nullable=False),
)

# `owner_id` owns `percent` of `asset_id` (ids in the list's own data), as an FtM list file says;
# names are kept here because either party may be an unlisted entity (not among the entries).
list_ownership = sa.Table(
    "list_ownership",
    metadata,
    sa.Column(
        "version_id",
        sa.ForeignKey("list_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("record_id", sa.String(200), primary_key=True),
    sa.Column("owner_id", sa.String(200), nullable=False),
    sa.Column("owner_kind", sa.String(16), nullable=False),  # person | entity
    sa.Column("owner_name", sa.String(400), nullable=False),
    sa.Column("asset_id", sa.String(200), nullable=False),
    sa.Column("asset_name", sa.String(400), nullable=False),
    sa.Column("asset_country", sa.String(2), nullable=True),
    sa.Column("percent", sa.Float, nullable=False),
)
