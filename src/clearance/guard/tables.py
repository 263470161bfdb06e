"""Misuse-guard tables, on the shared metadata (migration 0015).

guard_flags   one row per flagged prompt or completion: the person, the model, what the classifier
              said, a keyed digest of the text and the vault id of its encrypted excerpt
guard_cases   one row per hold placed on a person's controlled models: pending until a reviewer
              clears or confirms it
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

guard_cases = sa.Table(
    "guard_cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending|cleared|confirmed
    sa.Column("opened_at", UTC_TIME, nullable=False),
    sa.Column("decided_at", UTC_TIME, nullable=True),
    sa.Column("decided_by", sa.String(320), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
)

guard_flags = sa.Table(
    "guard_flags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("model_id", sa.String(128), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),  # prompt | output
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("score_milli", sa.Integer, nullable=False),  # 0..1000
    # The access_decision entry the flag belongs to (null when the log could not record it).
    sa.Column("decision_index", sa.BigInteger, nullable=True),
    sa.Column("digest", sa.String(80), nullable=False),  # keyed: never a dictionary fingerprint
    sa.Column("excerpt_id", sa.String(32), nullable=True),  # vault file; null once erased
    sa.Column("created_at", UTC_TIME, nullable=False, index=True),
    # Set when a reviewer clears the flags behind a hold: they no longer count as strikes.
    sa.Column("cleared_at", UTC_TIME, nullable=True),
    sa.Column("case_id", sa.ForeignKey("guard_cases.id", ondelete="SET NULL"), nullable=True),
)
