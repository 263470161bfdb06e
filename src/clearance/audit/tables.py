"""Audit log tables, on the shared metadata (migration 0002).

audit_head         one row: how many entries are committed (the sequencer's counter)
audit_entries      index -> the exact entry bytes that were hashed
audit_tree         one row: how many entries are integrated into the tree, and its root
audit_tiles        C2SP tlog-tiles hashes, (tile level, tile index) -> up to 256 hashes
audit_checkpoints  every signed checkpoint, by tree size
audit_cosignatures witnesses' cosignature/v1 lines, by checkpoint size and witness (migration 0008)
audit_archive      one row: entries below archived_below are in the archive, below pruned_below
                   only there (audit/archive.py, migration 0010)
legal_holds        holds on a person, org or case that stop the erasure of its evidence (0009)
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: one b-tree, the fastest append.
INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("idx", INDEX, primary_key=True, autoincrement=False),
    sa.Column("entry", sa.LargeBinary, nullable=False),
)

audit_tree = sa.Table(
    "audit_tree",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
)

audit_tiles = sa.Table(
    "audit_tiles",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hashes", sa.LargeBinary, nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("size", INDEX, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("signed_at", UTC_TIME, nullable=False),
)

audit_cosignatures = sa.Table(
    "audit_cosignatures",
    metadata,
    sa.Column("size", INDEX, primary_key=True, autoincrement=False),
    sa.Column("witness", sa.String(200), primary_key=True),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("cosigned_at", UTC_TIME, nullable=False),
)

# A legal hold (docs/retention.md): while `released_at` is null, nothing within its scope is
# erased, on request or by retention. The rows are kept after release: a hold's history is
# itself evidence (and each add and release is an audit entry).
legal_holds = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(16), nullable=False),  # person | org | case
    # person: the pseudonymous subject id (never the email); org: its name; case: its id.
    sa.Column("scope_value", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),  # subpoena, case or docket number
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("released_at", UTC_TIME, nullable=True),
    sa.Column("released_by", sa.String(200), nullable=True),
    sa.Column("release_reason", sa.Text, nullable=True),
    sa.Index("ix_legal_holds_scope", "scope", "scope_value"),
)

audit_archive = sa.Table(
    "audit_archive",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("archived_below", sa.BigInteger, nullable=False),
    sa.Column("pruned_below", sa.BigInteger, nullable=False),
)
