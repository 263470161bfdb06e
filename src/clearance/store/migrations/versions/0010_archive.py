"""archive: how much of the audit log is archived, and how much only there

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_archive",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("archived_below", sa.BigInteger(), nullable=False),
        sa.Column("pruned_below", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_archive")),
    )


def downgrade() -> None:
    op.drop_table("audit_archive")
