"""Identity verification tables, on the shared metadata (migration 0004).

identity_cases           one row per verification or assertion: outcome, reasons, derived facts
identity_evidence        the vault files of a case (document, selfie, frames); erased_at when gone
identity_documents       keyed digest of (issuing state, document number) -> the account it backs
csca_master_lists        the CSCA certificates Passive Authentication trusts, one row per version
identity_webhook_events  vendor webhook event ids already accepted (replay protection)
cip_records              a person's Customer Identification Programme record, sealed (0024)
cip_addresses            the addresses a person's keys were used from, per day, sealed (0024)
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

identity_cases = sa.Table(
    "identity_cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    # Derived attributes only (nationalities, US-person status, document type/state/expiry,
    # face distance): never names, numbers or images.
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("document_digest", sa.String(64), nullable=True),
    sa.Column("evidence_digest", sa.String(64), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("decided_at", UTC_TIME, nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decision_note", sa.Text, nullable=True),
    sa.Column("audit_index", sa.BigInteger, nullable=True),
)

identity_evidence = sa.Table(
    "identity_evidence",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "case_id",
        sa.ForeignKey("identity_cases.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("erased_at", UTC_TIME, nullable=True),
)

identity_documents = sa.Table(
    "identity_documents",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("case_id", sa.Integer, nullable=False),
    sa.Column("bound_at", UTC_TIME, nullable=False),
)

# One row per loaded version of the CSCA master list (identity/csca.py, migration 0023); the
# newest row is in force. `digest` is the SHA-256 over the sorted DER of `certificates`.
csca_master_lists = sa.Table(
    "csca_master_lists",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("certificates", sa.JSON, nullable=False),  # base64 DER, one per CSCA
    sa.Column("skipped", sa.JSON, nullable=False),  # why each left-out certificate was
    sa.Column("signers", sa.JSON, nullable=False),  # CMS master list signers (RFC 4514)
    sa.Column("loaded_by", sa.String(200), nullable=False),
    sa.Column("loaded_at", UTC_TIME, nullable=False),
)

identity_webhook_events = sa.Table(
    "identity_webhook_events",
    metadata,
    sa.Column("vendor", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("received_at", UTC_TIME, nullable=False),
)

# The CIP record (identity/cip.py): the sealed values; `fields` names those present (no value).
cip_records = sa.Table(
    "cip_records",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

# One row per person, UTC day and address: found by the address's keyed MAC, the address sealed.
cip_addresses = sa.Table(
    "cip_addresses",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("address_mac", sa.String(32), primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("first_seen", UTC_TIME, nullable=False),
    sa.Column("last_seen", UTC_TIME, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Index("ix_cip_addresses_day", "day"),
)
