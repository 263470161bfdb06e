"""witnesses: the cosignatures C2SP tlog-witnesses returned for our checkpoints

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_cosignatures",
        sa.Column("size", INDEX, autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("cosigned_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("size", "witness", name=op.f("pk_audit_cosignatures")),
    )


def downgrade() -> None:
    op.drop_table("audit_cosignatures")
